import type { StackEvent } from "../events.js";
import type { Step } from "../model.js";
import type { LostContainer, Operation, StackState } from "../state.js";
import type { HostInfo } from "./commands.js";
import { planEvents, stepId } from "./steps.js";

// The containers left on hosts that were lost and are back: their slots run elsewhere now, and they go.

/** Containers left on lost hosts that are active again: a cleanup removes them. Pure: the controller asks it to know which stacks to tick. */
export function staleContainers(state: StackState, hosts: HostInfo[]): LostContainer[] {
  if (!state.exists || !state.lost) return [];
  const back = new Set(hosts.filter((h) => (h.state ?? "active") === "active").map((h) => h.id));
  return Object.values(state.lost)
    .filter((l) => back.has(l.host))
    .sort((a, b) => (a.host === b.host ? (a.name < b.name ? -1 : 1) : a.host < b.host ? -1 : 1));
}

/** A cleanup: stop, then remove, each stale container on its host (hosts back and active now). */
export function planCleanup(state: StackState, op: Operation, hosts: HostInfo[], now: number): StackEvent[] {
  const steps: Step[] = [];
  for (const l of staleContainers(state, hosts)) steps.push(...staleSteps(state, op.id, l));
  return planEvents(state, op.id, op.services ?? [], steps, now);
}

/** Stop, then remove, a container left on a lost host: on that host, by its engine name there (step ids name the host: the slot's successor has the same name). */
export function staleSteps(state: StackState, opId: string, l: LostContainer): Step[] {
  const base = {
    op: opId,
    stack: state.name,
    service: l.service,
    slot: l.slot,
    revision: l.revision,
    image: l.image,
    container: l.name,
    host: l.host,
    ...(l.createdBy ? { createdBy: l.createdBy } : {}),
  };
  const stop: Step = { ...base, id: stepId(state.name, opId, state.revision, l.service, `stop-${l.name}@${l.host}`, l.slot), action: "stop", after: [] };
  const remove: Step = { ...base, id: stepId(state.name, opId, state.revision, l.service, `remove-${l.name}@${l.host}`, l.slot), action: "remove", after: [stop.id] };
  return [stop, remove];
}
