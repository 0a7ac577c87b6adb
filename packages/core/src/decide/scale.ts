import { conflict } from "../errors.js";
import type { StackEvent } from "../events.js";
import type { Placed } from "../placement.js";
import { isGlobal, placeService, stackPlaced } from "../scheduling.js";
import type { Operation, StackState } from "../state.js";
import type { CommandOf, HostInfo } from "./commands.js";
import { refuseWhileBusy, refuseWhileUpgradePending, scopeOf } from "./shared.js";
import { planServices } from "./services.js";
import { slotPortEvents } from "./slot-ports.js";
import { planEvents, slotContainer } from "./steps.js";

// Scales: slots added or removed, placed as up places them; not a new revision.

/** `corral scale`: the services' new scales, and an operation that adds or removes their slots (not a new revision). */
export function decideScale(command: CommandOf<"Scale">, state: StackState): StackEvent[] {
  const services = scopeOf(state, Object.keys(command.scales));
  refuseWhileBusy(state, "scale");
  refuseWhileUpgradePending(state, "scale", services);
  for (const s of services) {
    const spec = state.services[s]!.spec;
    if (isGlobal(state.name, s, spec)) {
      throw conflict(`service ${s} of stack ${state.name} is global: it runs one container on every host that fits its placement rules, so it has no scale to set`);
    }
    const problem = command.hosts ? placementProblem(state, s, command.scales[s]!, command.hosts, command.placed ?? []) : undefined;
    if (problem) throw conflict(problem);
  }
  const events: StackEvent[] = services
    .filter((s) => state.services[s]!.spec.scale !== command.scales[s])
    .map((s) => ({ type: "ServiceScaled", service: s, scale: command.scales[s]! }));
  events.push({ type: "OperationStarted", op: command.op, kind: "scale", revision: state.revision, by: command.by, source: command.source, services });
  return slotPortEvents(state, events, command.ports);
}

/**
 * Why a service's new slots, up to `scale`, cannot be placed on `hosts`
 * beside what runs (this stack's containers and `others`, the other
 * stacks'), or undefined: the scheduler's reason, per host (a host port in
 * use, a rule broken, a host not active). Containers above the new scale
 * go, and are not counted.
 */
export function placementProblem(state: StackState, service: string, scale: number, hosts: HostInfo[], others: Placed[] = []): string | undefined {
  const spec = state.services[service]?.spec;
  if (!spec) return undefined;
  const slots: number[] = [];
  for (let slot = 1; slot <= scale; slot++) if (!slotContainer(state, service, slot)) slots.push(slot);
  if (slots.length === 0) return undefined;
  const placed = [...others, ...stackPlaced(state).filter((c) => c.service !== service || c.slot <= scale)];
  const result = placeService(state, service, slots, hosts, placed);
  if ("problem" in result) return result.problem;
  return result.unplaced?.reason;
}

/** A scale (or a global service following the hosts): the slots of its services are brought to their scale, as up does. */
export function planScale(state: StackState, op: Operation, hosts: HostInfo[], now: number, others: Placed[]): StackEvent[] {
  const scope = op.services ?? [];
  const steps = planServices(state, op.id, hosts, scope, others);
  if (!Array.isArray(steps)) return [steps];
  return planEvents(state, op.id, scope, steps, now);
}
