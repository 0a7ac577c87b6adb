import { cronLabels, cronSchedule, scheduleProblem } from "./cron.js";
import { posix } from "node:path";
import { z } from "zod";
import type { ComposeIssue, Origins } from "./compose.js";
import type { PortSpec, Project } from "./model.js";

/** The site's rules (Spin's defaults), from `corral server --policy FILE`. */
export const sitePolicySchema = z
  .object({
    /** Allowed image registries; unset: any. */
    registries: z.array(z.string()).optional(),
    /** Host paths under which bind mounts are allowed. */
    bindRoots: z.array(z.string()).default([]),
    capAdd: z.array(z.string()).default(["CHOWN", "SETGID", "SETUID", "DAC_OVERRIDE", "NET_BIND_SERVICE", "FOWNER", "KILL", "SETPCAP"]),
    portRange: z
      .union([z.string().regex(/^\d+-\d+$/), z.tuple([z.number().int(), z.number().int()]), z.object({ from: z.number().int(), to: z.number().int() })])
      .transform((v): [number, number] => (typeof v === "string" ? (v.split("-").map(Number) as [number, number]) : Array.isArray(v) ? v : [v.from, v.to]))
      .default("60000-60050"),
    publicPorts: z.array(z.number().int()).default([]),
    environment: z.string().default("sandbox"),
    domain: z.string().default("localhost"),
  })
  .strict();
export type SitePolicy = z.output<typeof sitePolicySchema>;

export const defaultPolicy: SitePolicy = sitePolicySchema.parse({});

export interface PolicyContext {
  stack: string;
  file: string;
  origins?: Origins;
}

/** The registry an image comes from, as Docker reads a reference. */
export function registryOf(image: string): string {
  const first = image.split("/")[0]!;
  if (image.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost")) return first;
  return "docker.io";
}

/** Strictly below the root: the root itself holds every user's folder, so it is not "under" it (the agent checks the same on the real path). */
const under = (path: string, root: string) => {
  const p = posix.normalize(path).replace(/(.)\/$/, "$1");
  const r = posix.normalize(root).replace(/\/$/, "");
  return p !== (r || "/") && p.startsWith(`${r}/`);
};

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
      if (!policy.bindRoots.some((root) => under(source, root))) {
        fail(name, "volumes", at(`volumes.${i}`), `bind mount ${source} is not under an allowed root (allowed: ${policy.bindRoots.length ? policy.bindRoots.join(", ") : "none"})`);
      }
    }
    if (binds.length > 0 && !/^\d+:\d+$/.test(s.user ?? "")) {
      fail(name, "user", at("user"), `a service with bind mounts must run as a numeric user: UID:GID${s.user ? ` (not "${s.user}")` : ""}`);
    }
    s.ports.forEach((p, i) => {
      if (p.published === undefined) return;
      const inRange = p.published >= policy.portRange[0] && p.published <= policy.portRange[1];
      if (!inRange && !policy.publicPorts.includes(p.published)) fail(name, "ports", at(`ports.${i}`), `published port ${p.published} is not allowed (allowed: ${allowedPorts(policy)})`);
    });
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
  }
  return issues;
}

/**
 * Give `- 80` style ports (no published port) a port from the site's range:
 * the one the service had before if there was one, else the lowest free.
 * Pure: `used` holds ports other stacks publish.
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
        if (p.published !== undefined) return p;
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
