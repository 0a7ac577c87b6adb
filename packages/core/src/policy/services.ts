import { posix } from "node:path";
import type { Origins } from "../compose.js";
import { cronLabels, cronSchedule, scheduleProblem } from "../cron.js";
import type { ServiceSpec } from "../model.js";
import { parseBytes } from "../units.js";
import type { SitePolicy } from "./schema.js";
import { registryOf } from "../images.js";

// the site policy's rules for one service, each a named check (see serviceChecks)

export interface PolicyContext {
  stack: string;
  file: string;
  origins?: Origins;
  /** The caller's user name: whose uid range a bind-mounting service must run in. */
  user?: string;
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

/** Options of the logging drivers that bound their files, and which are a user's to set. */
export const boundedLogOptions: Record<string, string[]> = {
  "json-file": ["max-size", "max-file", "compress", "labels", "labels-regex", "env", "env-regex", "tag"],
  local: ["max-size", "max-file", "compress"],
};
/** Bind propagation a user may ask for: shared and rshared would carry mounts out of the container onto the host. */
const bindPropagation = ["private", "rprivate", "slave", "rslave"];
/** tmpfs options that would let a file on it execute, setuid or act as a device: Docker mounts a tmpfs noexec,nosuid,nodev. */
const tmpfsRefused = ["exec", "suid", "dev"];

const allowedPorts = (policy: SitePolicy) =>
  `${policy.portRange[0]}-${policy.portRange[1]}${policy.publicPorts.length ? `, ${policy.publicPorts.join(", ")}` : ""}`;

/** A problem of the service: the key it comes from (which names its file, see Origins), the path under the service, and why. */
export type Problem = (key: string, path: string, reason: string) => void;

/** One service under check. */
export interface Checked {
  name: string;
  s: ServiceSpec;
  policy: SitePolicy;
  ctx: PolicyContext;
  problem: Problem;
}

/** Images come from an allowed registry, never from a build. */
function imageRules({ s, policy, problem }: Checked) {
  if (s.build) problem("build", "build", "is not allowed: images come from a registry; build and push the image, then name it in image:");
  if (s.image && policy.registries && !policy.registries.includes(registryOf(s.image))) {
    problem("image", "image", `registry ${registryOf(s.image)} is not allowed (allowed: ${policy.registries.join(", ")})`);
  }
}

/** Every capability dropped, only the site's added back, nothing privileged. */
function privilegeRules({ s, policy, problem }: Checked) {
  if (!s.cap_drop.map((c) => c.toUpperCase()).includes("ALL")) problem("cap_drop", "cap_drop", "must include ALL (cap_drop: [ALL]), then add back what the service needs with cap_add");
  const forbidden = s.cap_add.filter((c) => !policy.capAdd.includes(c.toUpperCase().replace(/^CAP_/, "")));
  if (forbidden.length > 0) problem("cap_add", "cap_add", `${forbidden.join(", ")} ${forbidden.length > 1 ? "are" : "is"} not allowed (allowed: ${policy.capAdd.join(", ")})`);
  if (s.privileged) problem("privileged", "privileged", "is not allowed");
}

/** A scheduled job's schedule reads. */
function scheduleRule({ s, problem }: Checked) {
  const schedule = cronSchedule(s);
  const badSchedule = schedule !== undefined ? scheduleProblem(schedule) : undefined;
  if (badSchedule) problem("labels", `labels.${cronLabels.schedule}`, badSchedule);
}

/** The container keeps its own network, process and IPC namespaces. */
function namespaceRules({ s, problem }: Checked) {
  if (s.network_mode && !["bridge", "default", "none"].includes(s.network_mode)) problem("network_mode", "network_mode", `${s.network_mode} is not allowed (allowed: bridge, none)`);
  if (s.pid) problem("pid", "pid", `${s.pid} is not allowed: containers keep their own process namespace`);
  if (s.ipc && !["private", "shareable", "none"].includes(s.ipc)) problem("ipc", "ipc", `${s.ipc} is not allowed (allowed: private, shareable, none)`);
}

/** Bind mounts inside the site's roots, propagating nothing to the host, by a user of the caller's ranges. */
function bindRules(checked: Checked) {
  const { s, policy, problem } = checked;
  const binds = (s.volumes ?? []).map((v, i) => ({ v, i })).filter(({ v }) => v.type === "bind");
  for (const { v, i } of binds) {
    const source = v.source ?? "";
    if (policy.bindRoots.some((root) => under(`${source}/x`, root) && !under(source, root))) {
      problem("volumes", `volumes.${i}`, `bind mount ${source} is an allowed root itself: mount a folder inside it`);
    } else if (!policy.bindRoots.some((root) => under(source, root))) {
      problem("volumes", `volumes.${i}`, `bind mount ${source} is not under an allowed root (allowed: ${policy.bindRoots.length ? policy.bindRoots.join(", ") : "none"})`);
    }
    const propagation = v.bind?.propagation;
    if (propagation && !bindPropagation.includes(propagation)) {
      const allowed = bindPropagation.join(", ");
      problem("volumes", `volumes.${i}.bind.propagation`, `${propagation} is not allowed: mounts must not propagate from the container to the host (allowed: ${allowed})`);
    }
  }
  if (binds.length > 0) bindUser(checked);
}

/** A service with bind mounts runs as UID:GID, both in the caller's ranges, and adds only groups in those ranges. */
function bindUser({ s, policy, ctx, problem }: Checked) {
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

/** A tmpfs stays noexec,nosuid,nodev; a secret's mode is permissions only. */
function fileModeRules({ s, problem }: Checked) {
  for (const [i, t] of (s.tmpfs ?? []).entries()) {
    const colon = t.indexOf(":");
    const [target, options] = colon < 0 ? [t, ""] : [t.slice(0, colon), t.slice(colon + 1)];
    const bad = options.split(",").filter((o) => tmpfsRefused.includes(o));
    if (bad.length > 0) problem("tmpfs", `tmpfs.${i}`, `tmpfs ${target}: ${bad.join(", ")} ${bad.length > 1 ? "are" : "is"} not allowed (a tmpfs is mounted noexec,nosuid,nodev)`);
  }
  for (const [i, m] of (s.secrets ?? []).entries()) {
    if (m.mode !== undefined && (m.mode < 0 || m.mode > 0o777)) {
      const mode = m.mode.toString(8).padStart(4, "0");
      problem("secrets", `secrets.${i}.mode`, `mode ${mode} is not allowed: a secret's mode is permissions only, at most 0777 (no setuid, setgid or sticky bit)`);
    }
  }
}

/** No more containers than the site allows per service. */
function scaleRule({ name, s, policy, ctx, problem }: Checked) {
  if (s.scale > policy.maxScale) {
    // the key the number came from: rancher-compose's scale and compose's scale are `scale`, else deploy.replicas
    const fromReplicas = s.deploy?.replicas === s.scale && ctx.origins?.[name]?.scale === undefined;
    problem(fromReplicas ? "deploy" : "scale", fromReplicas ? "deploy.replicas" : "scale", `${s.scale} containers is above the site's limit of ${policy.maxScale} per service`);
  }
}

/** Processes and memory within the site's limits. */
function resourceLimits({ s, policy, problem }: Checked) {
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

/** An allowed logging driver, its files bounded by the site's limits. */
function loggingRules({ s, policy, problem }: Checked) {
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

/** Published ports from the site's range or its public ports. */
function portRules({ s, policy, problem }: Checked) {
  s.ports.forEach((p, i) => {
    if (p.published === undefined) return;
    const inRange = p.published >= policy.portRange[0] && p.published <= policy.portRange[1];
    if (!inRange && !policy.publicPorts.includes(p.published)) problem("ports", `ports.${i}`, `published port ${p.published} is not allowed (allowed: ${allowedPorts(policy)})`);
  });
}

/** The checks of a service, in the order its problems are listed. */
export const serviceChecks: ReadonlyArray<(checked: Checked) => void> = [
  imageRules,
  privilegeRules,
  scheduleRule,
  namespaceRules,
  bindRules,
  fileModeRules,
  scaleRule,
  resourceLimits,
  loggingRules,
  portRules,
];
