import { cronSchedule } from "../cron.js";
import type { StackEvent } from "../events.js";
import type { Step } from "../model.js";
import { asideName } from "../names.js";
import type { Placed } from "../placement.js";
import { isGlobal, newPlaced, placeService, stackPlaced } from "../scheduling.js";
import type { ContainerRecord, Operation, StackState } from "../state.js";
import type { HostInfo } from "./commands.js";
import { byServiceSlot, containerStep, dropUndefined, newContainer, planEvents, pullStep } from "./steps.js";

// Containers off draining and disconnected hosts, onto active ones.

/**
 * The containers a move takes off draining hosts: each live container (not
 * an upgrade's old one kept aside) of a service that is not global, not a
 * scheduled job and has no upgrade awaiting a verdict (it moves after
 * confirm or rollback), on a host whose state is draining; by service and
 * slot. Pure: the controller asks it to know which stacks to tick.
 */
export function drainingContainers(state: StackState, hosts: HostInfo[]): ContainerRecord[] {
  return containersOn(state, hosts, "draining");
}

/** The same for disconnected hosts (missed heartbeats): their containers are re-placed on active hosts. Pure. */
export function disconnectedContainers(state: StackState, hosts: HostInfo[]): ContainerRecord[] {
  return containersOn(state, hosts, "disconnected");
}

function containersOn(state: StackState, hosts: HostInfo[], hostState: "draining" | "disconnected"): ContainerRecord[] {
  if (!state.exists) return [];
  const leaving = new Set(hosts.filter((h) => h.state === hostState).map((h) => h.id));
  if (leaving.size === 0) return [];
  return Object.values(state.containers)
    .filter((c) => {
      if (c.previousOf || !leaving.has(c.host) || state.upgrades[c.service]) return false;
      const service = state.services[c.service];
      if (!service || c.slot > service.spec.scale || cronSchedule(service.spec)) return false;
      return !isGlobal(state.name, c.service, service.spec);
    })
    .sort(byServiceSlot);
}

/**
 * A move: each of its containers, per service in slot order and in batches
 * of the service's parallelism (the first step of a later batch waits out
 * its delay), is made anew in its slot (same name, same slot ports) on a
 * host the scheduler places it on. Stop-first: the old one stops and goes,
 * then the new one is created and started; start-first (update_config.order,
 * unless it keeps its address): the old one is renamed aside and runs until
 * the new one has started, then stops and goes. A stopped container moves
 * stopped. No host for one: the move fails with the scheduler's reason, and
 * nothing moves.
 */
export function planMove(state: StackState, op: Operation, hosts: HostInfo[], now: number, others: Placed[]): StackEvent[] {
  const names = new Set(op.containers ?? []);
  const moving = Object.values(state.containers)
    .filter((c) => names.has(c.name) && !c.previousOf)
    .sort(byServiceSlot);
  const leaving = (x: Placed) => moving.some((c) => c.service === x.service && c.slot === x.slot);
  const placed = [...others, ...stackPlaced(state).filter((x) => !leaving(x))];
  const lostHosts = new Set(hosts.filter((h) => h.state === "disconnected").map((h) => h.id));
  const lostEvents: StackEvent[] = [];
  const steps: Step[] = [];
  for (const service of [...new Set(moving.map((c) => c.service))]) {
    const spec = state.services[service]?.spec;
    if (!spec) continue;
    const mine = moving.filter((c) => c.service === service);
    const result = placeService(state, service, mine.map((c) => c.slot), hosts, placed);
    if ("problem" in result) return [{ type: "OperationFailed", op: op.id, reason: result.problem }];
    if (result.unplaced) return [{ type: "OperationFailed", op: op.id, reason: result.unplaced.reason }];
    for (const p of result.placements) placed.push(newPlaced(state, service, p.slot, p.host));
    const settings = spec.deploy?.update_config;
    const size = settings?.parallelism === 0 ? mine.length : Math.max(1, settings?.parallelism ?? 1); // 0: all at once, as Swarm's
    const delayMs = settings?.delay ?? 0;
    const startFirst = settings?.order === "start-first" && !spec.retain_ip;
    const pulled = new Map<string, string>();
    let previousBatch: string[] = [];
    let batch: string[] = [];
    for (const old of mine) {
      const p = result.placements.find((x) => x.slot === old.slot)!;
      let pull = pulled.get(p.host);
      if (!pull) {
        const pulling = pullStep(state, op.id, service, old.slot, p.host); // one per host, as in planServices
        pull = pulling.id;
        pulled.set(p.host, pull);
        steps.push(pulling);
      }
      const first = [pull, ...previousBatch];
      const lead: Partial<Step> = previousBatch.length > 0 && delayMs > 0 ? { delayMs } : {};
      const running = old.state === "running";
      if (lostHosts.has(old.host)) {
        // its host cannot be reached: it cannot be stopped first; its record goes to `lost` (a cleanup removes it once the host is back).
        // Its slot is down already, so there is nothing a rolling pace would keep running: every lost slot is re-placed at once
        // (as Swarm reschedules a down node's tasks), not one batch of update_config.parallelism after another
        lostEvents.push({ type: "ContainerLost", op: op.id, container: old.name, host: old.host });
        const [create, start] = newContainer(state, op.id, service, old.slot, p.host, [pull]);
        create.placement = p.why;
        delete create.ip;
        steps.push(create);
        if (running) steps.push(start);
        continue;
      } else if (running && startFirst) {
        const aside = asideName(old.name, old.revision);
        const rename = containerStep(state, op.id, old, "rename", first, { ...lead, renameTo: aside });
        const [create, start] = newContainer(state, op.id, service, old.slot, p.host, [rename.id]);
        create.placement = p.why;
        delete create.ip; // an address is a host's: the new host gives its own
        const retired = { ...old, name: aside };
        const stop = containerStep(state, op.id, retired, "stop", [start.id]);
        const remove = containerStep(state, op.id, retired, "remove", [stop.id]);
        steps.push(rename, create, start, stop, remove);
        batch.push(remove.id);
      } else {
        // stop-first, but the new container is made (on its host, not started) before the old one stops: a create
        // that fails (an image the new host cannot pull) leaves the old one running, not the slot empty
        const aside = asideName(old.name, old.revision);
        const rename = containerStep(state, op.id, old, "rename", first, { ...lead, renameTo: aside });
        const retired = { ...old, name: aside };
        const [create, start] = newContainer(state, op.id, service, old.slot, p.host, [rename.id]);
        create.placement = p.why;
        delete create.ip;
        if (running) {
          const stop = containerStep(state, op.id, retired, "stop", [create.id]);
          start.after = [stop.id];
          const remove = containerStep(state, op.id, retired, "remove", [start.id]);
          steps.push(rename, create, stop, start, remove);
          batch.push(remove.id);
        } else {
          const remove = containerStep(state, op.id, retired, "remove", [create.id]);
          steps.push(rename, create, remove);
          batch.push(remove.id);
        }
      }
      if (batch.length >= size) {
        previousBatch = batch;
        batch = [];
      }
    }
  }
  return [...lostEvents, ...planEvents(state, op.id, op.services ?? [], steps.map(dropUndefined), now)];
}
