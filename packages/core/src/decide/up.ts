import { conflict } from "../errors.js";
import type { OperationKind, RevisionService, StackEvent } from "../events.js";
import { canonicalJson, configHash } from "../hash.js";
import type { ServiceSpec } from "../model.js";
import type { Placed } from "../placement.js";
import { evolve, type StackState } from "../state.js";
import type { CommandOf, HostInfo } from "./commands.js";
import { pendingUpgrades, refuseWhileBusy, stackCreated } from "./shared.js";
import { portsBlockingStartFirst } from "./slot-ports.js";
import { planServices } from "./services.js";
import { planEvents } from "./steps.js";
import { decideRollback, toRevision } from "./upgrade.js";

// Up: a new revision of what the project says, and the operation that brings it up, wave after wave of depends_on.

type UpCommand = CommandOf<"Up">;

const started = (command: UpCommand, kind: OperationKind, revision: number, scope: { services?: string[]; confirms?: string[] } = {}): StackEvent => ({
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

/** `corral stack create --empty NAME`: a stack with no services yet, owned by its creator. */
export function decideCreate(command: CommandOf<"Create">, state: StackState): StackEvent[] {
  if (state.exists) throw conflict(`stack ${command.stack} already exists`);
  return [stackCreated(command)];
}

/**
 * `corral up` and its flags: a new revision when the project changed, and
 * the operation that brings it up, upgrades the services that changed (with
 * --upgrade or --force-upgrade), confirms or rolls back.
 */
export function decideUp(command: UpCommand, state: StackState): StackEvent[] {
  refuseWhileBusy(state, "up");
  const pending = pendingUpgrades(state);
  if (command.rollback && command.toRevision === undefined) return decideRollback(command, state, pending);
  if (command.toRevision !== undefined) return decideUp(toRevision(command, state), state);
  if (command.confirm && !command.upgrade && !command.force) {
    // with nothing awaiting, it settles at once
    return [started(command, "confirm", state.revision, { services: pending })];
  }

  const events: StackEvent[] = [];
  const fresh = !state.exists;
  if (fresh) {
    // a new stack, or a new life of one removed: what follows is decided in that life (revisions from 1)
    const created = stackCreated(command);
    events.push(created);
    state = evolve(state, created);
  }
  const { services, changed, toUpgrade, secrets } = serviceChanges(command, state);
  const volumes = { ...state.volumes, ...command.volumes };
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
  for (const name of command.startFirst ? toUpgrade : []) refuseBlockedStartFirst(state, name, services[name]!.spec);
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

/**
 * The project's services against the stack's: each with its config hash,
 * those `changed` (new, changed, or scaled), those `toUpgrade` (changed, or
 * forced, with containers that run), and the secrets' names they hash with.
 * A changed service with containers is refused without --upgrade.
 */
function serviceChanges(command: UpCommand, state: StackState) {
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
  return { services, changed, toUpgrade, secrets: names };
}

/** --start-first is refused for a service whose container publishes a host port itself: old and new cannot both hold it. */
function refuseBlockedStartFirst(state: StackState, name: string, spec: ServiceSpec): void {
  const blocking = portsBlockingStartFirst(state.services[name]?.spec, spec, state.slotPorts?.[name]);
  if (blocking.length === 0) return;
  const ports = `host port${blocking.length > 1 ? "s" : ""} ${blocking.join(", ")}`;
  const them = blocking.length > 1 ? "them" : "it";
  throw conflict(
    `service ${name} publishes ${ports} on its container: start-first would need the old and the new container on ${them} at once; ` +
      `publish ${them} with 'mode: ingress' (the host agent then routes ${them} to healthy containers, as Swarm's routing mesh does) and upgrade, or upgrade it stop-first`,
  );
}

/**
 * Services of the current operation whose dependencies (depends_on) have come
 * up; `blocked` are those waiting on a dependency that failed.
 */
export function readyServices(state: StackState): { ready: string[]; blocked: Array<[string, string]> } {
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

/** An up's next wave: the services whose dependencies have come up, brought to what their spec says. */
export function planUp(state: StackState, opId: string, hosts: HostInfo[], now: number, others: Placed[]): StackEvent[] {
  const { ready } = readyServices(state);
  if (ready.length === 0) return [];
  const steps = planServices(state, opId, hosts, ready, others);
  if (!Array.isArray(steps)) return [steps];
  return planEvents(state, opId, ready, steps, now);
}
