import { conflict } from "../errors.js";
import type { OperationKind, RevisionService, StackEvent } from "../events.js";
import { canonicalJson, configHash } from "../hash.js";
import { tagOf } from "../images.js";
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
  const { services, changed, toUpgrade, secrets, moved, noticed, unchecked } = serviceChanges(command, state);
  if (Object.keys(noticed).length > 0 || Object.keys(unchecked).length > 0) {
    events.push({ type: "ImagesChecked", op: command.op, ...(Object.keys(noticed).length ? { moved: noticed } : {}), ...(Object.keys(unchecked).length ? { unchecked } : {}) });
  }
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
      ...(Object.keys(moved).length ? { moved } : {}),
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
  const moved: Record<string, { tag: string; digest: string }> = {};
  const noticed: Record<string, { tag: string; digest: string }> = {};
  const unchecked: Record<string, { reason: string; kept?: string }> = {};
  const withLive = new Set(Object.values(state.containers).flatMap((c) => (c.previousOf ? [] : [c.service])));
  for (const [name, spec] of Object.entries(command.services)) {
    const hash = configHash(spec, command.secretVersions, names);
    const current = state.services[name];
    const live = withLive.has(name);
    const hashChanged = current !== undefined && current.hash !== hash;
    if (hashChanged && live && !command.upgrade && !command.force) {
      throw conflict(`service ${name} of stack ${command.stack} has changed; run 'corral up --upgrade' to upgrade it`);
    }
    const pin = pinFor(command, name, current, spec, hashChanged);
    const upgrading = command.upgrade || command.force;
    // the tag names other bytes now (the :latest workflow): an upgrade deploys them; a plain up keeps what runs, and says so
    const tagMoved = (pin.moved !== undefined || pin.back === true) && live && !hashChanged;
    if (tagMoved && !upgrading && pin.moved) noticed[name] = { tag: tagOf(spec.image) ?? "latest", digest: pin.moved };
    if (pin.unchecked && (upgrading || !current)) unchecked[name] = pin.unchecked;
    const upgradeIt = live && (hashChanged || command.force || (tagMoved && command.upgrade === true));
    if (!current || hashChanged || current.spec.scale !== spec.scale || (tagMoved && upgrading)) changed.push(name);
    if (upgradeIt) toUpgrade.push(name);
    if (upgradeIt && pin.moved && tagMoved) moved[name] = { tag: tagOf(spec.image) ?? "latest", digest: pin.moved };
    const keep = tagMoved && !upgrading ? current! : undefined;
    services[name] = keep ? { ...keep, spec, hash } : { spec, hash, ...(pin.digest ? { digest: pin.digest } : {}), ...(pin.ids ? { ids: pin.ids } : {}) };
  }
  return { services, changed, toUpgrade, secrets: names, moved, noticed, unchecked };
}

/**
 * What a service's image is pinned to in the revision `up` makes: the
 * digest the registry gave now (or the revision rolled back to had); else,
 * for the same reference, the pin it has (the registry could not be asked:
 * it stays on what runs); else nothing, and the first pull pins it. A
 * local image's ids carry over only while the service is unchanged and
 * not pulled anew: a changed service is made from what the host has now.
 */
function pinFor(command: UpCommand, name: string, current: RevisionService | undefined, spec: ServiceSpec, hashChanged: boolean) {
  // a revision deployed again (--rollback --to-revision): exactly what it ran
  const sameImage = current?.spec.image === spec.image;
  const out: { digest?: string; ids?: Record<string, string>; moved?: string; back?: true; unchecked?: { reason: string; kept?: string } } = {};
  const exact = command.exact?.[name];
  if (exact) {
    if (exact.digest) out.digest = exact.digest;
    if (exact.ids) out.ids = exact.ids;
    // the same reference, other bytes than run now: deployed again all the same
    const differs = exact.digest ? exact.digest !== current?.digest : Object.entries(exact.ids ?? {}).some(([h, id]) => current?.ids?.[h] !== undefined && current.ids[h] !== id);
    if (sameImage && differs) out.back = true;
    return out;
  }
  const given = command.pins?.[spec.image];
  if (given && "digest" in given) {
    out.digest = given.digest;
    if (sameImage && current.digest && current.digest !== given.digest) out.moved = given.digest;
    return out;
  }
  // (--pull: the hosts pull the tag anew, and the revision pins what they get)
  if (sameImage && current.digest && !command.pull) out.digest = current.digest;
  else if (sameImage && current.ids && !hashChanged && !command.pull && !command.force) out.ids = current.ids;
  if (given && "unchecked" in given && current?.digest && sameImage) out.unchecked = { reason: given.unchecked, kept: current.digest };
  return out;
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
