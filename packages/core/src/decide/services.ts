import { cronSchedule } from "../cron.js";
import type { StackEvent } from "../events.js";
import type { Step } from "../model.js";
import { globalSlots, type Placed } from "../placement.js";
import { newPlaced, placeService, placementHosts, rulesOf, stackPlaced } from "../scheduling.js";
import type { ContainerRecord, StackState } from "../state.js";
import type { HostInfo } from "./commands.js";
import { containersByService, newContainer, pullStep, slotContainer, stepId, stopAndRemove } from "./steps.js";

// What up, scale and the rest of an upgrade share: each service brought to what its spec says.

/**
 * The steps that bring services to what their spec says: stopped containers
 * started, missing slots created where the scheduler places them (beside
 * `others`, the other stacks' containers, and each placement made before),
 * slots above the scale removed. A global service gets one container per
 * host that fits (see globalSlots) and loses its surplus ones.
 */
export function planServices(state: StackState, opId: string, hosts: HostInfo[], services: string[], others: Placed[]): Step[] | StackEvent {
  const pulls: Step[] = [];
  const creates: Step[] = [];
  const starts: Step[] = [];
  const removals: Step[] = [];
  const byService = containersByService(state);
  const placed = [...others, ...stackPlaced(state)];
  const rev = state.revision;

  for (const service of services) {
    const { spec, hash } = state.services[service]!;
    if (cronSchedule(spec)) continue; // a scheduled job runs at its times, not all along
    const pulledOn = new Map<string, string>();
    const create = (slot: number, host: string, why: string) => {
      let pull = pulledOn.get(host);
      if (!pull) {
        // one per host: named by the first slot it serves there
        const pulling = pullStep(state, opId, service, slot, host, state.op?.pull);
        pull = pulling.id;
        pulledOn.set(host, pull);
        pulls.push(pulling);
      }
      const [creating, starting] = newContainer(state, opId, service, slot, host, [pull]);
      creating.placement = why;
      creates.push(creating);
      starts.push(starting);
      placed.push(newPlaced(state, service, slot, host));
    };
    const startIfStopped = (c: ContainerRecord) => {
      if (c.state !== "running") {
        const id = stepId(state.name, opId, rev, service, "start", c.slot);
        starts.push({ op: opId, stack: state.name, service, slot: c.slot, revision: rev, image: spec.image, container: c.name, id, action: "start", host: c.host, after: [] });
      }
    };
    const rules = rulesOf(state.name, service, spec);
    if ("problem" in rules) return { type: "OperationFailed", op: opId, reason: rules.problem };
    if (rules.global) {
      const mine = (byService.get(service) ?? []).filter((c) => !c.previousOf);
      for (const c of mine) if (c.hash === hash) startIfStopped(c); // a changed one is upgraded, not re-created
      const plan = globalSlots({ stack: state.name, service, rules }, placementHosts(hosts), placed);
      for (const p of plan.placements) create(p.slot, p.host, p.why);
      // a host that is not in the list is not told to remove anything: its steps could not reach it
      for (const x of plan.surplus) {
        const c = mine.find((m) => m.slot === x.slot);
        if (c && hosts.some((h) => h.id === x.host)) removals.push(...stopAndRemove(state, opId, c.service, c.slot, c.name, c.host, c.image));
      }
      continue;
    }
    const missing: number[] = [];
    for (let slot = 1; slot <= spec.scale; slot++) {
      const existing = slotContainer(state, service, slot);
      if (existing && existing.hash === hash) startIfStopped(existing);
      else if (!existing) missing.push(slot); // a changed service is upgraded, not re-created, by 'up --upgrade'
    }
    if (missing.length > 0) {
      const result = placeService(state, service, missing, hosts, placed);
      if ("problem" in result) return { type: "OperationFailed", op: opId, reason: result.problem };
      if (result.unplaced) return { type: "OperationFailed", op: opId, reason: result.unplaced.reason };
      for (const p of result.placements) create(p.slot, p.host, p.why);
    }
    // scale down: slots above the scale go away
    for (const c of byService.get(service) ?? []) {
      if (c.slot <= spec.scale) continue;
      removals.push(...stopAndRemove(state, opId, c.service, c.slot, c.name, c.host, c.image));
    }
  }
  return [...pulls, ...creates, ...starts, ...removals];
}
