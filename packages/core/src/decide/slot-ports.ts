import { conflict } from "../errors.js";
import type { StackEvent } from "../events.js";
import { assignSlotPorts, perContainerKeys, type PortPool, type ServiceSlotPorts } from "../host-ports.js";
import type { ServiceSpec } from "../model.js";
import { directPorts } from "../ports.js";
import { evolveAll, type StackState } from "../state.js";

// Host ports per slot: given out from the site's range, and the ones that keep a container from starting first.

/**
 * The decision's events, with the slot ports they call for: every slot of
 * the stack's services, as they stand after these events, gets its host
 * ports (see assignSlotPorts), inserted before the operation starts. Ports
 * the stack's own containers still hold for a slot they are not given to
 * (a container above the scale not yet removed) are not given out. Without
 * a pool (a caller that has none) nothing is assigned. Throws a conflict
 * when the range has no port left: nothing is decided.
 */
export function slotPortEvents(state: StackState, events: StackEvent[], pool: PortPool | undefined): StackEvent[] {
  if (!pool) return events;
  const after = evolveAll(state, events);
  if (!after.exists) return events;
  const taken = new Set(pool.taken);
  for (const c of Object.values(after.containers)) {
    const own = Object.values(after.slotPorts?.[c.service]?.[String(c.slot)] ?? {});
    const scale = after.services[c.service]?.spec.scale ?? 0;
    for (const p of c.ports ?? []) if (p.published !== undefined && (c.slot > scale || !own.includes(p.published))) taken.add(p.published);
  }
  const outcome = assignSlotPorts(after.services, after.slotPorts, { range: pool.range, taken: [...taken] });
  if ("problem" in outcome) throw conflict(outcome.problem);
  const assigned = Object.entries(outcome.changed).map(([service, slots]): StackEvent => ({ type: "SlotPortsAssigned", service, slots }));
  if (assigned.length === 0) return events;
  const at = events.findIndex((e) => e.type === "OperationStarted");
  return at < 0 ? [...events, ...assigned] : [...events.slice(0, at), ...assigned, ...events.slice(at)];
}

/**
 * Host ports a container publishes itself, in the old or the new spec: with
 * any, old and new cannot run side by side. A slot's own port (written
 * without a host port) blocks when the old and the new container both have it.
 */
export function portsBlockingStartFirst(before: ServiceSpec | undefined, after: ServiceSpec, slots?: ServiceSlotPorts): number[] {
  const held = [...(before ? directPorts(before) : []), ...directPorts(after)].flatMap((p) => (p.published === undefined ? [] : [p.published]));
  const kept = before ? perContainerKeys(after).filter((k) => perContainerKeys(before).includes(k)) : [];
  for (const ports of Object.values(slots ?? {})) for (const k of kept) if (ports[k] !== undefined) held.push(ports[k]);
  return [...new Set(held)].sort((a, b) => a - b);
}
