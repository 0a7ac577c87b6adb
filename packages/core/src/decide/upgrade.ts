import { conflict, notFound } from "../errors.js";
import type { RevisionService, Source, StackEvent } from "../events.js";
import type { Step } from "../model.js";
import { asideName, containerName } from "../names.js";
import { globalSlots, hostBreaks, type Placed, type PlacementRules } from "../placement.js";
import { newPlaced, placeService, placementHosts, rulesOf, stackPlaced } from "../scheduling.js";
import type { ContainerRecord, Operation, StackState } from "../state.js";
import type { CommandOf, HostInfo } from "./commands.js";
import { planServices } from "./services.js";
import { failureAction, upgradedBy } from "./shared.js";
import { portsBlockingStartFirst } from "./slot-ports.js";
import { containersByService, containerStep, dropUndefined, newContainer, planEvents, pullStep, slotContainer, stopAndRemove } from "./steps.js";

// Upgrades, Rancher style: the new containers come up beside the old ones kept aside, until a confirm (they go) or a
// rollback (they come back); a failure pauses, rolls back by itself or carries on, as the service's update_config says.

/** `up --rollback`: the pending upgrades (or those of `rollbackServices`) roll back. */
export function decideRollback(command: CommandOf<"Up">, state: StackState, pending: string[]): StackEvent[] {
  const which = command.rollbackServices ? pending.filter((s) => command.rollbackServices!.includes(s)) : pending;
  if (which.length === 0) {
    const of = command.rollbackServices ? `service ${command.rollbackServices.join(", ")} of ` : "";
    throw conflict(`${of}stack ${state.name} has no upgrade to roll back; to go back to an earlier revision: 'corral up --rollback --to-revision N' (see 'corral history ${state.name}')`);
  }
  return rollbackOf(state, which, command.op, command.by, command.source, command.now);
}

/** `up --rollback --to-revision N`: an upgrade to what revision N was, noted as a rollback to it; a revision of an earlier life is not deployed again. */
export function toRevision(command: CommandOf<"Up">, state: StackState): CommandOf<"Up"> {
  const target = command.toRevision === undefined ? undefined : state.revisions[command.toRevision];
  if (!target || !state.exists) {
    const lifeBefore = state.earlier.some((life) => life.revisions[command.toRevision!]);
    const earlier = lifeBefore ? `; an earlier life of the stack had one, before it was removed ('corral history ${state.name} --all'), and that history is not deployed again` : "";
    throw notFound(`stack ${state.name} has no revision ${command.toRevision} (see 'corral history ${state.name}')${earlier}`);
  }
  const services = Object.fromEntries(Object.entries(target.services).map(([n, r]) => [n, r.spec]));
  const exact = Object.fromEntries(Object.entries(target.services).map(([n, r]) => [n, { ...(r.digest ? { digest: r.digest } : {}), ...(r.ids ? { ids: r.ids } : {}) }]));
  const { volumes, secrets, secretVersions } = target;
  return { ...command, toRevision: undefined, rollback: false, upgrade: true, services, exact, volumes, secrets, secretVersions, note: `rollback to ${command.toRevision}` };
}

/**
 * A rollback of these services' pending upgrades: each goes back to the
 * revision its old containers were made from. When what runs afterwards is
 * an earlier revision (every service as that revision has it), the stack is
 * back at that revision; when not (upgrades begun at different revisions,
 * or other services changed since), the rollback is a revision of its own.
 */
export function rollbackOf(state: StackState, services: string[], op: string, by: string, source: Source, now?: number): StackEvent[] {
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

/**
 * An in-service upgrade, Rancher style: per slot, in batches, stop the old
 * container, rename it aside (kept, stopped), create and start the new one
 * under the slot's name. With confirm, the old one is removed instead.
 */
export function planUpgrade(state: StackState, opId: string, hosts: HostInfo[], now: number, op: Operation, others: Placed[]): StackEvent[] {
  const services = upgradedBy(state, opId);
  const steps: Step[] = [];
  const placed = [...others, ...stackPlaced(state)];
  const added: Placed[] = [];
  const byService = containersByService(state);
  for (const service of services) {
    const { spec } = state.services[service]!;
    const rules = rulesOf(state.name, service, spec);
    if ("problem" in rules) return [{ type: "OperationFailed", op: opId, reason: rules.problem }];
    const mine = (byService.get(service) ?? []).filter((c) => !c.previousOf);
    const where = upgradeSlots(state, service, rules, mine, hosts, placed);
    if ("problem" in where) return [{ type: "OperationFailed", op: opId, reason: where.problem }];
    for (const [slot, host] of where.hostOf) {
      const c = newPlaced(state, service, slot, host);
      placed.push(c);
      added.push(c);
    }
    steps.push(...upgradeSteps(state, op, service, where));
  }
  // what the revision adds beside the upgrade (a new service, a scale changed) is brought up as 'up' would
  const rest = planServices(state, opId, hosts, Object.keys(state.services).filter((s) => !services.includes(s)), [...others, ...added]);
  if (!Array.isArray(rest)) return [rest];
  return planEvents(state, opId, services, [...steps.map(dropUndefined), ...rest], now);
}

/** The slots a service's upgrade goes through, the hosts (and why) of those placed anew, and the containers it removes. */
interface UpgradeSlots {
  slots: number[];
  hostOf: Map<number, string>;
  whyOf: Map<number, string>;
  surplus: ContainerRecord[];
}

/**
 * The slots upgraded in place, and where the new ones (a slot without a
 * container) go, beside `placed`; `mine` are the service's live containers.
 * Or the scheduler's reason it cannot place them.
 */
function upgradeSlots(state: StackState, service: string, rules: PlacementRules, mine: ContainerRecord[], hosts: HostInfo[], placed: Placed[]): UpgradeSlots | { problem: string } {
  const { spec } = state.services[service]!;
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
      if ("problem" in result) return { problem: result.problem };
      if (result.unplaced) return { problem: result.unplaced.reason };
      for (const p of result.placements) {
        hostOf.set(p.slot, p.host);
        whyOf.set(p.slot, p.why);
      }
    }
    surplus.push(...mine.filter((c) => c.slot > spec.scale));
  }
  return { slots, hostOf, whyOf, surplus };
}

/**
 * A service's upgrade steps, slot after slot in batches (the first step of a
 * later batch waits out the interval): start-first where it can be, else
 * stop-first; then the surplus containers go.
 */
function upgradeSteps(state: StackState, op: Operation, service: string, { slots, hostOf, whyOf, surplus }: UpgradeSlots): Step[] {
  const opId = op.id;
  const { spec } = state.services[service]!;
  const steps: Step[] = [];
  const upgrade = state.upgrades[service]!;
  const settings = spec.deploy?.update_config;
  const size = Math.max(1, op.batchSize ?? settings?.parallelism ?? 1);
  const delayMs = op.intervalMs ?? settings?.delay ?? 0;
  // a port held by the old container itself cannot be shared: that one upgrade goes stop-first
  // and an address kept (retain_ip) cannot be held by two containers either
  const blocking = portsBlockingStartFirst(state.revisions[upgrade.from]?.services[service]?.spec, spec, state.slotPorts?.[service]);
  const startFirst = (op.startFirst ?? settings?.order === "start-first") && !spec.retain_ip && blocking.length === 0;
  const chainAny = failureAction(state, service) === "continue";
  // the image goes onto every host the service lands on before the first old container stops: an image
  // that cannot be had (a digest gone from the registry, a local image missing) stops nothing
  const pulls = new Map<string, string>();
  for (const slot of slots) {
    const host = hostOf.get(slot) ?? slotContainer(state, service, slot)!.host;
    if (pulls.has(host)) continue;
    const pulling = pullStep(state, opId, service, slot, host, op.pull); // one per host, as in planServices
    pulls.set(host, pulling.id);
    steps.push(pulling);
  }
  const pulled = [...pulls.values()];
  let previousBatch: string[] = [];
  let batch: string[] = [];
  for (const slot of slots) {
    const old = slotContainer(state, service, slot);
    const name = old?.name ?? containerName(state.name, service, slot);
    const host = hostOf.get(slot) ?? old!.host;
    const first = [...pulled, ...previousBatch];
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
  return steps;
}

/** The old containers kept for these services' upgrades (all services when undefined). */
function keptFor(state: StackState, services: string[] | undefined): ContainerRecord[] {
  const scope = services && new Set(services);
  return Object.values(state.containers).filter((c) => c.previousOf && (!scope || scope.has(c.service)));
}

/** Confirm: the old containers of the upgrades go. */
export function planConfirm(state: StackState, op: Operation, now: number): StackEvent[] {
  const steps = keptFor(state, op.services).flatMap((c) => stopAndRemove(state, op.id, c.service, c.slot, c.name, c.host, c.image));
  return planEvents(state, op.id, [], steps, now);
}

/** The first steps of an operation that finishes pending upgrades (op.confirms): their old containers go. */
export function finishSteps(state: StackState, op: Operation, now: number): StackEvent[] {
  if (!op.confirms?.length) return [];
  const steps = keptFor(state, op.confirms).flatMap((c) => stopAndRemove(state, op.id, c.service, c.slot, c.name, c.host, c.image));
  return steps.filter((step) => !state.steps[step.id]).map((step): StackEvent => ({ type: "StepPlanned", step, at: now }));
}

/** Rollback: the new containers go, the old ones take their names back and start: the very same containers. */
export function planRollback(state: StackState, op: Operation, now: number): StackEvent[] {
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

/** A failed upgrade: pause (the default), roll back by itself, or settle as upgraded (continue); the reason names the ways out. */
export function upgradeFailed(state: StackState, op: Operation, reason: string): StackEvent[] {
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

export const monitorMs = (state: StackState, service: string) => state.services[service]?.spec.deploy?.update_config?.monitor ?? 0;

/** New containers of a running upgrade still inside their monitor window (deploy.update_config.monitor). */
export function monitoring(state: StackState, now: number): boolean {
  const op = state.op;
  if (op?.kind !== "upgrade") return false;
  return Object.values(state.containers).some((c) => {
    const u = state.upgrades[c.service];
    return u?.op === op.id && !c.previousOf && c.revision === u.to && c.startedAt !== undefined && c.startedAt + monitorMs(state, c.service) > now;
  });
}
