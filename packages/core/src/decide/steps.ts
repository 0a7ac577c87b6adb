import type { StackEvent } from "../events.js";
import { withSlotPorts } from "../host-ports.js";
import type { Step } from "../model.js";
import { exactImage } from "../images.js";
import { containerName } from "../names.js";
import type { ContainerRecord, StackState } from "../state.js";

// The steps operations are made of, and how a plan of them is written into the log.

/** Deterministic step id: stack, service, slot, action, revision and the operation that caused it. */
export const stepId = (stack: string, op: string, revision: number, service: string, action: string, slot?: number) =>
  `${stack}.${service}.${slot ?? 0}.${action}.r${revision}.${op}`;

/**
 * The events of a plan: its steps, then the wave that marks them planned.
 * The mark comes last, so that a plan written in several commits and cut
 * short (a crash between two of them) leaves its wave unplanned: the next
 * advance (a report, the reconcile tick) plans it again, and a step already
 * in the log (ids are deterministic) is not planned twice.
 */
export function planEvents(state: StackState, opId: string, services: string[], steps: Step[], now: number): StackEvent[] {
  const events: StackEvent[] = [];
  for (const step of steps) if (!state.steps[step.id]) events.push({ type: "StepPlanned", step, at: now });
  events.push({ type: "WavePlanned", op: opId, services });
  return events;
}

/** Containers by service, in the state's order. */
export function containersByService(state: StackState): Map<string, ContainerRecord[]> {
  const out = new Map<string, ContainerRecord[]>();
  for (const c of Object.values(state.containers)) {
    const list = out.get(c.service);
    if (list) list.push(c);
    else out.set(c.service, [c]);
  }
  return out;
}

/**
 * A slot's container: under its engine name, or under the one it had before
 * names told stacks apart (`STACK-SERVICE-N` for a service with a dash), so
 * a stack deployed before keeps its containers instead of doubling them.
 */
export function slotContainer(state: StackState, service: string, slot: number): ContainerRecord | undefined {
  const c = state.containers[containerName(state.name, service, slot)] ?? state.containers[`${state.name}-${service}-${slot}`];
  return c?.service === service && !c.previousOf ? c : undefined;
}

/** Create and start a service's container in a slot, at the current revision. */
export function newContainer(state: StackState, opId: string, service: string, slot: number, host: string, after: string[]): [Step, Step] {
  const revisionService = state.services[service]!;
  const { spec: serviceSpec, hash } = revisionService;
  // the slot's own host ports for the ports written without one
  const spec = withSlotPorts(serviceSpec, state.slotPorts?.[service]?.[String(slot)]);
  const rev = state.revision;
  const name = containerName(state.name, service, slot);
  const mounted = Object.fromEntries(
    (spec.volumes ?? []).flatMap((m) => (m.type === "volume" && m.source && state.volumes[m.source] ? [[m.source, state.volumes[m.source]!]] : [])),
  );
  const secretMounts = (spec.secrets ?? []).map((m) => {
    const secretName = state.secrets[m.source]?.name ?? m.source;
    return { name: secretName, version: state.secretVersions[secretName] ?? 0, target: m.target ?? m.source, uid: m.uid ?? "0", gid: m.gid ?? "0", mode: m.mode ?? 0o444 };
  });
  const create = stepId(state.name, opId, rev, service, "create", slot);
  // retain_ip: the address is asked for again on the host that had it; a host's subnet of the stack network is its own
  const previous = spec.retain_ip ? slotContainer(state, service, slot) : undefined;
  const previousIp = previous?.host === host ? previous.ip : undefined;
  // plain literals: these are made once per slot, and spreads of optional parts cost more than the rest
  const creating: Step = {
    op: opId,
    stack: state.name,
    service,
    slot,
    revision: rev,
    image: spec.image,
    container: name,
    host,
    id: create,
    action: "create",
    spec,
    hash,
    after,
  };
  const exact = exactImage(revisionService, host);
  if (exact) creating.pinned = exact;
  if (previousIp) creating.ip = previousIp;
  else if (previous?.ip) creating.addressLeft = `${previous.ip} on ${previous.host}`;
  if (Object.keys(mounted).length) creating.volumes = mounted;
  if (secretMounts.length) creating.secrets = secretMounts;
  const start = stepId(state.name, opId, rev, service, "start", slot);
  const starting: Step = { op: opId, stack: state.name, service, slot, revision: rev, image: spec.image, container: name, host, id: start, action: "start", after: [create], createdBy: create };
  return [creating, starting];
}

/** The step that puts a service's image (exactly the revision's, once pinned) on a host before its containers are made there. */
export function pullStep(state: StackState, opId: string, service: string, slot: number, host: string, force?: boolean): Step {
  const rs = state.services[service]!;
  const id = stepId(state.name, opId, state.revision, service, "pull", slot);
  const step: Step = { op: opId, stack: state.name, service, revision: state.revision, image: rs.spec.image, id, action: "pull", host, after: [] };
  const exact = exactImage(rs, host);
  if (exact) step.pinned = exact;
  if (force) step.forcePull = true;
  return step;
}

/** One step on an existing container. */
export function containerStep(state: StackState, opId: string, c: ContainerRecord, action: Step["action"], after: string[], extra: Partial<Step> = {}): Step {
  const tag = action === "rename" ? `rename-${extra.renameTo ?? ""}` : action;
  const step: Step = {
    id: stepId(state.name, opId, state.revision, c.service, `${tag}-${c.name}`, c.slot),
    op: opId,
    stack: state.name,
    service: c.service,
    slot: c.slot,
    revision: c.revision,
    action,
    host: c.host,
    image: c.image,
    container: c.name,
    after,
  };
  // the create that made it: the agent acts on that container only, not on another that took the name since
  if (c.createdBy) step.createdBy = c.createdBy;
  return Object.keys(extra).length > 0 ? Object.assign(step, extra) : step;
}

/** Stop, then remove, a container (only remove it when it is stopped already). */
export function stopAndRemove(state: StackState, opId: string, service: string, slot: number, name: string, host: string, image: string): Step[] {
  const createdBy = state.containers[name]?.host === host ? state.containers[name]?.createdBy : undefined;
  const step = (id: string, action: "stop" | "remove", after: string[]): Step => ({
    op: opId,
    stack: state.name,
    service,
    slot,
    revision: state.revision,
    image,
    container: name,
    host,
    id,
    action,
    after,
    ...(createdBy ? { createdBy } : {}),
  });
  const remove = stepId(state.name, opId, state.revision, service, `remove-${name}`, slot);
  // already stopped (an old container kept by an upgrade): only the removal is left
  if (state.containers[name]?.state === "stopped") return [step(remove, "remove", [])];
  // ids name the container: an old one kept aside shares its service and slot with the new one
  const stop = stepId(state.name, opId, state.revision, service, `stop-${name}`, slot);
  return [step(stop, "stop", []), step(remove, "remove", [stop])];
}

export function dropUndefined(step: Step): Step {
  let clean = true;
  for (const key in step) if (step[key as keyof Step] === undefined) clean = false;
  if (clean) return step;
  const out: Record<string, unknown> = {};
  for (const key in step) if (step[key as keyof Step] !== undefined) out[key] = step[key as keyof Step];
  return out as Step;
}

/** Containers in service order, then slot order. */
export const byServiceSlot = (a: { service: string; slot: number }, b: { service: string; slot: number }) =>
  a.service === b.service ? a.slot - b.slot : a.service < b.service ? -1 : 1;
