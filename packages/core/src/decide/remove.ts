import { conflict, notFound } from "../errors.js";
import type { StackEvent } from "../events.js";
import type { Step } from "../model.js";
import { displayName } from "../names.js";
import type { Placed } from "../placement.js";
import { placeService, stackPlaced } from "../scheduling.js";
import type { Operation, StackState } from "../state.js";
import { containerId } from "../view.js";
import { staleSteps } from "./cleanup.js";
import type { CommandOf, HostInfo } from "./commands.js";
import { refuseWhileBusy, refuseWhileUpgradePending, scopeOf } from "./shared.js";
import { newContainer, planEvents, stopAndRemove } from "./steps.js";

// Removals: of a stack, of a service (a new revision without it), of one container (its slot made anew).

/** `corral rm --type stack`: everything of the stack goes (asked again while it goes: nothing more). */
export function decideRemove(command: CommandOf<"Remove">, state: StackState): StackEvent[] {
  if (!state.exists) throw notFound(`stack ${command.stack} not found`);
  if (state.op?.status === "running" && state.op.kind === "rm") return [];
  return [{ type: "OperationStarted", op: command.op, kind: "rm", revision: state.revision, by: command.by, source: command.source }];
}

/** `corral rm --type service STACK/SERVICE`: a new revision without it, and its containers go. */
export function decideRemoveService(command: CommandOf<"RemoveService">, state: StackState): StackEvent[] {
  const [service] = scopeOf(state, [command.service]);
  refuseWhileBusy(state, "change");
  refuseWhileUpgradePending(state, "change", [service!]);
  const { [service!]: _gone, ...services } = state.services;
  const revision = state.lastRevision + 1;
  return [
    {
      type: "RevisionCommitted",
      revision,
      services,
      volumes: state.volumes,
      secrets: state.secrets,
      secretVersions: state.secretVersions,
      changed: [service!],
      by: command.by,
      source: command.source,
      ...(command.now ? { at: command.now } : {}),
    },
    { type: "OperationStarted", op: command.op, kind: "rm-service", revision, by: command.by, source: command.source, services: [service!] },
  ];
}

/** `corral rm --type container NAME`: the container goes; its slot is made anew (unless scaled down). */
export function decideRemoveContainer(command: CommandOf<"RemoveContainer">, state: StackState): StackEvent[] {
  const c = state.containers[command.container];
  if (!state.exists || !c) throw notFound(`stack ${state.name} has no container ${command.container}`);
  refuseWhileBusy(state, "change");
  if (c.previousOf) {
    const outs = "'corral up --confirm-upgrade' removes it, 'corral up --rollback' brings it back";
    throw conflict(`container ${displayName(c.previousOf)} (${containerId(c)}) is the previous one, kept by the upgrade awaiting confirmation: ${outs}`);
  }
  refuseWhileUpgradePending(state, "change", [c.service]);
  const { op, by, source } = command;
  return [{ type: "OperationStarted", op, kind: "rm-container", revision: state.revision, by, source, services: [c.service], containers: [c.name] }];
}

/** A stack's removal: every container it has (made, being made, a scheduled run, left on a lost host) stops and goes, and its network with it. */
export function planRemove(state: StackState, opId: string, now: number): StackEvent[] {
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

/** rm --type service: every container of the service goes; rm --type container: one goes and its slot is made anew. */
export function planRemoveParts(state: StackState, op: Operation, hosts: HostInfo[], now: number, others: Placed[]): StackEvent[] {
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
