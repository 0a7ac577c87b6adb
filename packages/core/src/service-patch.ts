import { z } from "zod";
import type { ComposeIssue } from "./compose.js";
import type { DeploySpec, PortSpec, Project, ServiceSpec, UpdateConfig } from "./model.js";
import type { Revision } from "./state.js";
import { canonicalJson } from "./hash.js";
import { parseDuration } from "./units.js";
import { keyValue, parseMount, parsePublish, parseSecret } from "./service-patch/flags.js";

export { parseMount, parsePublish, parseSecret } from "./service-patch/flags.js";

/**
 * Swarm's service verbs as changes to one service of a stack: `service
 * create` is a patch of an empty service, `service update` a patch of the
 * current one. A patch names what to add and remove in Docker's own flag
 * syntax (`--env-add K=V`, `--publish-add 8080:80/tcp`, `--mount-add
 * type=volume,source=v,target=/data`); the result is a project whose compose
 * file goes through the same checks as any `up`, so nothing here decides
 * what is allowed.
 */

const item = z.string().min(1).max(4096);
const list = z.array(item).max(100);
const duration = z.string().min(1).max(32);

export const servicePatchSchema = z
  .object({
    image: z.string().min(1).max(512).optional(),
    /** The command's arguments (Swarm's `--args`, or `service create IMAGE CMD...`). */
    args: z.array(z.string().max(4096)).max(100).optional(),
    envAdd: list.optional(),
    envRm: list.optional(),
    publishAdd: list.optional(),
    publishRm: list.optional(),
    secretAdd: list.optional(),
    secretRm: list.optional(),
    mountAdd: list.optional(),
    mountRm: list.optional(),
    constraintAdd: list.optional(),
    constraintRm: list.optional(),
    labelAdd: list.optional(),
    labelRm: list.optional(),
    containerLabelAdd: list.optional(),
    containerLabelRm: list.optional(),
    replicas: z.number().int().min(0).max(10_000).optional(),
    mode: z.enum(["replicated", "global"]).optional(),
    user: z.string().min(1).max(64).optional(),
    healthCmd: z.string().min(1).max(4096).optional(),
    healthInterval: duration.optional(),
    healthTimeout: duration.optional(),
    healthRetries: z.number().int().min(0).max(100).optional(),
    healthStartPeriod: duration.optional(),
    noHealthcheck: z.boolean().optional(),
    updateParallelism: z.number().int().min(0).max(10_000).optional(),
    updateDelay: duration.optional(),
    updateFailureAction: z.enum(["pause", "continue", "rollback"]).optional(),
    updateOrder: z.enum(["stop-first", "start-first"]).optional(),
    updateMonitor: duration.optional(),
    updateMaxFailureRatio: z.number().min(0).max(1).optional(),
    capDrop: list.optional(),
    capAdd: list.optional(),
  })
  .strict();
export type ServicePatch = z.infer<typeof servicePatchSchema>;

/** A service with nothing but its image: what `service create` patches. Capabilities dropped, as the site's policy asks of every service. */
export const emptyService = (image: string): ServiceSpec => ({ image, environment: {}, labels: {}, ports: [], cap_add: [], cap_drop: ["ALL"], scale: 1 });

/** The Docker flag a patch key stands for, for errors: envAdd → --env-add. */
export const flagOf = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

const samePort = (a: PortSpec, b: PortSpec) => a.target === b.target && a.protocol === b.protocol && (b.published === undefined || a.published === b.published);

/** Records a malformed value of the patch, by its key (named as its flag). */
type Bad = (key: keyof ServicePatch, reason: string) => void;

/**
 * The service after the patch, and the project's top-level volumes and
 * secrets it needs (a secret mounted: the store's, `external`; a volume:
 * `external` when `knownVolumes` has it, the stack's own otherwise). Every
 * malformed value is an issue naming `where` (e.g. "service update
 * shop/web") and the flag; none: the patch applies.
 */
export function applyServicePatch(
  project: Project,
  service: string,
  patch: ServicePatch,
  where: string,
  knownVolumes: ReadonlySet<string> = new Set(),
): { project: Project } | { issues: ComposeIssue[] } {
  const issues: ComposeIssue[] = [];
  const bad: Bad = (key, reason) => issues.push({ file: where, path: `services.${service}: ${flagOf(key)}`, reason });
  const current = project.services[service];
  if (!current && !patch.image) return { issues: [{ file: where, path: `services.${service}`, reason: "no such service (and no image given to create it)" }] };
  const spec: ServiceSpec = structuredClone(current ?? emptyService(patch.image!));
  const volumes = { ...project.volumes };
  const secrets = { ...project.secrets };

  patchCommand(spec, patch);
  patchEnvironment(spec, patch, bad);
  const deploy = (spec.deploy ??= {});
  patchServiceLabels(deploy, patch, bad);
  patchPorts(spec, patch, bad);
  patchSecrets(spec, secrets, patch, bad);
  patchMounts(spec, volumes, knownVolumes, patch, bad);
  patchConstraints(deploy, patch);
  patchCapabilities(spec, patch);
  patchScale(spec, deploy, patch, bad);
  patchHealthcheck(spec, patch, bad);
  patchUpdateConfig(deploy, patch, bad);
  if (Object.keys(deploy).length === 0) delete spec.deploy;

  if (issues.length) return { issues };
  return { project: withMounted(project, service, spec, volumes, secrets) };
}

/** The image, the command's arguments and the user. */
function patchCommand(spec: ServiceSpec, patch: ServicePatch) {
  if (patch.image) spec.image = patch.image;
  if (patch.args) {
    if (patch.args.length) spec.command = patch.args;
    else delete spec.command;
  }
  if (patch.user) spec.user = patch.user;
}

/** Environment variables, and the labels of the containers. */
function patchEnvironment(spec: ServiceSpec, patch: ServicePatch, bad: Bad) {
  for (const k of patch.envRm ?? []) delete spec.environment[k];
  for (const e of patch.envAdd ?? []) {
    const kv = keyValue(e);
    if (!kv) bad("envAdd", `"${e}" is not KEY=VALUE`);
    else spec.environment[kv[0]] = kv[1];
  }
  for (const k of patch.containerLabelRm ?? []) delete spec.labels[k];
  for (const l of patch.containerLabelAdd ?? []) {
    const kv = keyValue(l);
    if (!kv) bad("containerLabelAdd", `"${l}" is not KEY=VALUE`);
    else spec.labels[kv[0]] = kv[1];
  }
}

/** The service's own labels (deploy.labels). */
function patchServiceLabels(deploy: DeploySpec, patch: ServicePatch, bad: Bad) {
  if (patch.labelRm?.length && deploy.labels) for (const k of patch.labelRm) delete deploy.labels[k];
  for (const l of patch.labelAdd ?? []) {
    const kv = keyValue(l);
    if (!kv) bad("labelAdd", `"${l}" is not KEY=VALUE`);
    else (deploy.labels ??= {})[kv[0]] = kv[1];
  }
}

/** Published ports: an added one replaces the same port; a removal without a published port takes every one of its target and protocol. */
function patchPorts(spec: ServiceSpec, patch: ServicePatch, bad: Bad) {
  for (const p of patch.publishRm ?? []) {
    const port = parsePublish(p);
    if (typeof port === "string") bad("publishRm", port);
    else spec.ports = spec.ports.filter((q) => !samePort(q, port));
  }
  for (const p of patch.publishAdd ?? []) {
    const port = parsePublish(p);
    if (typeof port === "string") bad("publishAdd", port);
    else spec.ports = [...spec.ports.filter((q) => !(q.target === port.target && q.protocol === port.protocol && q.published === port.published)), port];
  }
}

/** Secret mounts, by source: a secret newly mounted is the store's (external) unless the project declares it. */
function patchSecrets(spec: ServiceSpec, secrets: Project["secrets"], patch: ServicePatch, bad: Bad) {
  for (const s of patch.secretRm ?? []) spec.secrets = (spec.secrets ?? []).filter((m) => m.source !== s);
  for (const s of patch.secretAdd ?? []) {
    const mount = parseSecret(s);
    if (typeof mount === "string") bad("secretAdd", mount);
    else {
      spec.secrets = [...(spec.secrets ?? []).filter((m) => m.source !== mount.source), mount];
      secrets[mount.source] ??= { external: true };
    }
  }
}

/** Mounts, by target: a named volume is external when it is known (knownVolumes), else the stack's own. */
function patchMounts(spec: ServiceSpec, volumes: Project["volumes"], knownVolumes: ReadonlySet<string>, patch: ServicePatch, bad: Bad) {
  for (const t of patch.mountRm ?? []) spec.volumes = (spec.volumes ?? []).filter((m) => m.target !== t);
  for (const m of patch.mountAdd ?? []) {
    const mount = parseMount(m);
    if (typeof mount === "string") bad("mountAdd", mount);
    else {
      spec.volumes = [...(spec.volumes ?? []).filter((v) => v.target !== mount.target), mount];
      if (mount.type === "volume" && mount.source) volumes[mount.source] ??= knownVolumes.has(mount.source) ? { external: true } : {};
    }
  }
}

/** Placement constraints, told apart without their spaces. */
function patchConstraints(deploy: DeploySpec, patch: ServicePatch) {
  if (patch.constraintRm?.length || patch.constraintAdd?.length) {
    const placement = (deploy.placement ??= {});
    const norm = (c: string) => c.replace(/\s+/g, "");
    const kept = (placement.constraints ?? []).filter((c) => !(patch.constraintRm ?? []).some((r) => norm(r) === norm(c)));
    placement.constraints = [...kept, ...(patch.constraintAdd ?? []).filter((c) => !kept.some((k) => norm(k) === norm(c)))];
  }
}

/** Capabilities to drop and to add back. */
function patchCapabilities(spec: ServiceSpec, patch: ServicePatch) {
  // capabilities are added to what the service has, as Docker's --cap-add and --cap-drop do
  if (patch.capDrop) spec.cap_drop = [...new Set([...spec.cap_drop, ...patch.capDrop.map((c) => c.toUpperCase())])];
  if (patch.capAdd) spec.cap_add = [...new Set([...spec.cap_add, ...patch.capAdd.map((c) => c.toUpperCase())])];
}

/** The mode, and the number of replicas (which a global service has none of). */
function patchScale(spec: ServiceSpec, deploy: DeploySpec, patch: ServicePatch, bad: Bad) {
  if (patch.mode) deploy.mode = patch.mode;
  if (patch.replicas !== undefined) {
    if ((patch.mode ?? deploy.mode) === "global") bad("replicas", "a global service runs one container per host: replicas do not apply");
    spec.scale = patch.replicas;
    if (deploy.replicas !== undefined) deploy.replicas = patch.replicas;
  }
}

/** The health check, in Docker's flags (CMD-SHELL, as `docker service create --health-cmd` gives). */
function patchHealthcheck(spec: ServiceSpec, patch: ServicePatch, bad: Bad) {
  if (patch.noHealthcheck) spec.healthcheck = { disable: true };
  else if (patch.healthCmd || patch.healthInterval || patch.healthTimeout || patch.healthRetries !== undefined || patch.healthStartPeriod) {
    const h = { ...(spec.healthcheck?.disable ? {} : spec.healthcheck) };
    if (patch.healthCmd) h.test = ["CMD-SHELL", patch.healthCmd];
    if (!h.test) bad("healthCmd", "the other --health-* flags need a health check: give --health-cmd");
    const ms = (key: "healthInterval" | "healthTimeout" | "healthStartPeriod") => {
      const v = patch[key];
      if (v === undefined) return undefined;
      const d = parseDuration(v);
      if (d === undefined || d <= 0) bad(key, `"${v}" is not a duration such as 5s or 1m30s`);
      return d;
    };
    const interval = ms("healthInterval");
    const timeout = ms("healthTimeout");
    const start = ms("healthStartPeriod");
    if (interval !== undefined) h.interval = interval;
    if (timeout !== undefined) h.timeout = timeout;
    if (start !== undefined) h.start_period = start;
    if (patch.healthRetries !== undefined) h.retries = patch.healthRetries;
    delete h.disable;
    spec.healthcheck = h;
  }
}

/** Rollout settings: the service's update_config, as Swarm keeps them in its spec. */
function patchUpdateConfig(deploy: DeploySpec, patch: ServicePatch, bad: Bad) {
  const u: UpdateConfig = { ...deploy.update_config };
  if (patch.updateParallelism !== undefined) u.parallelism = patch.updateParallelism;
  if (patch.updateFailureAction) u.failure_action = patch.updateFailureAction;
  if (patch.updateOrder) u.order = patch.updateOrder;
  if (patch.updateMaxFailureRatio !== undefined) u.max_failure_ratio = patch.updateMaxFailureRatio;
  for (const [key, field] of [
    ["updateDelay", "delay"],
    ["updateMonitor", "monitor"],
  ] as const) {
    const v = patch[key];
    if (v === undefined) continue;
    const d = parseDuration(v);
    if (d === undefined || d < 0) bad(key, `"${v}" is not a duration such as 10s or 1m`);
    else u[field] = d;
  }
  const touched = Object.keys(u).length > 0 && JSON.stringify(u) !== JSON.stringify(deploy.update_config ?? {});
  if (touched) deploy.update_config = u;
}

/** The project with the patched service, and of the top-level volumes and secrets only those a service mounts. */
function withMounted(project: Project, service: string, spec: ServiceSpec, volumes: Project["volumes"], secrets: Project["secrets"]): Project {
  // a top-level volume or secret no service mounts any more goes with the last mount of it
  const usedVolumes = new Set(Object.entries({ ...project.services, [service]: spec }).flatMap(([, s]) => (s.volumes ?? []).map((v) => v.source)));
  const usedSecrets = new Set(Object.entries({ ...project.services, [service]: spec }).flatMap(([, s]) => (s.secrets ?? []).map((v) => v.source)));
  return {
    services: { ...project.services, [service]: spec },
    volumes: Object.fromEntries(Object.entries(volumes).filter(([n]) => usedVolumes.has(n))),
    secrets: Object.fromEntries(Object.entries(secrets).filter(([n]) => usedSecrets.has(n))),
  };
}

/** True when the patch asks for nothing but a number of replicas (Swarm's `service update --replicas N`, a scale). */
export const onlyReplicas = (patch: ServicePatch) => patch.replicas !== undefined && Object.keys(patch).every((k) => k === "replicas");

/**
 * Swarm's PreviousSpec: the service as it was before its current spec came,
 * i.e. in the latest revision before `current` whose spec of it differs (none:
 * it has had one spec since it was made). Rolling back to it makes that spec
 * current, so a second rollback returns, as Swarm's does.
 */
export function previousSpec(revisions: Record<number, Revision>, current: number, service: string): { revision: number; spec: ServiceSpec } | undefined {
  const now = revisions[current]?.services[service];
  if (!now) return undefined;
  for (let r = current - 1; r >= 1; r--) {
    const then = revisions[r]?.services[service];
    if (!then) {
      if (revisions[r]) return undefined; // the service did not exist then: nothing before it
      continue;
    }
    // the spec itself, not its hash: a new secret version changes the hash and is no other spec to go back to
    if (canonicalJson(then.spec) !== canonicalJson(now.spec)) return { revision: r, spec: then.spec };
  }
  return undefined;
}
