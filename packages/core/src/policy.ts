import { cronLabels, cronSchedule, scheduleProblem } from "./cron.js";
import { posix } from "node:path";
import { z } from "zod";
import type { ComposeIssue, Origins } from "./compose.js";
import type { PortSpec, Project, ServiceSpec } from "./model.js";
import { parseBytes } from "./units.js";

/** A byte size as the policy file writes it (`10m`, `1g`, 1048576), in bytes. */
const byteSize = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const n = parseBytes(v);
  if (n === undefined || n <= 0) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `invalid size "${v}" (examples: 10m, 1g)` });
  return n ?? 0;
});

const range = (text: string): [number, number] => {
  const [a, b] = text.split("-").map(Number);
  return [a!, b ?? a!];
};

/** Numeric ids: `1000`, `1000-65535`, or a list of those. */
const idRange = z
  .union([z.number().int().min(0), z.string().regex(/^\d{1,10}(-\d{1,10})?$/, "an id or a range, like 1000 or 1000-65535")])
  .transform((v): [number, number] => (typeof v === "number" ? [v, v] : range(v)))
  .refine(([a, b]) => a <= b, "a range runs from low to high");
const idRanges = z.union([idRange.transform((r) => [r]), z.array(idRange).min(1)]);
/** The uids and gids a caller's bind-mounting service may run as: one set of ranges for both, or each its own. */
const idRule = z.union([
  idRanges.transform((r) => ({ uids: r, gids: r })),
  z
    .object({ uids: idRanges, gids: idRanges.optional() })
    .strict()
    .transform((o) => ({ uids: o.uids, gids: o.gids ?? o.uids })),
]);
export type IdRule = z.output<typeof idRule>;

/** Options an NFS volume may add to `addr=` in `o=`: none of them makes a bind mount, a remount or a setuid file. */
export const safeNfsOptions = [
  "vers", "nfsvers", "proto", "port", "rsize", "wsize", "timeo", "retrans", "hard", "soft", "ro", "rw", "noatime", "nodiratime", "relatime",
  "nolock", "noacl", "actimeo", "acregmin", "acregmax", "acdirmin", "acdirmax", "nosuid", "nodev", "noexec", "sec", "lookupcache", "nconnect",
  "tcp", "udp", "intr", "nointr", "sync", "async",
];

/** The site's rules (Spin's defaults), from `corral server --policy FILE`. */
export const sitePolicySchema = z
  .object({
    /** Allowed image registries; unset: any. */
    registries: z.array(z.string()).optional(),
    /** Host paths under which bind mounts are allowed. */
    bindRoots: z.array(z.string()).default([]),
    /**
     * The numeric user (and groups) a service with bind mounts may run as,
     * by the caller's user name, else `default`: what a user may read and
     * write on the host. Root (0) only where a rule names it.
     */
    bindIds: z.object({ default: idRule.default("1000-65535"), users: z.record(idRule).default({}) }).strict().default({}),
    capAdd: z.array(z.string()).default(["CHOWN", "SETGID", "SETUID", "DAC_OVERRIDE", "NET_BIND_SERVICE", "FOWNER", "KILL", "SETPCAP"]),
    portRange: z
      .union([z.string().regex(/^\d+-\d+$/), z.tuple([z.number().int(), z.number().int()]), z.object({ from: z.number().int(), to: z.number().int() })])
      .transform((v): [number, number] => (typeof v === "string" ? (v.split("-").map(Number) as [number, number]) : Array.isArray(v) ? v : [v.from, v.to]))
      .refine(([a, b]) => a >= 1 && a <= b && b <= 65535, "a range of ports from low to high, within 1-65535 (like 60000-60050)")
      .default("60000-60050"),
    publicPorts: z.array(z.number().int()).default([]),
    environment: z.string().default("sandbox"),
    domain: z.string().default("localhost"),
    /** Containers per service (compose scale, deploy.replicas, rancher scale, `corral scale`). */
    maxScale: z.number().int().min(1).default(100),
    /**
     * Volume drivers a volume may name. `local` takes no driver_opts but an
     * NFS mount to a server in `nfsServers`; any other driver listed is a
     * plugin the site installed and vouches for, options and all.
     */
    volumeDrivers: z.array(z.string()).default(["local"]),
    /** NFS servers (as written in `addr=`) a volume may mount; none by default. */
    nfsServers: z.array(z.string()).default([]),
    /** Options an NFS volume may set in `o=` besides `addr=`. */
    nfsOptions: z.array(z.string()).default(safeNfsOptions),
    /** Logging drivers a service may choose; the first is used when it chooses none. */
    loggingDrivers: z.array(z.string()).min(1).default(["json-file", "local", "none"]),
    /** json-file and local logs: the largest max-size and max-file, also applied when a service sets none. */
    logMaxSize: byteSize.default("10m"),
    logMaxFiles: z.number().int().min(1).default(3),
    /** Processes per container: applied when a service sets no limits.pids, and the most it may set. */
    defaultPidsLimit: z.number().int().min(1).default(1024),
    maxPidsLimit: z.number().int().min(1).default(32768),
    /** Memory per container: applied when a service sets none (maxMemory if only that is set), and the most it may set. */
    defaultMemory: byteSize.optional(),
    maxMemory: byteSize.optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.defaultPidsLimit > p.maxPidsLimit) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["defaultPidsLimit"], message: "is above maxPidsLimit" });
    if (p.defaultMemory && p.maxMemory && p.defaultMemory > p.maxMemory) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["defaultMemory"], message: "is above maxMemory" });
  });
export type SitePolicy = z.output<typeof sitePolicySchema>;

export const defaultPolicy: SitePolicy = sitePolicySchema.parse({});

export interface PolicyContext {
  stack: string;
  file: string;
  origins?: Origins;
  /** The caller's user name: whose uid range a bind-mounting service must run in. */
  user?: string;
}

/** The registry an image comes from, as Docker reads a reference. */
export function registryOf(image: string): string {
  const first = image.split("/")[0]!;
  if (image.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost")) return first;
  return "docker.io";
}

/** Strictly under the root: the root folder itself is not something a user was given. */
const under = (path: string, root: string) => {
  const p = posix.normalize(path).replace(/\/+$/, "");
  const r = posix.normalize(root).replace(/\/+$/, "");
  return p.startsWith(`${r}/`);
};

const inRanges = (id: number, ranges: Array<[number, number]>) => ranges.some(([a, b]) => id >= a && id <= b);
const showRanges = (ranges: Array<[number, number]>) => ranges.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(", ");

/** Bytes as a policy writes them: `10m`, `1g`, or the number. */
export function showBytes(n: number): string {
  for (const [unit, size] of [["g", 1024 ** 3], ["m", 1024 ** 2], ["k", 1024]] as const) if (n % size === 0) return `${n / size}${unit}`;
  return String(n);
}

export interface OptionProblem {
  /** Under the volume: `driver`, `driver_opts`, `driver_opts.o`, ... */
  key: string;
  reason: string;
}

const nfsTypes = ["nfs", "nfs4"];
const nfsDevice = /^:\/[^\s,]*$/;
const optionValue = /^[A-Za-z0-9._:+-]*$/;

/**
 * Why a volume's driver and options are not the site's to allow, or [].
 * `local` with options mounts whatever the options say (`type: none, o:
 * bind, device: /` is the host's root, `type: ext4, device: /dev/sda1` a
 * raw disk), so local takes only the NFS form, to a server the site names,
 * with options from its list. Pure.
 */
export function volumeProblems(driver: string | undefined, opts: Record<string, string> | undefined, policy: SitePolicy): OptionProblem[] {
  const name = driver ?? "local";
  if (!policy.volumeDrivers.includes(name)) return [{ key: "driver", reason: `${name} is not allowed (allowed: ${policy.volumeDrivers.join(", ") || "none"})` }];
  const entries = Object.entries(opts ?? {});
  if (name !== "local" || entries.length === 0) return [];
  const nfsForm = "the local driver takes no options but an NFS mount (type: nfs, o: addr=SERVER, device: :/PATH)";
  if (!opts?.type) return [{ key: `driver_opts.${entries[0]![0]}`, reason: `is not allowed: ${nfsForm}` }];
  if (!nfsTypes.includes(opts.type)) return [{ key: "driver_opts.type", reason: `${opts.type} is not allowed: ${nfsForm}` }];
  const problems: OptionProblem[] = [];
  for (const [k] of entries) if (!["type", "o", "device"].includes(k)) problems.push({ key: `driver_opts.${k}`, reason: "is not an NFS option (allowed: type, o, device)" });
  if (!opts.device || !nfsDevice.test(opts.device)) problems.push({ key: "driver_opts.device", reason: `${opts.device ? `"${opts.device}" ` : ""}must be the server's path as :/PATH` });
  const servers = policy.nfsServers.length ? policy.nfsServers.join(", ") : "none";
  const addrs: string[] = [];
  for (const item of (opts.o ?? "").split(",").filter(Boolean)) {
    const at = item.indexOf("=");
    const [option, value] = at < 0 ? [item, ""] : [item.slice(0, at), item.slice(at + 1)];
    if (option === "addr") addrs.push(value);
    else if (!policy.nfsOptions.includes(option)) problems.push({ key: "driver_opts.o", reason: `${option} is not an allowed NFS option (allowed: addr, ${policy.nfsOptions.join(", ")})` });
    else if (!optionValue.test(value)) problems.push({ key: "driver_opts.o", reason: `the value of ${option} may hold letters, digits and . _ : + - only` });
  }
  if (addrs.length !== 1) problems.push({ key: "driver_opts.o", reason: `must name one NFS server as addr=SERVER (allowed: ${servers})` });
  else if (!policy.nfsServers.includes(addrs[0]!)) problems.push({ key: "driver_opts.o", reason: `NFS server ${addrs[0]} is not allowed (allowed: ${servers})` });
  return problems;
}

/** Options of the logging drivers that bound their files, and which are a user's to set. */
const boundedLogOptions: Record<string, string[]> = {
  "json-file": ["max-size", "max-file", "compress", "labels", "labels-regex", "env", "env-regex", "tag"],
  local: ["max-size", "max-file", "compress"],
};
/** Bind propagation a user may ask for: shared and rshared would carry mounts out of the container onto the host. */
const bindPropagation = ["private", "rprivate", "slave", "rslave"];
/** tmpfs options that would let a file on it execute, setuid or act as a device: Docker mounts a tmpfs noexec,nosuid,nodev. */
const tmpfsRefused = ["exec", "suid", "dev"];

const allowedPorts = (policy: SitePolicy) =>
  `${policy.portRange[0]}-${policy.portRange[1]}${policy.publicPorts.length ? `, ${policy.publicPorts.join(", ")}` : ""}`;

/**
 * Every way a project breaks the site policy, each naming the file, the
 * service and the key, and what is allowed. Empty when it complies. Pure.
 */
export function checkPolicy(project: Project, policy: SitePolicy, ctx: PolicyContext): ComposeIssue[] {
  const issues: ComposeIssue[] = [];
  const fail = (service: string | undefined, key: string, path: string, reason: string) =>
    issues.push({ file: (service && ctx.origins?.[service]?.[key]) || ctx.file, path, reason });
  const allowedCaps = policy.capAdd.join(", ");

  for (const [name, s] of Object.entries(project.services)) {
    const at = (key: string) => `services.${name}.${key}`;
    if (s.build) fail(name, "build", at("build"), "is not allowed: images come from a registry; build and push the image, then name it in image:");
    if (s.image && policy.registries && !policy.registries.includes(registryOf(s.image))) {
      fail(name, "image", at("image"), `registry ${registryOf(s.image)} is not allowed (allowed: ${policy.registries.join(", ")})`);
    }
    if (!s.cap_drop.map((c) => c.toUpperCase()).includes("ALL")) fail(name, "cap_drop", at("cap_drop"), "must include ALL (cap_drop: [ALL]), then add back what the service needs with cap_add");
    const forbidden = s.cap_add.filter((c) => !policy.capAdd.includes(c.toUpperCase().replace(/^CAP_/, "")));
    if (forbidden.length > 0) fail(name, "cap_add", at("cap_add"), `${forbidden.join(", ")} ${forbidden.length > 1 ? "are" : "is"} not allowed (allowed: ${allowedCaps})`);
    if (s.privileged) fail(name, "privileged", at("privileged"), "is not allowed");
    const schedule = cronSchedule(s);
    const badSchedule = schedule !== undefined ? scheduleProblem(schedule) : undefined;
    if (badSchedule) fail(name, "labels", at(`labels.${cronLabels.schedule}`), badSchedule);
    if (s.network_mode && !["bridge", "default", "none"].includes(s.network_mode)) fail(name, "network_mode", at("network_mode"), `${s.network_mode} is not allowed (allowed: bridge, none)`);
    if (s.pid) fail(name, "pid", at("pid"), `${s.pid} is not allowed: containers keep their own process namespace`);
    if (s.ipc && !["private", "shareable", "none"].includes(s.ipc)) fail(name, "ipc", at("ipc"), `${s.ipc} is not allowed (allowed: private, shareable, none)`);

    const binds = (s.volumes ?? []).map((v, i) => ({ v, i })).filter(({ v }) => v.type === "bind");
    for (const { v, i } of binds) {
      const source = v.source ?? "";
      if (policy.bindRoots.some((root) => under(`${source}/x`, root) && !under(source, root))) {
        fail(name, "volumes", at(`volumes.${i}`), `bind mount ${source} is an allowed root itself: mount a folder inside it`);
      } else if (!policy.bindRoots.some((root) => under(source, root))) {
        fail(name, "volumes", at(`volumes.${i}`), `bind mount ${source} is not under an allowed root (allowed: ${policy.bindRoots.length ? policy.bindRoots.join(", ") : "none"})`);
      }
      const propagation = v.bind?.propagation;
      if (propagation && !bindPropagation.includes(propagation)) {
        fail(name, "volumes", at(`volumes.${i}.bind.propagation`), `${propagation} is not allowed: mounts must not propagate from the container to the host (allowed: ${bindPropagation.join(", ")})`);
      }
    }
    if (binds.length > 0) bindUser(s, (key, path, reason) => fail(name, key, at(path), reason));
    for (const [i, t] of (s.tmpfs ?? []).entries()) {
      const colon = t.indexOf(":");
      const [target, options] = colon < 0 ? [t, ""] : [t.slice(0, colon), t.slice(colon + 1)];
      const bad = options.split(",").filter((o) => tmpfsRefused.includes(o));
      if (bad.length > 0) fail(name, "tmpfs", at(`tmpfs.${i}`), `tmpfs ${target}: ${bad.join(", ")} ${bad.length > 1 ? "are" : "is"} not allowed (a tmpfs is mounted noexec,nosuid,nodev)`);
    }
    for (const [i, m] of (s.secrets ?? []).entries()) {
      if (m.mode !== undefined && (m.mode < 0 || m.mode > 0o777)) {
        fail(name, "secrets", at(`secrets.${i}.mode`), `mode ${m.mode.toString(8).padStart(4, "0")} is not allowed: a secret's mode is permissions only, at most 0777 (no setuid, setgid or sticky bit)`);
      }
    }
    if (s.scale > policy.maxScale) {
      // the key the number came from: rancher-compose's scale and compose's scale are `scale`, else deploy.replicas
      const fromReplicas = s.deploy?.replicas === s.scale && ctx.origins?.[name]?.scale === undefined;
      fail(name, fromReplicas ? "deploy" : "scale", at(fromReplicas ? "deploy.replicas" : "scale"), `${s.scale} containers is above the site's limit of ${policy.maxScale} per service`);
    }
    resourceLimits(s, (key, path, reason) => fail(name, key, at(path), reason));
    loggingRules(s, (key, path, reason) => fail(name, key, at(path), reason));
    s.ports.forEach((p, i) => {
      if (p.published === undefined) return;
      const inRange = p.published >= policy.portRange[0] && p.published <= policy.portRange[1];
      if (!inRange && !policy.publicPorts.includes(p.published)) fail(name, "ports", at(`ports.${i}`), `published port ${p.published} is not allowed (allowed: ${allowedPorts(policy)})`);
    });
  }

  /** A service with bind mounts runs as UID:GID, both in the caller's ranges, and adds only groups in those ranges. */
  function bindUser(s: ServiceSpec, problem: (key: string, path: string, reason: string) => void) {
    const m = /^(\d+):(\d+)$/.exec(s.user ?? "");
    if (!m) return problem("user", "user", `a service with bind mounts must run as a numeric user: UID:GID${s.user ? ` (not "${s.user}")` : ""}`);
    const rule = (ctx.user !== undefined ? policy.bindIds.users[ctx.user] : undefined) ?? policy.bindIds.default;
    const who = ctx.user !== undefined && policy.bindIds.users[ctx.user] ? `user ${ctx.user}` : "a user";
    const [uid, gid] = [Number(m[1]), Number(m[2])];
    if (!inRanges(uid, rule.uids)) problem("user", "user", `uid ${uid} is not allowed for ${who} with bind mounts (allowed: ${showRanges(rule.uids)})`);
    if (!inRanges(gid, rule.gids)) problem("user", "user", `gid ${gid} is not allowed for ${who} with bind mounts (allowed: ${showRanges(rule.gids)})`);
    for (const [i, g] of (s.group_add ?? []).entries()) {
      if (!/^\d+$/.test(g)) problem("group_add", `group_add.${i}`, `a service with bind mounts adds groups by number (not "${g}")`);
      else if (!inRanges(Number(g), rule.gids)) problem("group_add", `group_add.${i}`, `gid ${g} is not allowed for ${who} with bind mounts (allowed: ${showRanges(rule.gids)})`);
    }
  }

  function resourceLimits(s: ServiceSpec, problem: (key: string, path: string, reason: string) => void) {
    const pids = s.deploy?.resources?.limits?.pids;
    if (pids !== undefined && (pids < 1 || pids > policy.maxPidsLimit)) {
      problem("deploy", "deploy.resources.limits.pids", `${pids} is not allowed (allowed: 1-${policy.maxPidsLimit} processes)`);
    }
    if (policy.maxMemory === undefined) return;
    const max = policy.maxMemory;
    if (s.mem_limit !== undefined && s.mem_limit > max) problem("mem_limit", "mem_limit", `${showBytes(s.mem_limit)} is above the site's limit of ${showBytes(max)}`);
    const limit = s.deploy?.resources?.limits?.memory;
    if (limit !== undefined && limit > max) problem("deploy", "deploy.resources.limits.memory", `${showBytes(limit)} is above the site's limit of ${showBytes(max)}`);
  }

  function loggingRules(s: ServiceSpec, problem: (key: string, path: string, reason: string) => void) {
    const driver = s.logging?.driver ?? policy.loggingDrivers[0]!;
    if (!policy.loggingDrivers.includes(driver)) return problem("logging", "logging.driver", `${driver} is not allowed (allowed: ${policy.loggingDrivers.join(", ")})`);
    const allowed = boundedLogOptions[driver];
    if (!allowed) return; // none, or a driver the site added and vouches for
    for (const [k, v] of Object.entries(s.logging?.options ?? {})) {
      if (!allowed.includes(k)) problem("logging", `logging.options.${k}`, `is not an option of the ${driver} driver corral allows (allowed: ${allowed.join(", ")})`);
      else if (k === "max-size") {
        const n = parseBytes(v);
        if (n === undefined || n <= 0) problem("logging", `logging.options.${k}`, `invalid size "${v}" (examples: 10m, 512k)`);
        else if (n > policy.logMaxSize) problem("logging", `logging.options.${k}`, `${v} is above the site's limit of ${showBytes(policy.logMaxSize)}`);
      } else if (k === "max-file") {
        const n = /^\d+$/.test(v) ? Number(v) : NaN;
        if (!(n >= 1 && n <= policy.logMaxFiles)) problem("logging", `logging.options.${k}`, `${v} is not allowed (allowed: 1-${policy.logMaxFiles})`);
      }
    }
  }

  const users = (kind: "secrets" | "volumes", key: string) =>
    Object.entries(project.services).filter(([, s]) => (kind === "secrets" ? (s.secrets ?? []).some((m) => m.source === key) : (s.volumes ?? []).some((m) => m.source === key)));
  for (const [key, secret] of Object.entries(project.secrets)) {
    const name = secret.name ?? key;
    const [service, stack, ...rest] = name.split(".");
    const mounting = users("secrets", key).map(([n]) => n);
    if (rest.length === 0 || stack !== ctx.stack || !service || (mounting.length > 0 && !mounting.includes(service))) {
      issues.push({ file: ctx.file, path: `secrets.${key}`, reason: `the name ${name} must be SERVICE.STACK.FILE (e.g. ${mounting[0] ?? "app"}.${ctx.stack}.password)` });
    }
  }
  for (const [key, volume] of Object.entries(project.volumes)) {
    const name = volume.name ?? key;
    const [service, stack, ...rest] = name.split(".");
    const mounting = users("volumes", key).map(([n]) => n);
    if (rest.length > 0 || stack !== ctx.stack || !service || (mounting.length > 0 && !mounting.includes(service))) {
      issues.push({ file: ctx.file, path: `volumes.${key}`, reason: `the name ${name} must be SERVICE.STACK (e.g. ${mounting[0] ?? "db"}.${ctx.stack})` });
    }
    // an external volume's driver was checked when it was created ('corral volume create')
    if (!volume.external) for (const p of volumeProblems(volume.driver, volume.driver_opts, policy)) issues.push({ file: ctx.file, path: `volumes.${key}.${p.key}`, reason: p.reason });
  }
  return issues;
}

/**
 * The site's defaults on what a service leaves unset, so that every
 * container is bounded: the first logging driver, with max-size and max-file
 * for json-file and local; a pids limit; a memory limit where the site sets
 * one. Applied after checkPolicy; idempotent (an exported file reads back
 * the same). Pure.
 */
export function applySiteDefaults(project: Project, policy: SitePolicy): Project {
  const services = Object.fromEntries(
    Object.entries(project.services).map(([name, s]): [string, ServiceSpec] => {
      const driver = s.logging?.driver ?? policy.loggingDrivers[0]!;
      const bounded = boundedLogOptions[driver] !== undefined;
      const logging = {
        driver,
        ...(bounded || s.logging?.options
          ? { options: { ...(bounded ? { "max-size": showBytes(policy.logMaxSize), "max-file": String(policy.logMaxFiles) } : {}), ...s.logging?.options } }
          : {}),
      };
      const limits = s.deploy?.resources?.limits;
      const memory = s.mem_limit === undefined && limits?.memory === undefined ? (policy.defaultMemory ?? policy.maxMemory) : undefined;
      const deploy = {
        ...s.deploy,
        resources: { ...s.deploy?.resources, limits: { ...limits, pids: limits?.pids ?? policy.defaultPidsLimit, ...(memory !== undefined ? { memory } : {}) } },
      };
      return [name, { ...s, logging, deploy }];
    }),
  );
  return { ...project, services };
}

/**
 * Give a routed port written without a host port (`mode: ingress`) the
 * service's one port from the site's range: the one the service had before
 * if there was one, else the lowest free. Other ports written without a host
 * port (`- 80`) stay so: each container gets its own (assignSlotPorts).
 * Pure: `used` holds ports other stacks hold.
 */
export function assignPorts(
  project: Project,
  policy: SitePolicy,
  used: Set<number>,
  previous: Record<string, PortSpec[]>,
  ctx: PolicyContext,
): { project: Project; issues: ComposeIssue[] } {
  const taken = new Set(used);
  for (const s of Object.values(project.services)) for (const p of s.ports) if (p.published !== undefined) taken.add(p.published);
  const issues: ComposeIssue[] = [];
  const services = Object.fromEntries(
    Object.entries(project.services).map(([name, s]) => {
      const ports = s.ports.map((p, i) => {
        if (p.published !== undefined || p.mode !== "ingress") return p;
        const before = previous[name]?.find((q) => q.target === p.target && q.protocol === p.protocol && q.published !== undefined)?.published;
        let port = before !== undefined && !used.has(before) ? before : undefined;
        for (let n = policy.portRange[0]; port === undefined && n <= policy.portRange[1]; n++) if (!taken.has(n)) port = n;
        if (port === undefined) {
          issues.push({ file: ctx.origins?.[name]?.ports ?? ctx.file, path: `services.${name}.ports.${i}`, reason: `no free port left in ${policy.portRange[0]}-${policy.portRange[1]}` });
          return p;
        }
        taken.add(port);
        return { ...p, published: port };
      });
      return [name, { ...s, ports }];
    }),
  );
  return { project: { ...project, services }, issues };
}
