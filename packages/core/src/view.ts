import { isGlobal } from "./scheduling.js";
import { createHash } from "node:crypto";
import { cronSchedule } from "./cron.js";
import type { ServiceSpec } from "./model.js";
import { displayName } from "./names.js";
import type { ContainerRecord, StackState } from "./state.js";

/** Rows of `corral ps`, as the interface contract names their keys. */
export interface ServiceRow {
  id: string;
  type: "service";
  name: string;
  image: string;
  state: string;
  scale: string;
  endpoints: string;
  detail: string;
}

export interface ContainerRow {
  id: string;
  name: string;
  image: string;
  state: string;
  host: string;
  ip: string;
  docker: string;
  detail: string;
}

export const shortId = (prefix: string, key: string) => prefix + createHash("sha1").update(key).digest("hex").slice(0, 8);

/** A container's id: its own for its whole life (from the step that created it), kept through a rename aside, a stop, a confirm or a rollback. */
export const containerId = (c: ContainerRecord) => shortId("1i", c.createdBy ?? c.name);

/** What the rows of every service read, gathered in one pass over the containers and the steps. */
export interface Overview {
  containers: Map<string, ContainerRecord[]>;
  /** Services with a step planned and not reported. */
  busy: Set<string>;
}

export function overview(state: StackState): Overview {
  const containers = new Map<string, ContainerRecord[]>();
  for (const c of Object.values(state.containers)) {
    const list = containers.get(c.service);
    if (list) list.push(c);
    else containers.set(c.service, [c]);
  }
  const busy = new Set<string>();
  if (state.op?.status === "running") for (const r of Object.values(state.steps)) if (r.status === "planned") busy.add(r.step.service);
  return { containers, busy };
}

export function serviceState(state: StackState, service: string, scale: number, seen: Overview = overview(state)): string {
  const op = state.op;
  const upgrading = state.upgrades[service];
  if (op?.status === "running") {
    if (op.kind === "rollback" && upgrading?.status === "rolling-back") return "rolling-back";
    if (op.kind === "upgrade" && upgrading?.status === "upgrading") return "upgrading";
    const busy = seen.busy.has(service);
    const doing: Partial<Record<string, string>> = { rm: "removing", stop: "deactivating", restart: "restarting" };
    if (busy || !op.planned) return doing[op.kind] ?? "activating";
  }
  if (upgrading?.status === "paused") return "paused";
  if (state.errors[service]) return "error";
  if (upgrading?.status === "upgraded") return "upgraded";
  const live = (seen.containers.get(service) ?? []).filter((c) => c.state === "running" && !c.previousOf);
  if (scale === 0 || live.length === 0) return "inactive";
  if (live.some((c) => c.health === "unhealthy")) return "unhealthy";
  if (live.length < scale) return "degraded";
  return live.every((c) => c.health === "healthy") ? "healthy" : "active";
}

function upgradeDetail(state: StackState, service: string): string {
  const u = state.upgrades[service];
  if (!u) return "";
  if (u.status === "paused") return `paused: ${u.reason ?? ""}`;
  if (u.status === "upgraded") return `revision ${u.from} → ${u.to}: 'corral up --confirm-upgrade' or 'corral up --rollback'`;
  return "";
}

/** A stack's state, from its services' (`stack ls`, `inspect`). */
export function stackState(state: StackState): string {
  const op = state.op;
  if (op?.status === "running") {
    const doing: Partial<Record<string, string>> = { rm: "removing", stop: "deactivating", restart: "restarting", upgrade: "upgrading", rollback: "rolling-back" };
    return doing[op.kind] ?? "activating";
  }
  const seen = overview(state);
  const states = new Set(Object.entries(state.services).filter(([, { spec }]) => !cronSchedule(spec)).map(([name, { spec }]) => serviceState(state, name, spec.scale, seen)));
  if (states.size === 0) return "active";
  for (const s of ["error", "paused", "upgraded", "unhealthy"]) if (states.has(s)) return s;
  if ([...states].every((s) => s === "healthy")) return "healthy";
  if ([...states].every((s) => s === "healthy" || s === "active")) return "active";
  if ([...states].every((s) => s === "inactive")) return "inactive";
  return "degraded";
}

/** A scheduled job's line in ps: its schedule and its last runs with their exit codes. */
function cronRow(state: StackState, service: string, spec: ServiceSpec, schedule: string): ServiceRow {
  const runs = state.cron[service]?.runs ?? [];
  const going = runs.filter((r) => r.status === "running").length;
  const told = runs
    .slice(-3)
    .reverse()
    .map((r) => `#${r.run} ${r.status === "running" ? "running" : r.error ? `failed: ${r.error}` : `exit ${r.exitCode ?? 0}`}`);
  return {
    id: shortId("1s", `${state.name}/${service}`),
    type: "service",
    name: `${state.name}/${service}`,
    image: spec.image,
    state: going > 0 ? "running" : "scheduled",
    scale: `${going}/0`,
    endpoints: "",
    detail: `cron ${schedule}${told.length ? `; last runs: ${told.join(", ")}` : ""}`,
  };
}

export function serviceRows(state: StackState): ServiceRow[] {
  const seen = overview(state);
  return Object.entries(state.services).map(([service, { spec }]) => {
    const schedule = cronSchedule(spec);
    if (schedule) return cronRow(state, service, spec, schedule);
    const containers = seen.containers.get(service) ?? [];
    const endpoints = containers.flatMap((c) =>
      (c.ports ?? [])
        .filter((p) => p.published !== undefined)
        .map((p) => `${p.host_ip ?? "0.0.0.0"}:${p.published}->${p.target}/${p.protocol}`),
    );
    return {
      id: shortId("1s", `${state.name}/${service}`),
      type: "service" as const,
      name: `${state.name}/${service}`,
      image: spec.image,
      state: serviceState(state, service, spec.scale, seen),
      // a global service has no scale: one container per host that fits
      scale: `${containers.length}/${isGlobal(state.name, service, spec) ? "global" : spec.scale}`,
      endpoints: [...new Set(endpoints)].join(", "),
      detail: state.errors[service] ?? (upgradeDetail(state, service) || waitingDetail(state, service) || exitedDetail(containers)),
    };
  });
}

export function containerRows(state: StackState): ContainerRow[] {
  // an upgrade's old container is listed under its slot's name, after the new one, as Rancher listed them
  const slotName = (c: ContainerRecord) => displayName(c.previousOf ?? c.name);
  return Object.values(state.containers)
    .sort((a, b) => (slotName(a) === slotName(b) ? (a.previousOf ? 1 : 0) - (b.previousOf ? 1 : 0) : slotName(a) < slotName(b) ? -1 : 1))
    .map((c) => ({
      id: containerId(c),
      name: slotName(c),
      image: c.image,
      state: c.state,
      host: c.host,
      ip: c.ip ?? "",
      docker: c.dockerId ?? "",
      detail: c.previousOf ? previousDetail(state, c) : c.exited ? `exited with code ${c.exited.code}` : (c.health ?? ""),
    }));
}

/** What ps says of an upgrade's old container: that it is the previous one, of which revision, and the ways out. */
function previousDetail(state: StackState, c: ContainerRecord): string {
  const u = state.upgrades[c.service];
  const to = u ? ` (revision ${c.revision} → ${u.to})` : ` (revision ${c.revision})`;
  return `previous container, kept by the upgrade${to}: 'corral up --confirm-upgrade' removes it, 'corral up --rollback' starts it again`;
}

/** Containers of a service that stopped by themselves (their host saw them exit), and how. */
function exitedDetail(containers: ContainerRecord[]): string {
  return containers
    .filter((c) => c.exited && c.state === "stopped" && !c.previousOf)
    .map((c) => `${displayName(c.name)} exited with code ${c.exited!.code}`)
    .join("; ");
}

/** Containers of a service that wait for their disconnected host (no other host can take them), and why. */
function waitingDetail(state: StackState, service: string): string {
  return Object.entries(state.waiting ?? {})
    .filter(([name]) => state.containers[name]?.service === service)
    .map(([name, w]) => `${displayName(name)} waits for ${w.host} (disconnected): ${w.reason}`)
    .join("; ");
}
