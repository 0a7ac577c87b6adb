import { createHash } from "node:crypto";
import { cronSchedule } from "../cron.js";
import type { StackEvent } from "../events.js";
import { restartWanted } from "../restart.js";
import { globalSlots, type Placed } from "../placement.js";
import { newPlaced, placeService, placementHosts, rulesOf, stackPlaced } from "../scheduling.js";
import { evolve, evolveAll, type ContainerRecord, type StackState } from "../state.js";
import { advance } from "./advance.js";
import { staleContainers } from "./cleanup.js";
import type { CommandOf, HostInfo } from "./commands.js";
import { cronTick } from "./cron.js";
import { disconnectedContainers, drainingContainers } from "./move.js";
import { opInProgress } from "./shared.js";
import { byServiceSlot, containersByService } from "./steps.js";

/**
 * Time passes: scheduled jobs run; an operation in progress may go on (an
 * upgrade's monitor window ends); with none, an upgrade due to confirm by
 * itself does, and else the stack follows its hosts (stale containers go,
 * global services follow the hosts, containers leave draining and
 * disconnected hosts), in that order.
 */
export function decideTick(command: CommandOf<"Tick">, state: StackState): StackEvent[] {
  const others = command.placed ?? [];
  const jobs = cronTick(state, command.hosts, command.now, others);
  // an operation in progress may be waiting on time alone (an upgrade's monitor window)
  if (opInProgress(state)) return [...jobs, ...advance(evolveAll(state, jobs), command.hosts, command.now, others)];
  const due = autoConfirmDue(state, command.now);
  if (due.length === 0) {
    const s = evolveAll(state, jobs);
    // stale containers on a host back from a disconnection go first: until then a slot may run twice
    const cleanup = cleanupTick(s, command.hosts, command.now, others);
    if (cleanup.length > 0) return [...jobs, ...cleanup];
    const global = globalTick(s, command.hosts, command.now, others);
    if (global.length > 0) return [...jobs, ...global];
    const moved = moveTick(s, command.hosts, command.now, others);
    return [...jobs, ...(moved.some((e) => e.type === "OperationStarted") ? moved : [...moved, ...healTick(evolveAll(s, moved), command.hosts, command.now, others)])];
  }
  const s = evolveAll(state, jobs);
  const start: StackEvent = { type: "OperationStarted", op: `${state.upgrades[due[0]!]!.op}-autoconfirm`, kind: "confirm", revision: state.revision, by: "corral", source: "api", services: due };
  return [...jobs, start, ...advance(evolve(s, start), command.hosts, command.now, others)];
}

/**
 * The services whose upgrade confirms by itself now: each upgrade asked to
 * confirm by itself does once every new container has stayed healthy (or,
 * without a health check, run) for the duration since it finished.
 */
function autoConfirmDue(state: StackState, now: number): string[] {
  // an upgrade's services confirm together: when every one of them is due
  const waiting = new Map<string, boolean>();
  for (const [service, u] of Object.entries(state.upgrades)) {
    if (u.status !== "upgraded" || !u.autoConfirmMs || u.finishedAt === undefined) {
      waiting.set(u.op, false);
      continue;
    }
    const finishedAt = u.finishedAt;
    const fresh = Object.values(state.containers).filter((c) => c.service === service && !c.previousOf);
    const since = fresh.map((c) => (c.state !== "running" || c.health === "unhealthy" ? Infinity : c.health === "healthy" ? Math.max(finishedAt, c.healthySince ?? 0) : finishedAt));
    const ready = since.every((t) => now - t >= u.autoConfirmMs!);
    waiting.set(u.op, (waiting.get(u.op) ?? true) && ready);
  }
  return Object.entries(state.upgrades).flatMap(([service, u]) => (waiting.get(u.op) ? [service] : []));
}

/** A short digest naming what an operation of corral's own acts on: its id ends with it. */
const shortHash = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 10);

/** The last operation, of corral's own, failed on the very same (see shortHash): it is not tried again for them. */
function failedBefore(state: StackState, what: string): boolean {
  const last = state.op;
  return last?.status === "failed" && last.id.endsWith(`-${what}`);
}

/**
 * A global service, with no operation in progress, follows the hosts: a
 * host that has come to fit (joined, activated, labelled) gets a container,
 * one that no longer fits loses it, as Swarm's global services do. That is a
 * scale operation of corral's own (by "corral"), planned at once. Its id
 * names what it places, so a failed one is not tried again by every tick for
 * the same hosts (the reason stays in ps and the events); a change of hosts
 * tries again. Services whose upgrade awaits a verdict, or stopped on
 * purpose (every container stopped), are left alone.
 */
function globalTick(state: StackState, hosts: HostInfo[], now: number, others: Placed[]): StackEvent[] {
  if (!state.exists || opInProgress(state) || state.op?.kind === "rm") return [];
  const placed = [...others, ...stackPlaced(state)];
  const due: string[] = [];
  const targets: string[] = [];
  const byService = containersByService(state);
  for (const [service, { spec }] of Object.entries(state.services)) {
    if (cronSchedule(spec) || state.upgrades[service]) continue;
    const rules = rulesOf(state.name, service, spec);
    if ("problem" in rules || !rules.global) continue;
    const mine = (byService.get(service) ?? []).filter((c) => !c.previousOf);
    if (mine.length > 0 && mine.every((c) => c.state !== "running")) continue;
    const plan = globalSlots({ stack: state.name, service, rules }, placementHosts(hosts), placed);
    const surplus = plan.surplus.filter((x) => hosts.some((h) => h.id === x.host));
    if (plan.placements.length === 0 && surplus.length === 0) continue;
    due.push(service);
    targets.push(...plan.placements.map((p) => `+${service}@${p.host}`), ...surplus.map((x) => `-${service}-${x.slot}@${x.host}`));
  }
  if (due.length === 0) return [];
  const what = shortHash(targets.sort().join(","));
  if (failedBefore(state, what)) return [];
  const start: StackEvent = { type: "OperationStarted", op: `global-v${state.version}-${what}`, kind: "scale", revision: state.revision, by: "corral", source: "api", services: due };
  return [start, ...advance(evolve(state, start), hosts, now, others)];
}

/** How long a container whose restart policy wants it back stays ended before corral starts it (its engine had the time to). */
export const HEAL_AFTER_MS = 10_000;

/** The containers healTick would start now (their restart policy wants them back, and their engine has not brought them back). */
export function restartDue(state: StackState, hosts: HostInfo[], now: number): ContainerRecord[] {
  const active = new Set(hosts.filter((h) => (h.state ?? "active") === "active").map((h) => h.id));
  return Object.values(state.containers)
    .filter((c) => c.state === "stopped" && c.exited && !c.previousOf && active.has(c.host) && now - c.exited.at >= HEAL_AFTER_MS)
    .filter((c) => {
      const spec = state.services[c.service]?.spec;
      return spec !== undefined && !cronSchedule(spec) && !state.upgrades[c.service] && restartWanted(spec, c.exited!.code);
    })
    .sort(byServiceSlot);
}

/**
 * With no operation in progress, a container whose process ended (the log
 * has its exit), whose restart policy wants it running again (restartWanted)
 * and that its engine has not brought back in HEAL_AFTER_MS, on an active
 * host, is started: a start of corral's own. An engine restart that cut a
 * start or a stop short leaves a container that its policy says should run,
 * and that its engine no longer starts. Its id names the exits it answers,
 * so each exit is answered once, and a failed start not tried again for it.
 */
function healTick(state: StackState, hosts: HostInfo[], now: number, others: Placed[]): StackEvent[] {
  if (!state.exists || opInProgress(state) || state.op?.kind === "rm") return [];
  const ended = restartDue(state, hosts, now);
  if (ended.length === 0) return [];
  const what = shortHash(ended.map((c) => `${c.name}@${c.host}:${c.exited!.at}`).join(","));
  if (state.recentOps?.includes(`heal-${what}`)) return []; // (started before: succeeded, or failed and not tried again)
  const start: StackEvent = {
    type: "OperationStarted",
    op: `heal-${what}`,
    kind: "start",
    revision: state.revision,
    by: "corral",
    source: "api",
    services: [...new Set(ended.map((c) => c.service))],
    containers: ended.map((c) => c.name),
  };
  return [start, ...advance(evolve(state, start), hosts, now, others)];
}

/**
 * The containers on disconnected hosts that no active host can take (a hard
 * constraint pins them, say): they wait for their host, each with the
 * scheduler's reason. The others are placed together, per service.
 */
function pinnedToLost(state: StackState, lost: ContainerRecord[], hosts: HostInfo[], others: Placed[]): Map<string, string> {
  const waits = new Map<string, string>();
  const leaving = (x: Placed) => lost.some((c) => c.service === x.service && c.slot === x.slot);
  const placed = [...others, ...stackPlaced(state).filter((x) => !leaving(x))];
  for (const service of [...new Set(lost.map((c) => c.service))]) {
    let mine = lost.filter((c) => c.service === service);
    for (let guard = 0; guard < 1000 && mine.length > 0; guard++) {
      const result = placeService(state, service, mine.map((c) => c.slot), hosts, placed);
      if ("problem" in result) {
        for (const c of mine) waits.set(c.name, result.problem);
        break;
      }
      if (!result.unplaced) {
        for (const p of result.placements) placed.push(newPlaced(state, service, p.slot, p.host));
        break;
      }
      const slot = result.unplaced.slot;
      const c = mine.find((x) => x.slot === slot);
      if (!c) break;
      waits.set(c.name, result.unplaced.reason);
      mine = mine.filter((x) => x !== c);
    }
  }
  return waits;
}

/**
 * With no operation in progress, the containers on draining hosts move to
 * active ones, as Swarm's drain does: a move of corral's own (by
 * "corral"). As for globalTick, its id names what it moves, so a failed one
 * (no host can take a pinned container, say) is not tried again by every
 * tick for the same containers; the containers stay where they are, and
 * the reason stays in ps and the events.
 */
function moveTick(state: StackState, hosts: HostInfo[], now: number, others: Placed[]): StackEvent[] {
  if (!state.exists || opInProgress(state) || state.op?.kind === "rm") return [];
  const lost = disconnectedContainers(state, hosts);
  const waits = pinnedToLost(state, lost, hosts, others);
  // why each waits, said once (and no more once it no longer waits)
  const said: StackEvent[] = [];
  for (const c of lost) {
    const reason = waits.get(c.name);
    if (reason && state.waiting?.[c.name]?.reason !== reason) said.push({ type: "ContainerWaiting", container: c.name, host: c.host, reason });
  }
  for (const [name, w] of Object.entries(state.waiting ?? {})) {
    if (!waits.has(name)) said.push({ type: "ContainerWaiting", container: name, host: w.host });
  }
  const moving = [...drainingContainers(state, hosts), ...lost.filter((c) => !waits.has(c.name))].sort(byServiceSlot);
  if (moving.length === 0) return said;
  state = evolveAll(state, said);
  const what = shortHash(moving.map((c) => `${c.name}@${c.host}`).sort().join(","));
  if (failedBefore(state, what)) return said;
  const disconnected = [...new Set(moving.filter((c) => lost.includes(c)).map((c) => c.host))].sort();
  const start: StackEvent = {
    type: "OperationStarted",
    op: `move-v${state.version}-${what}`,
    kind: "move",
    revision: state.revision,
    by: "corral",
    source: "api",
    services: [...new Set(moving.map((c) => c.service))],
    containers: moving.map((c) => c.name),
    hosts: [...new Set(moving.map((c) => c.host))].sort(),
    ...(disconnected.length > 0 ? { disconnected } : {}),
  };
  return [...said, start, ...advance(evolve(state, start), hosts, now, others)];
}

/**
 * With no operation in progress, the containers left on hosts that were
 * lost and are active again (their slots run elsewhere now) are stopped and
 * removed there: a cleanup of corral's own. Each step names its host: the
 * agent of that host alone runs it, and it acts on the engine's container
 * of that name there, never on the slot's new one elsewhere. As for
 * moveTick, a failed one is not tried again for the same containers.
 */
function cleanupTick(state: StackState, hosts: HostInfo[], now: number, others: Placed[]): StackEvent[] {
  if (!state.exists || opInProgress(state) || state.op?.kind === "rm") return [];
  const stale = staleContainers(state, hosts);
  if (stale.length === 0) return [];
  const what = shortHash(stale.map((l) => `${l.name}@${l.host}`).join(","));
  if (failedBefore(state, what)) return [];
  const start: StackEvent = {
    type: "OperationStarted",
    op: `cleanup-v${state.version}-${what}`,
    kind: "cleanup",
    revision: state.revision,
    by: "corral",
    source: "api",
    services: [...new Set(stale.map((l) => l.service))].sort(),
    containers: stale.map((l) => l.name),
    hosts: [...new Set(stale.map((l) => l.host))],
  };
  return [start, ...advance(evolve(state, start), hosts, now, others)];
}
