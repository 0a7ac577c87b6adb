import type { ComposeIssue } from "./compose.js";
import type { PortSpec, Project, ServiceSpec } from "./model.js";
import type { SitePolicy } from "./policy/schema.js";
import { boundedLogOptions, serviceChecks, showBytes, type PolicyContext } from "./policy/services.js";
import { volumeProblems } from "./policy/volumes.js";

// the site's policy; its parts, in policy/: schema.ts (the policy file), services.ts (the rules for a service), volumes.ts (volume drivers)

export { defaultPolicy, safeNfsOptions, sitePolicySchema } from "./policy/schema.js";
export type { IdRule, SitePolicy } from "./policy/schema.js";
export { showBytes } from "./policy/services.js";
export type { PolicyContext } from "./policy/services.js";
export { volumeProblems } from "./policy/volumes.js";
export type { OptionProblem } from "./policy/volumes.js";

/**
 * Every way a project breaks the site policy, each naming the file, the
 * service and the key, and what is allowed. Empty when it complies. Pure.
 */
export function checkPolicy(project: Project, policy: SitePolicy, ctx: PolicyContext): ComposeIssue[] {
  const issues: ComposeIssue[] = [];
  for (const [name, s] of Object.entries(project.services)) {
    const problem = (key: string, path: string, reason: string) =>
      issues.push({ file: (name && ctx.origins?.[name]?.[key]) || ctx.file, path: `services.${name}.${path}`, reason });
    for (const check of serviceChecks) check({ name, s, policy, ctx, problem });
  }
  return [...issues, ...namingIssues(project, policy, ctx)];
}

/** The top-level secrets and volumes: named SERVICE.STACK[.FILE] after the service that mounts them, volumes by an allowed driver. */
function namingIssues(project: Project, policy: SitePolicy, ctx: PolicyContext): ComposeIssue[] {
  const issues: ComposeIssue[] = [];
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
