import { createHash } from "node:crypto";
import { conflict, notFound } from "./errors.js";
import type { RevisionService, Source, StackEvent } from "./events.js";
import { configHash } from "./hash.js";
import { canonicalJson } from "./hash.js";
import type { Project, ServiceSpec, Step, StepReport } from "./model.js";
import { asideName, containerName, displayName, runContainerName } from "./names.js";
import { blockedByFailure, sendable } from "./dispatch.js";
import { directPorts } from "./ports.js";
import { assignSlotPorts, perContainerKeys, withSlotPorts, type PortPool, type ServiceSlotPorts } from "./host-ports.js";
import { cronOverlapAllowed, cronSchedule, lastFire, nextFire, scheduleProblem } from "./cron.js";
import { Draft, evolve, evolveAll, type ContainerRecord, type LostContainer, type Operation, type StackState } from "./state.js";
import { containerId } from "./view.js";
import { globalSlots, hostBreaks, type Placed } from "./placement.js";
import { isGlobal, newPlaced, placeService, placementHosts, rulesOf, stackPlaced, type PlannedPlacement } from "./scheduling.js";

export interface HostInfo {
  id: string;
  name?: string;
  /** Unset reads as active. */
  state?: "active" | "disconnected" | "draining" | "inactive";
  labels?: Record<string, string>;
}


export type Command =
  | {
      type: "Up";
      stack: string;
      op: string;
      services: Record<string, ServiceSpec>;
      volumes?: Project["volumes"];
      secrets?: Project["secrets"];
      /** Latest versions of the secrets the project mounts (store name → version). */
      secretVersions?: Record<string, number>;
      by: string;
      source: Source;
      /** up --upgrade, --force-upgrade, --confirm-upgrade, --rollback [--to-revision N], --batch-size. */
      upgrade?: boolean;
      force?: boolean;
      confirm?: boolean;
      rollback?: boolean;
      toRevision?: number;
      batchSize?: number;
      intervalMs?: number;
      startFirst?: boolean;
      autoConfirmMs?: number;
      pull?: boolean;
      /** When, for history. */
      now?: number;
      /** The group a new stack belongs to (the creator's primary group). */
      group?: string;
      /** History's rollback note for the revision it commits (set by --rollback --to-revision). */
      note?: string;
      /** With rollback: only these services' pending upgrades (`service rollback STACK/SERVICE`); the others stay as they are. */
      rollbackServices?: string[];
      /** The site's range and the host ports other stacks hold: each slot's ports written without a host port come from it. */
      ports?: PortPool;
    }
  | { type: "Remove"; stack: string; op: string; by: string; source: Source }
  /** `corral stack create --empty NAME`: a stack with no services yet, owned by its creator. */
  | { type: "Create"; stack: string; by: string; group?: string }
  /** `corral rm --type service STACK/SERVICE`: a new revision without it; its containers go. */
  | { type: "RemoveService"; stack: string; op: string; service: string; by: string; source: Source; now?: number }
  /** `corral rm --type container NAME`: the container goes; its slot is made anew (unless scaled down). */
  | { type: "RemoveContainer"; stack: string; op: string; container: string; by: string; source: Source }
  /** `corral scale STACK/SERVICE=N ...`: add or remove slots (highest first); not a new revision. */
  | {
      type: "Scale";
      stack: string;
      op: string;
      scales: Record<string, number>;
      by: string;
      source: Source;
      /** As for Up: new slots get their host ports from it. */
      ports?: PortPool;
      /** The live hosts: a scale that cannot be placed on them is refused, and changes nothing. */
      hosts?: HostInfo[];
      /** The other stacks' containers (see stackPlaced): ports and container labels span stacks. */
      placed?: Placed[];
    }
  /** `corral stop|start|restart STACK[/SERVICE]`: restart goes in batches, with an interval, as Rancher's did. */
  | { type: "Lifecycle"; stack: string; op: string; action: "stop" | "start" | "restart"; services?: string[]; batchSize?: number; intervalMs?: number; by: string; source: Source }
  /** Plan the steps of the operation in progress, on the live hosts. */
  /**
   * `hosts`: every registered host (only active ones take new containers);
   * `placed`: the other stacks' containers (see stackPlaced), for host ports
   * and container-label rules, on every command that may place containers.
   */
  | { type: "Plan"; hosts: HostInfo[]; now: number; placed?: Placed[] }
  /** An agent's report on a step; the next wave is planned on `hosts`. */
  | { type: "Report"; report: StepReport; hosts: HostInfo[]; now: number; placed?: Placed[] }
  /**
   * Time passes: an upgrade that has run long enough confirms by itself
   * (--auto-confirm), scheduled jobs run, and a global service with no
   * operation in progress gets a container on each host that has come to fit
   * (and loses those on hosts that no longer do).
   */
  | { type: "Tick"; now: number; hosts: HostInfo[]; placed?: Placed[] }
  /** A container's health check changed its verdict. */
  /** `host`: the host that vouched for the verdict (its signature); a verdict about a container on another host is nobody's to give. */
  | { type: "Health"; host: string; container: string; dockerId: string; health: "healthy" | "unhealthy"; now: number }
  /**
   * A container's process ended on its host (Docker's die event, or the agent's reconcile finding it exited), as
   * `host` vouches: recorded for a container the log has running, there, with that engine id, and no step of corral's
   * own in flight for it (a stop, a removal, a rename, a start: those are corral's doing, or will say how they went).
   */
  | { type: "Exited"; host: string; container: string; dockerId: string; exitCode: number; now: number }
  /** Re-drive steps planned and not reported within the timeout; fail them after `maxAttempts`. */
  | { type: "Resend"; now: number; timeoutMs: number; maxAttempts?: number; hosts?: HostInfo[]; placed?: Placed[] }
  /**
   * The controller cannot carry on the operation in progress for a reason
   * that a retry would meet again (its decision does not fit in the store):
   * it fails with the reason; an upgrade pauses, so that rollback and
   * confirm stay open.
   */
  | { type: "Abandon"; reason: string };

const opInProgress = (state: StackState) => state.op?.status === "running";

const doingText: Record<Operation["kind"], string> = {
  up: "coming up",
  rm: "being removed",
  upgrade: "being upgraded",
  confirm: "confirming an upgrade",
  rollback: "rolling back",
  scale: "being scaled",
  stop: "stopping",
  start: "starting",
  restart: "restarting",
  "rm-service": "removing a service",
  "rm-container": "re-creating a container",
  move: "moving containers off a draining host",
  cleanup: "removing stale containers from a host back from a disconnection",
};

function refuseWhileBusy(state: StackState, what: string): void {
  const op = state.op;
  if (op && op.status === "running") {
    const outs = op.kind === "upgrade" ? ` (or 'corral up --rollback' once it settles)` : "";
    throw conflict(
      `cannot ${what} stack ${state.name}: it is ${doingText[op.kind]} (operation ${op.id}); wait for it to settle${outs}, or remove the stack with 'corral rm --type stack ${state.name}'`,
    );
  }
}

type UpCommand = Extract<Command, { type: "Up" }>;

const started = (command: UpCommand, kind: Operation["kind"], revision: number, scope: { services?: string[]; confirms?: string[] } = {}): StackEvent => ({
  type: "OperationStarted",
  op: command.op,
  kind,
  revision,
  by: command.by,
  source: command.source,
  ...(scope.services?.length ? { services: scope.services } : {}),
  ...(scope.confirms?.length ? { confirms: scope.confirms } : {}),
  ...(command.batchSize ? { batchSize: command.batchSize } : {}),
  ...(command.intervalMs !== undefined ? { intervalMs: command.intervalMs } : {}),
  ...(command.startFirst ? { startFirst: true } : {}),
  ...(command.pull ? { pull: true } : {}),
});

/** Services whose upgrade waits for a verdict (upgraded, or paused by a failure), in the state's order. */
export function pendingUpgrades(state: StackState): string[] {
  return Object.entries(state.upgrades).flatMap(([service, u]) => (u.status === "upgraded" || u.status === "paused" ? [service] : []));
}

/** The services whose pending upgrade an operation made. */
const upgradedBy = (state: StackState, op: string) => Object.entries(state.upgrades).flatMap(([service, u]) => (u.op === op ? [service] : []));

/**
 * A rollback of these services' pending upgrades: each goes back to the
 * revision its old containers were made from. When what runs afterwards is
 * an earlier revision (every service as that revision has it), the stack is
 * back at that revision; when not (upgrades begun at different revisions,
 * or other services changed since), the rollback is a revision of its own.
 */
function rollbackOf(state: StackState, services: string[], op: string, by: string, source: Source, now?: number): StackEvent[] {
  const back: Record<string, number> = {};
  const target: Record<string, RevisionService> = { ...state.services };
  for (const service of services) {
    const u = state.upgrades[service]!;
    back[service] = u.from;
    const before = state.revisions[u.from]?.services[service];
    if (!before) delete target[service];
    else target[service] = { ...before, spec: { ...before.spec, scale: state.services[service]?.spec.scale ?? before.spec.scale } };
  }
  const froms = [...new Set(Object.values(back))];
  const earlier = froms.length === 1 ? state.revisions[froms[0]!] : undefined;
  const same = earlier && sameServices(earlier.services, target);
  const rollback: StackEvent = { type: "OperationStarted", op, kind: "rollback", revision: same ? earlier.revision : state.lastRevision + 1, by, source, services };
  if (same) return [rollback];
  const commit: StackEvent = {
    type: "RevisionCommitted",
    revision: state.lastRevision + 1,
    services: target,
    volumes: state.volumes,
    secrets: state.secrets,
    secretVersions: state.secretVersions,
    changed: services,
    by,
    source,
    rollbackTo: back,
    rollback: `rollback of ${services.join(", ")}`,
    ...(now ? { at: now } : {}),
  };
  return [commit, rollback];
}

/** The same services with the same configuration (scale aside: it is not part of a revision). */
function sameServices(a: Record<string, RevisionService>, b: Record<string, RevisionService>): boolean {
  const names = Object.keys(a);
  return names.length === Object.keys(b).length && names.every((n) => b[n]?.hash === a[n]!.hash);
}

function decideUp(command: UpCommand, state: StackState): StackEvent[] {
  refuseWhileBusy(state, "up");
  const pending = pendingUpgrades(state);
  if (command.rollback && command.toRevision === undefined) {
    const which = command.rollbackServices ? pending.filter((s) => command.rollbackServices!.includes(s)) : pending;
    if (which.length === 0) throw conflict(`${command.rollbackServices ? `service ${command.rollbackServices.join(", ")} of ` : ""}stack ${state.name} has no upgrade to roll back; to go back to an earlier revision: 'corral up --rollback --to-revision N' (see 'corral history ${state.name}')`);
    return rollbackOf(state, which, command.op, command.by, command.source, command.now);
  }
  if (command.toRevision !== undefined) {
    const target = state.revisions[command.toRevision];
    if (!target || !state.exists) {
      const earlier = state.earlier.some((life) => life.revisions[command.toRevision!]) ? `; an earlier life of the stack had one, before it was removed ('corral history ${state.name} --all'), and that history is not deployed again` : "";
      throw notFound(`stack ${state.name} has no revision ${command.toRevision} (see 'corral history ${state.name}')${earlier}`);
    }
    const services = Object.fromEntries(Object.entries(target.services).map(([n, r]) => [n, r.spec]));
    return decideUp(
      { ...command, toRevision: undefined, rollback: false, upgrade: true, services, volumes: target.volumes, secrets: target.secrets, secretVersions: target.secretVersions, note: `rollback to ${command.toRevision}` },
      state,
    );
  }
  if (command.confirm && !command.upgrade && !command.force) {
    // with nothing awaiting, it settles at once
    return [started(command, "confirm", state.revision, { services: pending })];
  }

  const events: StackEvent[] = [];
  const fresh = !state.exists;
  if (fresh) {
    // a new stack, or a new life of one removed: what follows is decided in that life (revisions from 1)
    const created: StackEvent = { type: "StackCreated", stack: command.stack, by: command.by, owner: command.by, group: command.group ?? command.by };
    events.push(created);
    state = evolve(state, created);
  }
  const names = { ...state.secrets, ...command.secrets };
  const services: Record<string, RevisionService> = { ...state.services };
  const changed: string[] = [];
  const toUpgrade: string[] = [];
  const withLive = new Set(Object.values(state.containers).flatMap((c) => (c.previousOf ? [] : [c.service])));
  for (const [name, spec] of Object.entries(command.services)) {
    const hash = configHash(spec, command.secretVersions, names);
    const current = state.services[name];
    const live = withLive.has(name);
    const hashChanged = current !== undefined && current.hash !== hash;
    if (hashChanged && live && !command.upgrade && !command.force) {
      throw conflict(`service ${name} of stack ${command.stack} has changed; run 'corral up --upgrade' to upgrade it`);
    }
    if (!current || hashChanged || current.spec.scale !== spec.scale) changed.push(name);
    if (live && (hashChanged || command.force)) toUpgrade.push(name);
    services[name] = { spec, hash };
  }
  const volumes = { ...state.volumes, ...command.volumes };
  const secrets = names;
  const secretVersions = { ...state.secretVersions, ...command.secretVersions };
  const topChanged =
    canonicalJson(volumes) !== canonicalJson(state.volumes) ||
    canonicalJson(secrets) !== canonicalJson(state.secrets) ||
    canonicalJson(secretVersions) !== canonicalJson(state.secretVersions);
  const needsRevision = changed.length > 0 || topChanged || fresh || toUpgrade.length > 0;
  const revision = needsRevision ? state.lastRevision + 1 : state.revision;
  if (needsRevision) {
    events.push({
      type: "RevisionCommitted",
      revision,
      services,
      volumes,
      secrets,
      secretVersions,
      changed: [...new Set([...changed, ...toUpgrade])],
      by: command.by,
      source: command.source,
      ...(command.now ? { at: command.now } : {}),
      ...(command.note ? { rollback: command.note } : {}),
    });
  }
  for (const name of command.startFirst ? toUpgrade : []) {
    const blocking = portsBlockingStartFirst(state.services[name]?.spec, services[name]!.spec, state.slotPorts?.[name]);
    if (blocking.length > 0) {
      const ports = `host port${blocking.length > 1 ? "s" : ""} ${blocking.join(", ")}`;
      throw conflict(
        `service ${name} publishes ${ports} on its container: start-first would need the old and the new container on ${blocking.length > 1 ? "them" : "it"} at once; publish ${blocking.length > 1 ? "them" : "it"} with 'mode: ingress' (the host agent then routes ${blocking.length > 1 ? "them" : "it"} to healthy containers, as Swarm's routing mesh does) and upgrade, or upgrade it stop-first`,
      );
    }
  }
  // Rancher's rule, per service: a service whose upgrade is pending and that changes again has that
  // upgrade finished first; --confirm-upgrade finishes every pending one; the others stay as they are
  const confirms = pending.filter((s) => command.confirm || toUpgrade.includes(s));
  if (toUpgrade.length > 0) {
    events.push({
      type: "UpgradeStarted",
      op: command.op,
      from: state.revision,
      to: revision,
      services: toUpgrade,
      confirm: command.confirm ?? false,
      forced: command.force ?? false,
      ...(command.autoConfirmMs ? { autoConfirmMs: command.autoConfirmMs } : {}),
    });
    events.push(started(command, "upgrade", revision, { confirms }));
  } else if (confirms.length > 0 && !needsRevision) {
    events.push(started(command, "confirm", revision, { services: confirms }));
  } else {
    events.push(started(command, "up", revision, { confirms }));
  }
  return events;
}

/** Scale, stop, start, restart and rm act on what runs: not on a service whose upgrade waits for a verdict. */
function refuseWhileUpgradePending(state: StackState, what: string, services: string[]): void {
  const waiting = services.filter((s) => state.upgrades[s] && state.upgrades[s].status !== "upgrading");
  if (waiting.length === 0) return;
  const u = state.upgrades[waiting[0]!]!;
  const which = waiting.length === 1 ? `the upgrade of ${waiting[0]} is` : `the upgrades of ${waiting.join(", ")} are`;
  throw conflict(
    `cannot ${what} stack ${state.name}: ${which} ${u.status === "paused" ? "paused" : "awaiting confirmation"} (revision ${u.from} → ${u.to}); first 'corral up --confirm-upgrade' or 'corral up --rollback'`,
  );
}

function scopeOf(state: StackState, services: string[] | undefined): string[] {
  if (!state.exists) throw notFound(`stack ${state.name} not found`);
  for (const s of services ?? []) if (!state.services[s]) throw notFound(`stack ${state.name} has no service ${s} (services: ${Object.keys(state.services).join(", ")})`);
  return services?.length ? services : Object.keys(state.services);
}

function decideScale(command: Extract<Command, { type: "Scale" }>, state: StackState): StackEvent[] {
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

/**
 * The decision's events, with the slot ports they call for: every slot of
 * the stack's services, as they stand after these events, gets its host
 * ports (see assignSlotPorts), inserted before the operation starts. Ports
 * the stack's own containers still hold for a slot they are not given to
 * (a container above the scale not yet removed) are not given out. Without
 * a pool (a caller that has none) nothing is assigned. Throws a conflict
 * when the range has no port left: nothing is decided.
 */
function slotPortEvents(state: StackState, events: StackEvent[], pool: PortPool | undefined): StackEvent[] {
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

function decideLifecycle(command: Extract<Command, { type: "Lifecycle" }>, state: StackState): StackEvent[] {
  const services = scopeOf(state, command.services);
  refuseWhileBusy(state, command.action);
  refuseWhileUpgradePending(state, command.action, services);
  return [
    {
      type: "OperationStarted",
      op: command.op,
      kind: command.action,
      revision: state.revision,
      by: command.by,
      source: command.source,
      services,
      ...(command.batchSize ? { batchSize: command.batchSize } : {}),
      ...(command.intervalMs !== undefined ? { intervalMs: command.intervalMs } : {}),
    },
  ];
}

function decideRemoveService(command: Extract<Command, { type: "RemoveService" }>, state: StackState): StackEvent[] {
  const [service] = scopeOf(state, [command.service]);
  refuseWhileBusy(state, "change");
  refuseWhileUpgradePending(state, "change", [service!]);
  const { [service!]: _gone, ...services } = state.services;
  const revision = state.lastRevision + 1;
  return [
    { type: "RevisionCommitted", revision, services, volumes: state.volumes, secrets: state.secrets, secretVersions: state.secretVersions, changed: [service!], by: command.by, source: command.source, ...(command.now ? { at: command.now } : {}) },
    { type: "OperationStarted", op: command.op, kind: "rm-service", revision, by: command.by, source: command.source, services: [service!] },
  ];
}

function decideRemoveContainer(command: Extract<Command, { type: "RemoveContainer" }>, state: StackState): StackEvent[] {
  const c = state.containers[command.container];
  if (!state.exists || !c) throw notFound(`stack ${state.name} has no container ${command.container}`);
  refuseWhileBusy(state, "change");
  if (c.previousOf) throw conflict(`container ${displayName(c.previousOf)} (${containerId(c)}) is the previous one, kept by the upgrade awaiting confirmation: 'corral up --confirm-upgrade' removes it, 'corral up --rollback' brings it back`);
  refuseWhileUpgradePending(state, "change", [c.service]);
  return [{ type: "OperationStarted", op: command.op, kind: "rm-container", revision: state.revision, by: command.by, source: command.source, services: [c.service], containers: [c.name] }];
}

/**
 * The events of a plan: its steps, then the wave that marks them planned.
 * The mark comes last, so that a plan written in several commits and cut
 * short (a crash between two of them) leaves its wave unplanned: the next
 * advance (a report, the reconcile tick) plans it again, and a step already
 * in the log (ids are deterministic) is not planned twice.
 */
function planEvents(state: StackState, opId: string, services: string[], steps: Step[], now: number): StackEvent[] {
  const events: StackEvent[] = [];
  for (const step of steps) if (!state.steps[step.id]) events.push({ type: "StepPlanned", step, at: now });
  events.push({ type: "WavePlanned", op: opId, services });
  return events;
}

/** Containers by service, in the state's order. */
function containersByService(state: StackState): Map<string, ContainerRecord[]> {
  const out = new Map<string, ContainerRecord[]>();
  for (const c of Object.values(state.containers)) {
    const list = out.get(c.service);
    if (list) list.push(c);
    else out.set(c.service, [c]);
  }
  return out;
}

/** rm --type service: every container of the service goes; rm --type container: one goes and its slot is made anew. */
function planRemoveParts(state: StackState, op: Operation, hosts: HostInfo[], now: number, others: Placed[]): StackEvent[] {
  const steps: Step[] = [];
  if (op.kind === "rm-service") {
    const scope = new Set(op.services ?? []);
    for (const c of Object.values(state.containers)) if (scope.has(c.service)) steps.push(...stopAndRemove(state, op.id, c.service, c.slot, c.name, c.host, c.image));
  }
  for (const name of op.kind === "rm-container" ? (op.containers ?? []) : []) {
    const c = state.containers[name];
    if (!c) continue;
    const removal = stopAndRemove(state, op.id, c.service, c.slot, c.name, c.host, c.image);
    steps.push(...removal);
    const spec = state.services[c.service]?.spec;
    if (!spec || c.slot > spec.scale) continue;
    // the slot is made anew where it was while that host is active (its address and volumes are there), else placed again
    const here = hosts.find((h) => h.id === c.host);
    let placed = here && (here.state ?? "active") === "active" ? c.host : undefined;
    let why: string | undefined;
    if (!placed) {
      const result = placeService(state, c.service, [c.slot], hosts, [...others, ...stackPlaced(state).filter((x) => !(x.service === c.service && x.slot === c.slot))]);
      if ("problem" in result) return [{ type: "OperationFailed", op: op.id, reason: result.problem }];
      if (result.unplaced) return [{ type: "OperationFailed", op: op.id, reason: result.unplaced.reason }];
      placed = result.placements[0]!.host;
      why = result.placements[0]!.why;
    }
    const [create, start] = newContainer(state, op.id, c.service, c.slot, placed, [removal.at(-1)!.id]);
    if (why) create.placement = why;
    steps.push(create, start); // retain_ip: the address is free again once the old container is gone
  }
  return planEvents(state, op.id, op.services ?? [], steps, now);
}

/**
 * Scheduled jobs at a tick: each job whose time has come gets a run, a
 * one-shot container on a live host, unless its last run still goes and
 * overlap is not allowed. Missed times are not caught up: one run per tick
 * at most. A job seen for the first time starts counting from now.
 */
function cronTick(state: StackState, hosts: HostInfo[], now: number, others: Placed[]): StackEvent[] {
  if (!state.exists || state.op?.kind === "rm") return [];
  const events: StackEvent[] = [];
  for (const [service, { spec }] of Object.entries(state.services)) {
    const schedule = cronSchedule(spec);
    if (!schedule || scheduleProblem(schedule)) continue;
    const c = state.cron[service];
    if (!c) {
      events.push({ type: "CronFired", service, at: now, skipped: "first" });
      continue;
    }
    const due = nextFire(schedule, c.last);
    if (due > now) continue;
    const at = lastFire(schedule, now); // times missed meanwhile are not caught up
    if (c.runs.some((r) => r.status === "running") && !cronOverlapAllowed(spec)) {
      events.push({ type: "CronFired", service, at, skipped: "overlap" });
      continue;
    }
    const run = c.count + 1;
    // a run is placed as a container of its service would be: its rules, spread over the hosts; nowhere now, the next tick tries again
    const placed = placeService(state, service, [run], hosts, [...others, ...stackPlaced(state)]);
    const host = "placements" in placed ? placed.placements[0]?.host : undefined;
    if (!host) continue;
    // a stack made again numbers its runs (and revisions) afresh: the life tells its steps from the last life's
    const cronOp = state.generation > 1 ? `cron-g${state.generation}` : "cron";
    const [create] = newContainer(state, cronOp, service, 1, host, []);
    const step: Step = dropUndefined({
      ...create,
      id: stepId(state.name, cronOp, state.revision, service, `run-${run}`, run),
      action: "run",
      slot: run, // its own queue group: runs that may overlap do not wait on each other
      container: runContainerName(state.name, service, run),
    });
    events.push({ type: "CronFired", service, at, run, step });
  }
  return events;
}

/** Stop, start or restart the containers of the operation's services (restart: stop then start, batch after batch). */
function planLifecycle(state: StackState, op: Operation, now: number): StackEvent[] {
  const scope = new Set(op.services ?? Object.keys(state.services));
  const containers = Object.values(state.containers)
    .filter((c) => scope.has(c.service) && !c.previousOf)
    .sort((a, b) => (a.service === b.service ? a.slot - b.slot : a.service < b.service ? -1 : 1));
  const steps: Step[] = [];
  if (op.kind === "stop") for (const c of containers.filter((x) => x.state === "running")) steps.push(containerStep(state, op.id, c, "stop", []));
  if (op.kind === "start") for (const c of containers.filter((x) => x.state !== "running")) steps.push(containerStep(state, op.id, c, "start", []));
  if (op.kind === "restart") {
    const size = Math.max(1, op.batchSize ?? 1);
    let previous: string[] = [];
    const running = containers.filter((x) => x.state === "running");
    for (let i = 0; i < running.length; i += size) {
      const batch: string[] = [];
      // the first stop of a batch waits for every start of the batch before (and the interval), the others
      // wait for that stop: a batch's steps name its size in dependencies, not its size squared
      let gate: string | undefined;
      for (const c of running.slice(i, i + size)) {
        const lead = !gate && previous.length > 0 && op.intervalMs ? { delayMs: op.intervalMs } : {};
        const stop = containerStep(state, op.id, c, "stop", gate ? [gate] : previous, lead);
        gate ??= previous.length > 0 ? stop.id : undefined;
        const start = containerStep(state, op.id, c, "start", [stop.id]);
        steps.push(stop, start);
        batch.push(start.id);
      }
      previous = batch;
    }
  }
  return planEvents(state, op.id, [...scope], steps, now);
}

function decideRemove(command: Extract<Command, { type: "Remove" }>, state: StackState): StackEvent[] {
  if (!state.exists) throw notFound(`stack ${command.stack} not found`);
  if (state.op?.status === "running" && state.op.kind === "rm") return [];
  return [{ type: "OperationStarted", op: command.op, kind: "rm", revision: state.revision, by: command.by, source: command.source }];
}

/** Deterministic step id: stack, service, slot, action, revision and the operation that caused it. */
export const stepId = (stack: string, op: string, revision: number, service: string, action: string, slot?: number) =>
  `${stack}.${service}.${slot ?? 0}.${action}.r${revision}.${op}`;

/**
 * Services of the current operation whose dependencies (depends_on) have come
 * up; `blocked` are those waiting on a dependency that failed.
 */
function readyServices(state: StackState): { ready: string[]; blocked: Array<[string, string]> } {
  const op = state.op!;
  const done = new Set(op.waves);
  // per service planned so far: failed if a step failed, waiting while one is planned, up when all succeeded
  const status = new Map<string, "failed" | "waiting">();
  for (const r of Object.values(state.steps)) {
    if (r.status === "failed") status.set(r.step.service, "failed");
    else if (r.status === "planned" && status.get(r.step.service) !== "failed") status.set(r.step.service, "waiting");
  }
  const settled = (service: string) => (done.has(service) ? (status.get(service) ?? "up") : "waiting");
  const ready: string[] = [];
  const blocked: Array<[string, string]> = [];
  for (const [name, { spec }] of Object.entries(state.services)) {
    if (done.has(name)) continue;
    const deps = Object.entries(spec.depends_on ?? {}).filter(([dep, d]) => state.services[dep] || d.required);
    const states = deps.map(([dep]) => [dep, state.services[dep] ? settled(dep) : "failed"] as const);
    const failed = states.find(([, st]) => st === "failed");
    if (failed) blocked.push([name, failed[0]]);
    else if (states.every(([, st]) => st === "up")) ready.push(name);
  }
  return { ready, blocked };
}

function planUp(state: StackState, opId: string, hosts: HostInfo[], now: number, others: Placed[]): StackEvent[] {
  const { ready } = readyServices(state);
  if (ready.length === 0) return [];
  const steps = planServices(state, opId, hosts, ready, others);
  if (!Array.isArray(steps)) return [steps];
  return planEvents(state, opId, ready, steps, now);
}

/**
 * The steps that bring services to what their spec says: stopped containers
 * started, missing slots created where the scheduler places them (beside
 * `others`, the other stacks' containers, and each placement made before),
 * slots above the scale removed. A global service gets one container per
 * host that fits (see globalSlots) and loses its surplus ones.
 */
function planServices(state: StackState, opId: string, hosts: HostInfo[], services: string[], others: Placed[]): Step[] | StackEvent {
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
        pull = stepId(state.name, opId, rev, service, "pull", slot); // one per host: named by the first slot it serves there
        pulledOn.set(host, pull);
        const pulling: Step = { op: opId, stack: state.name, service, revision: rev, image: spec.image, id: pull, action: "pull", host, after: [] };
        if (state.op?.pull) pulling.forcePull = true;
        pulls.push(pulling);
      }
      const [creating, starting] = newContainer(state, opId, service, slot, host, [pull]);
      creating.placement = why;
      creates.push(creating);
      starts.push(starting);
      placed.push(newPlaced(state, service, slot, host));
    };
    const startIfStopped = (c: ContainerRecord) => {
      if (c.state !== "running") starts.push({ op: opId, stack: state.name, service, slot: c.slot, revision: rev, image: spec.image, container: c.name, id: stepId(state.name, opId, rev, service, "start", c.slot), action: "start", host: c.host, after: [] });
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

/**
 * A slot's container: under its engine name, or under the one it had before
 * names told stacks apart (`STACK-SERVICE-N` for a service with a dash), so
 * a stack deployed before keeps its containers instead of doubling them.
 */
function slotContainer(state: StackState, service: string, slot: number): ContainerRecord | undefined {
  const c = state.containers[containerName(state.name, service, slot)] ?? state.containers[`${state.name}-${service}-${slot}`];
  return c?.service === service && !c.previousOf ? c : undefined;
}

/** Create and start a service's container in a slot, at the current revision. */
function newContainer(state: StackState, opId: string, service: string, slot: number, host: string, after: string[]): [Step, Step] {
  const { spec: serviceSpec, hash } = state.services[service]!;
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
  const creating: Step = { op: opId, stack: state.name, service, slot, revision: rev, image: spec.image, container: name, host, id: create, action: "create", spec, hash, after };
  if (previousIp) creating.ip = previousIp;
  else if (previous?.ip) creating.addressLeft = `${previous.ip} on ${previous.host}`;
  if (Object.keys(mounted).length) creating.volumes = mounted;
  if (secretMounts.length) creating.secrets = secretMounts;
  const starting: Step = { op: opId, stack: state.name, service, slot, revision: rev, image: spec.image, container: name, host, id: stepId(state.name, opId, rev, service, "start", slot), action: "start", after: [create], createdBy: create };
  return [creating, starting];
}

/** One step on an existing container. */
function containerStep(state: StackState, opId: string, c: ContainerRecord, action: Step["action"], after: string[], extra: Partial<Step> = {}): Step {
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
  return Object.keys(extra).length > 0 ? Object.assign(step, extra) : step;
}

function stopAndRemove(state: StackState, opId: string, service: string, slot: number, name: string, host: string, image: string): Step[] {
  const step = (id: string, action: "stop" | "remove", after: string[]): Step => ({ op: opId, stack: state.name, service, slot, revision: state.revision, image, container: name, host, id, action, after });
  const remove = stepId(state.name, opId, state.revision, service, `remove-${name}`, slot);
  // already stopped (an old container kept by an upgrade): only the removal is left
  if (state.containers[name]?.state === "stopped") return [step(remove, "remove", [])];
  // ids name the container: an old one kept aside shares its service and slot with the new one
  const stop = stepId(state.name, opId, state.revision, service, `stop-${name}`, slot);
  return [step(stop, "stop", []), step(remove, "remove", [stop])];
}

const failureAction = (state: StackState, service: string) => state.services[service]?.spec.deploy?.update_config?.failure_action ?? "pause";

/**
 * An in-service upgrade, Rancher style: per slot, in batches, stop the old
 * container, rename it aside (kept, stopped), create and start the new one
 * under the slot's name. With confirm, the old one is removed instead.
 */
function planUpgrade(state: StackState, opId: string, hosts: HostInfo[], now: number, op: Operation, others: Placed[]): StackEvent[] {
  const services = upgradedBy(state, opId);
  const steps: Step[] = [];
  const placed = [...others, ...stackPlaced(state)];
  const added: Placed[] = [];
  const byService = containersByService(state);
  for (const service of services) {
    const { spec } = state.services[service]!;
    const rules = rulesOf(state.name, service, spec);
    if ("problem" in rules) return [{ type: "OperationFailed", op: opId, reason: rules.problem }];
    // the slots upgraded in place, and where the new ones (a slot without a container) go
    const mine = (byService.get(service) ?? []).filter((c) => !c.previousOf);
    const hostOf = new Map<number, string>();
    const whyOf = new Map<number, string>();
    let slots: number[];
    const surplus: ContainerRecord[] = [];
    if (rules.global) {
      const plan = globalSlots({ stack: state.name, service, rules }, placementHosts(hosts), placed);
      for (const p of plan.placements) {
        hostOf.set(p.slot, p.host);
        whyOf.set(p.slot, p.why);
      }
      for (const x of plan.surplus) {
        const c = mine.find((m) => m.slot === x.slot);
        if (c && hosts.some((h) => h.id === x.host)) surplus.push(c);
      }
      slots = [...mine.filter((c) => !surplus.includes(c)).map((c) => c.slot), ...hostOf.keys()].sort((a, b) => a - b);
    } else {
      slots = Array.from({ length: spec.scale }, (_, i) => i + 1);
      // a slot without a container is placed; so is one whose host the service's new constraints no longer allow (it moves)
      const byId = new Map(placementHosts(hosts).map((h) => [h.id, h]));
      const moving = new Set(
        slots.filter((slot) => {
          const old = slotContainer(state, service, slot);
          const there = old && byId.get(old.host);
          return there !== undefined && hostBreaks(rules, there) !== undefined;
        }),
      );
      const missing = slots.filter((slot) => !slotContainer(state, service, slot) || moving.has(slot));
      if (missing.length > 0) {
        const staying = placed.filter((x) => !(x.stack === state.name && x.service === service && moving.has(x.slot)));
        const result = placeService(state, service, missing, hosts, staying);
        if ("problem" in result) return [{ type: "OperationFailed", op: opId, reason: result.problem }];
        if (result.unplaced) return [{ type: "OperationFailed", op: opId, reason: result.unplaced.reason }];
        for (const p of result.placements) {
          hostOf.set(p.slot, p.host);
          whyOf.set(p.slot, p.why);
        }
      }
      surplus.push(...mine.filter((c) => c.slot > spec.scale));
    }
    for (const [slot, host] of hostOf) {
      const c = newPlaced(state, service, slot, host);
      placed.push(c);
      added.push(c);
    }
    const upgrade = state.upgrades[service]!;
    const settings = spec.deploy?.update_config;
    const size = Math.max(1, op.batchSize ?? settings?.parallelism ?? 1);
    const delayMs = op.intervalMs ?? settings?.delay ?? 0;
    // a port held by the old container itself cannot be shared: that one upgrade goes stop-first
    // and an address kept (retain_ip) cannot be held by two containers either
    const startFirst = (op.startFirst ?? settings?.order === "start-first") && !spec.retain_ip && portsBlockingStartFirst(state.revisions[upgrade.from]?.services[service]?.spec, spec, state.slotPorts?.[service]).length === 0;
    const chainAny = failureAction(state, service) === "continue";
    const pulled = new Map<string, string>();
    let previousBatch: string[] = [];
    let batch: string[] = [];
    for (const slot of slots) {
      const old = slotContainer(state, service, slot);
      const name = old?.name ?? containerName(state.name, service, slot);
      const host = hostOf.get(slot) ?? old!.host;
      let pull = pulled.get(host);
      if (!pull) {
        pull = stepId(state.name, opId, state.revision, service, "pull", slot); // one per host, as in planServices
        pulled.set(host, pull);
        steps.push({ op: opId, stack: state.name, service, revision: state.revision, action: "pull", host, image: spec.image, id: pull, after: [], ...(op.pull ? { forcePull: true } : {}) });
      }
      const first = [pull, ...previousBatch];
      // the first step of a later batch waits out the interval
      const lead: Partial<Step> = { ...(previousBatch.length > 0 && delayMs > 0 ? { delayMs } : {}), ...(chainAny ? { afterAny: true } : {}) };
      const aside = asideName(name, old?.revision ?? 0);
      if (old && startFirst) {
        // start-first: the old container keeps running, aside, until the new one is up (and healthy)
        const rename = containerStep(state, opId, old, "rename", first, { ...lead, renameTo: aside });
        const [create, start] = newContainer(state, opId, service, slot, host, [rename.id]);
        if (whyOf.has(slot)) create.placement = whyOf.get(slot)!;
        const retired = { ...old, name: aside };
        const stop = containerStep(state, opId, retired, "stop", [start.id]);
        steps.push(rename, create, start, stop);
        if (upgrade.confirm) steps.push(containerStep(state, opId, retired, "remove", [stop.id]));
        batch.push(stop.id);
      } else {
        let createAfter = first;
        if (old) {
          const stop = containerStep(state, opId, old, "stop", first, lead);
          const next = upgrade.confirm ? containerStep(state, opId, old, "remove", [stop.id]) : containerStep(state, opId, old, "rename", [stop.id], { renameTo: aside });
          steps.push(stop, next);
          createAfter = [next.id];
        }
        const [create, start] = newContainer(state, opId, service, slot, host, createAfter);
        if (whyOf.has(slot)) create.placement = whyOf.get(slot)!;
        steps.push(!old ? { ...create, ...lead } : chainAny ? { ...create, afterAny: true } : create, start);
        batch.push(start.id);
      }
      if (batch.length >= size) {
        previousBatch = batch;
        batch = [];
      }
    }
    for (const c of surplus) steps.push(...stopAndRemove(state, opId, c.service, c.slot, c.name, c.host, c.image));
  }
  // what the revision adds beside the upgrade (a new service, a scale changed) is brought up as 'up' would
  const rest = planServices(state, opId, hosts, Object.keys(state.services).filter((s) => !services.includes(s)), [...others, ...added]);
  if (!Array.isArray(rest)) return [rest];
  return planEvents(state, opId, services, [...steps.map(dropUndefined), ...rest], now);
}

/** The old containers kept for these services' upgrades (all services when undefined). */
function keptFor(state: StackState, services: string[] | undefined): ContainerRecord[] {
  const scope = services && new Set(services);
  return Object.values(state.containers).filter((c) => c.previousOf && (!scope || scope.has(c.service)));
}

/** Confirm: the old containers of the upgrades go. */
function planConfirm(state: StackState, op: Operation, now: number): StackEvent[] {
  const steps = keptFor(state, op.services).flatMap((c) => stopAndRemove(state, op.id, c.service, c.slot, c.name, c.host, c.image));
  return planEvents(state, op.id, [], steps, now);
}

/** The first steps of an operation that finishes pending upgrades (op.confirms): their old containers go. */
function finishSteps(state: StackState, op: Operation, now: number): StackEvent[] {
  if (!op.confirms?.length) return [];
  const steps = keptFor(state, op.confirms).flatMap((c) => stopAndRemove(state, op.id, c.service, c.slot, c.name, c.host, c.image));
  return steps.filter((step) => !state.steps[step.id]).map((step): StackEvent => ({ type: "StepPlanned", step, at: now }));
}

/** Rollback: the new containers go, the old ones take their names back and start: the very same containers. */
function planRollback(state: StackState, op: Operation, now: number): StackEvent[] {
  const services = op.services ?? Object.keys(state.upgrades);
  const steps: Step[] = [];
  const olds = keptFor(state, services);
  for (const c of Object.values(state.containers)) {
    const u = state.upgrades[c.service];
    if (c.previousOf || !u || !services.includes(c.service) || c.revision !== u.to) continue;
    steps.push(...stopAndRemove(state, op.id, c.service, c.slot, c.name, c.host, c.image));
  }
  // the removal of the new container that holds the name an old one takes back
  const removals = new Map<string, string[]>();
  for (const x of steps) if (x.action === "remove" && x.container) removals.set(x.container, [...(removals.get(x.container) ?? []), x.id]);
  for (const old of olds) {
    const blocking = removals.get(old.previousOf!) ?? [];
    const rename = containerStep(state, op.id, old, "rename", blocking, { renameTo: old.previousOf! });
    const start = { ...containerStep(state, op.id, { ...old, name: old.previousOf! }, "start", [rename.id]) };
    steps.push(rename, start);
  }
  return planEvents(state, op.id, services, steps, now);
}

function planRemove(state: StackState, opId: string, now: number): StackEvent[] {
  const targets = new Map<string, { service: string; slot: number; host: string; image: string }>();
  for (const c of Object.values(state.containers)) targets.set(c.name, c);
  for (const [name, pending] of Object.entries(state.inflight)) if (!targets.has(name)) targets.set(name, pending);
  // scheduled runs still going go too
  for (const [service, c] of Object.entries(state.cron)) {
    for (const r of c.runs) if (r.status === "running" && !targets.has(r.container)) targets.set(r.container, { service, slot: r.run, host: r.host, image: state.services[service]?.spec.image ?? "" });
  }
  // and the containers left on lost hosts (each on its own host, though the slot's new one has its name)
  const stale = Object.values(state.lost ?? {}).flatMap((l) => staleSteps(state, opId, l));
  const steps = [...[...targets.entries()].flatMap(([name, t]) => stopAndRemove(state, opId, t.service, t.slot, name, t.host, t.image)), ...stale]
    .map((step) => (step.action === "remove" ? { ...step, dropNetwork: true } : step));
  return planEvents(state, opId, Object.keys(state.services), steps, now);
}

function dropUndefined(step: Step): Step {
  let clean = true;
  for (const key in step) if (step[key as keyof Step] === undefined) clean = false;
  if (clean) return step;
  const out: Record<string, unknown> = {};
  for (const key in step) if (step[key as keyof Step] !== undefined) out[key] = step[key as keyof Step];
  return out as Step;
}

const monitorMs = (state: StackState, service: string) => state.services[service]?.spec.deploy?.update_config?.monitor ?? 0;

/** New containers of a running upgrade still inside their monitor window (deploy.update_config.monitor). */
function monitoring(state: StackState, now: number): boolean {
  const op = state.op;
  if (op?.kind !== "upgrade") return false;
  return Object.values(state.containers).some((c) => {
    const u = state.upgrades[c.service];
    return u?.op === op.id && !c.previousOf && c.revision === u.to && c.startedAt !== undefined && c.startedAt + monitorMs(state, c.service) > now;
  });
}

/**
 * A new container of a running upgrade that turns unhealthy inside its
 * monitor window fails the upgrade, as a failed health gate does: its service
 * gets the reason, the steps not yet sent are skipped, and the upgrade ends
 * with its failure action once what is in flight has reported.
 */
function monitorFailure(state: StackState, c: ContainerRecord, now: number, what = "turned unhealthy"): StackEvent[] {
  const u = state.upgrades[c.service];
  const op = state.op;
  if (!u || op?.kind !== "upgrade" || op.status !== "running" || u.op !== op.id || c.previousOf || c.revision !== u.to) return [];
  const window = monitorMs(state, c.service);
  if (c.startedAt === undefined || now - c.startedAt > window) return [];
  const reason = `container ${displayName(c.name)} ${what} ${Math.round((now - c.startedAt) / 1000)} s after it started, inside the monitor window of ${Math.round(window / 1000)} s`;
  const failed: StackEvent = { type: "ServiceFailed", service: c.service, reason };
  return [failed, ...advance(evolve(state, failed), [], now)]; // halted: advance skips what was not sent
}

/** A step of the operation in progress, not yet reported, that acts on this container on its host: corral is at it. */
function stepInFlight(state: StackState, c: ContainerRecord): boolean {
  if (state.op?.status !== "running") return false;
  return Object.values(state.steps).some((r) => r.status === "planned" && r.step.host === c.host && (r.step.container === c.name || r.step.renameTo === c.name));
}

/**
 * Steps a halted operation skips: every planned step not sent yet (what the
 * host has will report). Found anew by every advance, so that skips cut
 * short between two commits are completed.
 */
function haltedSkips(state: StackState): StackEvent[] {
  const reason = state.op?.halted;
  if (!reason) return [];
  const events: StackEvent[] = [];
  const s = new Draft(state);
  for (const r of Object.values(state.steps)) {
    if (r.status !== "planned" || sendable(s.state, r.step)) continue;
    const skipped: StackEvent = { type: "StepFailed", stepId: r.step.id, error: `skipped: ${reason}` };
    events.push(skipped);
    s.apply(skipped);
  }
  return events;
}

/** The operation's end, once nothing is in flight and nothing more can be planned. */
function settle(state: StackState, now: number): StackEvent[] {
  const op = state.op;
  if (!op || op.status !== "running" || !op.planned) return [];
  const records = Object.values(state.steps);
  if (records.some((r) => r.status === "planned")) return [];
  // an upgrade is done once its new containers have run their monitor window without turning unhealthy
  if (op.kind === "upgrade" && Object.keys(state.errors).length === 0 && monitoring(state, now)) return [];
  const reasons = Object.entries(state.errors).map(([service, error]) => `${service}: ${error}`);
  if (op.kind === "up") {
    const { ready, blocked } = readyServices(state);
    if (ready.length > 0) return []; // the next wave comes first
    reasons.push(...blocked.map(([service, dep]) => `${service}: not started: its dependency ${dep} did not come up`));
  }
  if (op.kind === "upgrade" && reasons.length > 0) return upgradeFailed(state, op, reasons.join("; "));
  if (reasons.length > 0) return [{ type: "OperationFailed", op: op.id, reason: reasons.join("; ") }];
  const done: StackEvent[] = [];
  if (op.kind === "upgrade") {
    const mine = upgradedBy(state, op.id);
    done.push(state.upgrades[mine[0] ?? ""]?.confirm ? { type: "UpgradeConfirmed", op: op.id, services: mine } : { type: "UpgradeFinished", op: op.id, at: now });
  }
  if (op.kind === "confirm" && Object.keys(state.upgrades).length > 0) done.push({ type: "UpgradeConfirmed", op: op.id, ...(op.services ? { services: op.services } : {}) });
  if (op.kind === "rollback") done.push({ type: "RollbackFinished", op: op.id, revision: op.revision, ...(op.services ? { services: op.services } : {}), at: now });
  done.push({ type: "OperationSucceeded", op: op.id });
  if (op.kind === "rm") done.push({ type: "StackRemoved", op: op.id, at: now });
  return done;
}

/** A failed upgrade: pause (the default), roll back by itself, or settle as upgraded (continue); the reason names the ways out. */
function upgradeFailed(state: StackState, op: Operation, reason: string): StackEvent[] {
  const services = upgradedBy(state, op.id);
  const action = services.some((s) => failureAction(state, s) === "rollback") ? "rollback" : services.some((s) => failureAction(state, s) === "pause") ? "pause" : "continue";
  if (action === "rollback" && !state.upgrades[services[0] ?? ""]?.confirm) {
    const back = rollbackOf(state, services, `${op.id}-rollback`, "corral", "api");
    const to = back.find((e) => e.type === "OperationStarted");
    const where = to?.type === "OperationStarted" && back.length === 1 ? `revision ${to.revision}` : `what ran before (revision ${to?.type === "OperationStarted" ? to.revision : "?"})`;
    return [{ type: "OperationFailed", op: op.id, reason: `${reason}; rolling back to ${where}` }, { type: "UpgradeFinished", op: op.id }, ...back];
  }
  if (action === "continue") return [{ type: "UpgradeFinished", op: op.id }, { type: "OperationFailed", op: op.id, reason }];
  const paused = `${reason}; the upgrade is paused: 'corral up --rollback' to go back, or 'corral up --confirm-upgrade' to keep what runs`;
  return [{ type: "UpgradePaused", op: op.id, reason }, { type: "OperationFailed", op: op.id, reason: paused }];
}

/** Plan what can be planned now, then settle if nothing is left. */
function advance(state: StackState, hosts: HostInfo[], now: number, others: Placed[] = []): StackEvent[] {
  const op = state.op;
  if (!op || op.status !== "running") return [];
  // steps still waiting on a failed one: skipped now (a failure's skips are cut short when a crash falls between the commits of a large decision)
  const halted = haltedSkips(state);
  const skips = halted.length > 0 ? halted : blockedByFailure(state).map((b): StackEvent => ({ type: "StepFailed", stepId: b.stepId, error: b.error }));
  if (skips.length > 0) return [...skips, ...advance(evolveAll(state, skips), hosts, now, others)];
  const planned: StackEvent[] = [];
  let after = op.planned ? state : evolve(state, { type: "WavePlanned", op: op.id, services: [] });
  if (!op.planned) {
    planned.push(...finishSteps(state, op, now));
    if (op.kind === "up") after = evolveAll(after, planned);
    if (op.kind === "rm") planned.push(...planRemove(state, op.id, now));
    if (op.kind === "upgrade") planned.push(...planUpgrade(state, op.id, hosts, now, op, others));
    if (op.kind === "confirm") planned.push(...planConfirm(state, op, now));
    if (op.kind === "rollback") planned.push(...planRollback(state, op, now));
    if (op.kind === "stop" || op.kind === "start" || op.kind === "restart") planned.push(...planLifecycle(state, op, now));
    if (op.kind === "rm-service" || op.kind === "rm-container") planned.push(...planRemoveParts(state, op, hosts, now, others));
    if (op.kind === "move") planned.push(...planMove(state, op, hosts, now, others));
    if (op.kind === "cleanup") planned.push(...planCleanup(state, op, hosts, now));
    if (op.kind === "scale") {
      const scope = op.services ?? [];
      const steps = planServices(state, op.id, hosts, scope, others);
      if (!Array.isArray(steps)) return [steps];
      planned.push(...planEvents(state, op.id, scope, steps, now));
    }
    if (planned.some((e) => e.type === "OperationFailed")) return planned;
  }
  // waves with nothing to do (services already running) are passed through at once
  for (let wave = op.kind === "up" ? planUp(after, op.id, hosts, now, others) : []; wave.length > 0; ) {
    planned.push(...wave);
    if (wave.some((e) => e.type === "OperationFailed")) return planned;
    after = evolveAll(after, wave);
    wave = wave.some((e) => e.type === "StepPlanned") ? [] : planUp(after, op.id, hosts, now, others);
  }
  after = op.kind === "up" ? after : evolveAll(after, planned);
  const settled = settle(after, now);
  // a failure that rolls back by itself starts the rollback at once
  const next = settled.find((e) => e.type === "OperationStarted");
  if (next) return [...planned, ...settled, ...advance(evolveAll(after, settled), hosts, now, others)];
  return [...planned, ...settled];
}

/**
 * The decider: given the state of a stack and a command, the events that
 * follow. Pure; throws DomainError to refuse.
 */
export function decide(command: Command, state: StackState): StackEvent[] {
  switch (command.type) {
    case "Up":
      return slotPortEvents(state, decideUp(command, state), command.ports);
    case "Remove":
      return decideRemove(command, state);
    case "Scale":
      return decideScale(command, state);
    case "Create":
      if (state.exists) throw conflict(`stack ${command.stack} already exists`);
      return [{ type: "StackCreated", stack: command.stack, by: command.by, owner: command.by, group: command.group ?? command.by }];
    case "Lifecycle":
      return decideLifecycle(command, state);
    case "RemoveService":
      return decideRemoveService(command, state);
    case "RemoveContainer":
      return decideRemoveContainer(command, state);
    case "Plan": {
      const op = state.op;
      if (!op || op.status !== "running" || op.planned) return [];
      return advance(state, command.hosts, command.now, command.placed);
    }
    case "Report": {
      const { report } = command;
      for (const [service, c] of Object.entries(state.cron)) {
        const run = c.runs.find((r) => r.stepId === report.stepId);
        if (!run) continue;
        if (run.host !== report.host) return []; // only the host the run went to may say how it ended
        if (run.status !== "running") return []; // reported before: a duplicate
        return [{ type: "CronRunFinished", service, run: run.run, at: command.now, ...(report.ok ? { exitCode: report.exitCode ?? 0 } : { error: report.error ?? "failed" }) }];
      }
      const record = state.steps[report.stepId];
      if (!record || record.status !== "planned" || !opInProgress(state)) return [];
      if (record.step.host !== report.host) return []; // a report about another host's step is believed from that host only
      const event: StackEvent = report.ok
        ? {
            type: "StepSucceeded",
            stepId: report.stepId,
            ...(report.containerId ? { containerId: report.containerId } : {}),
            ...(report.alreadyDone ? { alreadyDone: true } : {}),
            ...(report.ports ? { ports: report.ports } : {}),
            ...(report.ip ? { ip: report.ip } : {}),
            ...(report.health ? { health: report.health } : {}),
            ...(record.step.action === "start" ? { at: command.now } : {}),
          }
        : { type: "StepFailed", stepId: report.stepId, error: report.error ?? "failed" };
      const s = new Draft(state).apply(event);
      const skips = event.type === "StepFailed" ? blockedByFailure(s.state).map((b): StackEvent => ({ type: "StepFailed", stepId: b.stepId, error: b.error })) : [];
      return [event, ...skips, ...advance(s.applyAll(skips).state, command.hosts, command.now, command.placed)];
    }
    case "Health": {
      const c = state.containers[command.container];
      // a verdict about a container the log does not know, or an earlier one of the same name, changes nothing
      if (!c || c.host !== command.host || c.dockerId !== command.dockerId || c.state !== "running" || c.health === command.health) return [];
      const verdict: StackEvent = { type: "ContainerHealth", container: command.container, health: command.health, at: command.now };
      // only a turn to unhealthy fails an upgrade inside its monitor window; turning healthy is what it waits for
      return [verdict, ...(command.health === "unhealthy" ? monitorFailure(evolve(state, verdict), c, command.now) : [])];
    }
    case "Exited": {
      const c = state.containers[command.container];
      if (!c || c.host !== command.host || c.dockerId !== command.dockerId || c.state !== "running") return [];
      if (stepInFlight(state, c)) return [];
      const exited: StackEvent = { type: "ContainerExited", container: c.name, host: c.host, exitCode: command.exitCode, at: command.now };
      return [exited, ...monitorFailure(evolve(state, exited), c, command.now, `exited with code ${command.exitCode}`)];
    }
    case "Tick": {
      const others = command.placed ?? [];
      const jobs = cronTick(state, command.hosts, command.now, others);
      // an operation in progress may be waiting on time alone (an upgrade's monitor window)
      if (opInProgress(state)) return [...jobs, ...advance(evolveAll(state, jobs), command.hosts, command.now, others)];
      // each upgrade asked to confirm by itself does once every new container has stayed healthy (or, without a
      // health check, run) for the duration since it finished
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
        const ready = since.every((t) => command.now - t >= u.autoConfirmMs!);
        waiting.set(u.op, (waiting.get(u.op) ?? true) && ready);
      }
      const due = Object.entries(state.upgrades).flatMap(([service, u]) => (waiting.get(u.op) ? [service] : []));
      if (due.length === 0) {
        const s = evolveAll(state, jobs);
        // stale containers on a host back from a disconnection go first: until then a slot may run twice
        const cleanup = cleanupTick(s, command.hosts, command.now, others);
        if (cleanup.length > 0) return [...jobs, ...cleanup];
        const global = globalTick(s, command.hosts, command.now, others);
        return [...jobs, ...(global.length > 0 ? global : moveTick(s, command.hosts, command.now, others))];
      }
      const s = evolveAll(state, jobs);
      const start: StackEvent = { type: "OperationStarted", op: `${state.upgrades[due[0]!]!.op}-autoconfirm`, kind: "confirm", revision: state.revision, by: "corral", source: "api", services: due };
      return [...jobs, start, ...advance(evolve(s, start), command.hosts, command.now, others)];
    }
    case "Resend": {
      if (!opInProgress(state)) return [];
      // a step for a host that stopped heartbeating is not waited for: it fails now, saying so, and the operation with it
      const lost = new Set((command.hosts ?? []).filter((h) => h.state === "disconnected").map((h) => h.id));
      const late = Object.values(state.steps).filter((r) => r.status === "planned" && sendable(state, r.step) && (lost.has(r.step.host) || command.now - r.plannedAt >= command.timeoutMs));
      const events: StackEvent[] = [];
      for (const r of late) {
        // every step has a timeout: after the last attempt it fails, and the operation ends with the reason
        const e: StackEvent = lost.has(r.step.host)
          ? { type: "StepFailed", stepId: r.step.id, error: `host ${r.step.host} is disconnected (no heartbeat within the host timeout): the step cannot run there` }
          : r.attempt >= (command.maxAttempts ?? 10)
            ? { type: "StepFailed", stepId: r.step.id, error: `no answer from host ${r.step.host} after ${r.attempt} attempts (${Math.round((command.timeoutMs * r.attempt) / 1000)} s)` }
            : { type: "StepResent", stepId: r.step.id, attempt: r.attempt + 1, at: command.now };
        events.push(e);
      }
      const gaveUp = events.some((e) => e.type === "StepFailed");
      if (!gaveUp) return events;
      const s = new Draft(state).applyAll(events);
      const skips = blockedByFailure(s.state).map((b): StackEvent => ({ type: "StepFailed", stepId: b.stepId, error: b.error }));
      return [...events, ...skips, ...advance(s.applyAll(skips).state, command.hosts ?? [], command.now, command.placed)];
    }
    case "Abandon": {
      const op = state.op;
      if (!op || op.status !== "running") return [];
      const reason = `${command.reason}; the operation cannot go on`;
      const pause: StackEvent[] = op.kind === "upgrade" && upgradedBy(state, op.id).some((s) => state.upgrades[s]!.status === "upgrading") ? [{ type: "UpgradePaused", op: op.id, reason }] : [];
      return [...pause, { type: "OperationFailed", op: op.id, reason }];
    }
    default: {
      const never: never = command;
      return never;
    }
  }
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
  const what = createHash("sha256").update(targets.sort().join(",")).digest("hex").slice(0, 10);
  const last = state.op;
  if (last?.status === "failed" && last.id.endsWith(`-${what}`)) return [];
  const start: StackEvent = { type: "OperationStarted", op: `global-v${state.version}-${what}`, kind: "scale", revision: state.revision, by: "corral", source: "api", services: due };
  return [start, ...advance(evolve(state, start), hosts, now, others)];
}

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

/** Containers left on lost hosts that are active again: a cleanup removes them. Pure: the controller asks it to know which stacks to tick. */
export function staleContainers(state: StackState, hosts: HostInfo[]): LostContainer[] {
  if (!state.exists || !state.lost) return [];
  const back = new Set(hosts.filter((h) => (h.state ?? "active") === "active").map((h) => h.id));
  return Object.values(state.lost)
    .filter((l) => back.has(l.host))
    .sort((a, b) => (a.host === b.host ? (a.name < b.name ? -1 : 1) : a.host < b.host ? -1 : 1));
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
    .sort((a, b) => (a.service === b.service ? a.slot - b.slot : a.service < b.service ? -1 : 1));
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
  const moving = [...drainingContainers(state, hosts), ...lost.filter((c) => !waits.has(c.name))].sort((a, b) => (a.service === b.service ? a.slot - b.slot : a.service < b.service ? -1 : 1));
  if (moving.length === 0) return said;
  state = evolveAll(state, said);
  const what = createHash("sha256")
    .update(moving.map((c) => `${c.name}@${c.host}`).sort().join(","))
    .digest("hex")
    .slice(0, 10);
  const last = state.op;
  if (last?.status === "failed" && last.id.endsWith(`-${what}`)) return said;
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
  const what = createHash("sha256")
    .update(stale.map((l) => `${l.name}@${l.host}`).join(","))
    .digest("hex")
    .slice(0, 10);
  const last = state.op;
  if (last?.status === "failed" && last.id.endsWith(`-${what}`)) return [];
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

/** A cleanup: stop, then remove, each stale container on its host (hosts back and active now). */
function planCleanup(state: StackState, op: Operation, hosts: HostInfo[], now: number): StackEvent[] {
  const steps: Step[] = [];
  for (const l of staleContainers(state, hosts)) steps.push(...staleSteps(state, op.id, l));
  return planEvents(state, op.id, op.services ?? [], steps, now);
}

/** Stop, then remove, a container left on a lost host: on that host, by its engine name there (step ids name the host: the slot's successor has the same name). */
function staleSteps(state: StackState, opId: string, l: LostContainer): Step[] {
  const base = { op: opId, stack: state.name, service: l.service, slot: l.slot, revision: l.revision, image: l.image, container: l.name, host: l.host, ...(l.createdBy ? { createdBy: l.createdBy } : {}) };
  const stop: Step = { ...base, id: stepId(state.name, opId, state.revision, l.service, `stop-${l.name}@${l.host}`, l.slot), action: "stop", after: [] };
  const remove: Step = { ...base, id: stepId(state.name, opId, state.revision, l.service, `remove-${l.name}@${l.host}`, l.slot), action: "remove", after: [stop.id] };
  return [stop, remove];
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
function planMove(state: StackState, op: Operation, hosts: HostInfo[], now: number, others: Placed[]): StackEvent[] {
  const names = new Set(op.containers ?? []);
  const moving = Object.values(state.containers)
    .filter((c) => names.has(c.name) && !c.previousOf)
    .sort((a, b) => (a.service === b.service ? a.slot - b.slot : a.service < b.service ? -1 : 1));
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
        pull = stepId(state.name, op.id, state.revision, service, "pull", old.slot); // one per host, as in planServices
        pulled.set(p.host, pull);
        steps.push({ op: op.id, stack: state.name, service, revision: state.revision, action: "pull", host: p.host, image: spec.image, id: pull, after: [] });
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

/**
 * Host ports a container publishes itself, in the old or the new spec: with
 * any, old and new cannot run side by side. A slot's own port (written
 * without a host port) blocks when the old and the new container both have it.
 */
function portsBlockingStartFirst(before: ServiceSpec | undefined, after: ServiceSpec, slots?: ServiceSlotPorts): number[] {
  const held = [...(before ? directPorts(before) : []), ...directPorts(after)].flatMap((p) => (p.published === undefined ? [] : [p.published]));
  const kept = before ? perContainerKeys(after).filter((k) => perContainerKeys(before).includes(k)) : [];
  for (const ports of Object.values(slots ?? {})) for (const k of kept) if (ports[k] !== undefined) held.push(ports[k]);
  return [...new Set(held)].sort((a, b) => a - b);
}

/**
 * Where an operation just started (`state` has its OperationStarted) would
 * put its new containers, and why: the decider plans it on `hosts` beside
 * `placed` (the other stacks' containers) with a perfect agent (every step
 * succeeds), wave after wave, as far as it goes. `failed`: the reason it
 * would fail (no host for a container, say). Pure: for `up --dry-run`.
 */
export function previewPlacements(state: StackState, hosts: HostInfo[], placed: Placed[], now: number): { placements: PlannedPlacement[]; failed?: string } {
  const draft = new Draft(state);
  const placements: PlannedPlacement[] = [];
  const note = (events: StackEvent[]) => {
    for (const e of events) {
      if (e.type === "StepPlanned" && e.step.action === "create" && e.step.placement && e.step.slot !== undefined) {
        placements.push({ service: e.step.service, slot: e.step.slot, container: displayName(e.step.container ?? containerName(state.name, e.step.service, e.step.slot)), host: e.step.host, why: e.step.placement });
      }
    }
    draft.applyAll(events);
  };
  note(decide({ type: "Plan", hosts, now, placed }, draft.state));
  for (let guard = 0; guard < 100_000 && draft.state.op?.status === "running"; guard++) {
    const s = draft.state;
    const next = Object.values(s.steps).find((r) => r.status === "planned" && r.step.after.every((d) => s.steps[d]?.status !== "planned"));
    if (!next) break;
    const report: StepReport = { kind: "report", stack: state.name, stepId: next.step.id, host: next.step.host, ok: true, ...(next.step.action === "create" ? { containerId: `dry-run-${guard}` } : {}) };
    note(decide({ type: "Report", report, hosts, now, placed }, s));
  }
  const op = draft.state.op;
  return { placements, ...(op?.status === "failed" && op.reason ? { failed: op.reason } : {}) };
}
