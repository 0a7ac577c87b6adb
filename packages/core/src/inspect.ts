import { pinnedDigest } from "./images.js";
import type { ServiceSpec } from "./model.js";
import { displayName } from "./names.js";
import type { ContainerRecord, StackState } from "./state.js";
import { containerId, overview, serviceState, shortId, stackState, type Overview } from "./view.js";

/** What `inspect` needs besides the stack: the site's names and where the hosts are reached. */
export interface InspectContext {
  environment: string;
  domain: string;
  /** Host id → the address users reach it on. */
  hostAddresses: Record<string, string>;
  /** Host id → its name (its id when unset). */
  hostNames?: Record<string, string>;
}

export interface PublicEndpoint {
  hostId: string;
  hostName: string;
  ipAddress: string;
  port: number;
  instanceId: string;
  serviceId: string;
  type: "publicEndpoint";
}

export const fqdn = (stack: string, service: string, ctx: InspectContext) => `${service}.${stack}.${ctx.environment}.${ctx.domain}`;

function publicEndpoints(state: StackState, service: string, containers: ContainerRecord[], ctx: InspectContext): PublicEndpoint[] {
  return containers
    .filter((c) => c.state === "running" && !c.previousOf)
    .flatMap((c) =>
      (c.ports ?? [])
        .filter((p) => p.published !== undefined)
        .map((p) => ({
          hostId: c.host,
          hostName: ctx.hostNames?.[c.host] ?? c.host,
          ipAddress: p.host_ip && p.host_ip !== "0.0.0.0" ? p.host_ip : (ctx.hostAddresses[c.host] ?? "0.0.0.0"),
          port: p.published!,
          instanceId: containerId(c),
          serviceId: shortId("1s", `${state.name}/${service}`),
          type: "publicEndpoint" as const,
        })),
    );
}

function upgradeView(state: StackState, service: string) {
  const u = state.upgrades[service];
  return u ? { status: u.status, from: u.from, to: u.to, ...(u.reason ? { reason: u.reason } : {}) } : null;
}

function containerView(state: StackState, c: ContainerRecord, ctx: InspectContext) {
  return {
    type: "container" as const,
    id: containerId(c),
    name: displayName(c.previousOf ?? c.name),
    stack: state.name,
    service: c.service,
    slot: c.slot,
    state: c.state,
    health: c.health ?? "none",
    revision: c.revision,
    image: c.image,
    host: c.host,
    hostName: ctx.hostNames?.[c.host] ?? c.host,
    ip: c.ip ?? "",
    docker: c.dockerId ?? "",
    ports: c.ports ?? [],
    fqdn: fqdn(state.name, c.service, ctx),
    previous: c.previousOf !== undefined,
  };
}

/** `inspect STACK/SERVICE`: one object with everything a user asks of a service. The config never holds secret values, only their names. */
export function inspectService(state: StackState, service: string, ctx: InspectContext, seen: Overview = overview(state)) {
  const current = state.services[service]!;
  const { spec, hash, ids } = current;
  const own = seen.containers.get(service) ?? [];
  const containers = [...own].sort((a, b) => (a.name < b.name ? -1 : 1));
  const live = containers.filter((c) => c.state === "running" && !c.previousOf);
  const health = live.length === 0 || live.every((c) => c.health === undefined) ? "none" : live.some((c) => c.health === "unhealthy") ? "unhealthy" : "healthy";
  return {
    type: "service" as const,
    id: shortId("1s", `${state.name}/${service}`),
    name: `${state.name}/${service}`,
    stack: state.name,
    service,
    state: serviceState(state, service, spec.scale, seen),
    health,
    revision: state.revision,
    image: spec.image,
    /** What the image was when the revision was made: its registry digest, or (an image no registry knows) the id on each host. */
    digest: pinnedDigest(current) ?? null,
    imageIds: ids ?? {},
    scale: spec.scale,
    running: live.length,
    fqdn: fqdn(state.name, service, ctx),
    publicEndpoints: publicEndpoints(state, service, own, ctx),
    error: state.errors[service] ?? null,
    upgrade: upgradeView(state, service),
    configHash: hash,
    config: spec satisfies ServiceSpec,
    containers: containers.map((c) => containerView(state, c, ctx)),
  };
}

/** `inspect STACK`. */
export function inspectStack(state: StackState, ctx: InspectContext) {
  const seen = overview(state);
  const services = Object.keys(state.services).map((s) => inspectService(state, s, ctx, seen));
  return {
    type: "stack" as const,
    id: shortId("1st", state.name),
    name: state.name,
    state: stackState(state),
    revision: state.revision,
    owner: state.owner ?? "",
    group: state.group ?? "",
    upgrades: Object.entries(state.upgrades).map(([service, u]) => ({ service, status: u.status, from: u.from, to: u.to, ...(u.reason ? { reason: u.reason } : {}) })),
    operation: state.op ? { id: state.op.id, kind: state.op.kind, status: state.op.status, ...(state.op.reason ? { reason: state.op.reason } : {}) } : null,
    publicEndpoints: services.flatMap((s) => s.publicEndpoints),
    services,
  };
}

/** `inspect CONTAINER`. */
export function inspectContainer(state: StackState, name: string, ctx: InspectContext) {
  const c = state.containers[name];
  return c ? containerView(state, c, ctx) : undefined;
}
