import { busy, conflict, notFound } from "../errors.js";
import type { OperationKind, StackEvent } from "../events.js";
import type { StackState } from "../state.js";

// What the commands refuse, and what they ask of the state, alike.

export const opInProgress = (state: StackState) => state.op?.status === "running";

const doingText: Record<OperationKind, string> = {
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

export function refuseWhileBusy(state: StackState, what: string): void {
  const op = state.op;
  if (op && op.status === "running") {
    const outs = op.kind === "upgrade" ? ` (or 'corral up --rollback' once it settles)` : "";
    throw busy(
      `cannot ${what} stack ${state.name}: it is ${doingText[op.kind]} (operation ${op.id}); wait for it to settle${outs}, or remove the stack with 'corral rm --type stack ${state.name}'`,
    );
  }
}

/** Scale, stop, start, restart and rm act on what runs: not on a service whose upgrade waits for a verdict. */
export function refuseWhileUpgradePending(state: StackState, what: string, services: string[]): void {
  const waiting = services.filter((s) => state.upgrades[s] && state.upgrades[s].status !== "upgrading");
  if (waiting.length === 0) return;
  const u = state.upgrades[waiting[0]!]!;
  const which = waiting.length === 1 ? `the upgrade of ${waiting[0]} is` : `the upgrades of ${waiting.join(", ")} are`;
  const verdict = u.status === "paused" ? "paused" : "awaiting confirmation";
  throw conflict(`cannot ${what} stack ${state.name}: ${which} ${verdict} (revision ${u.from} → ${u.to}); first 'corral up --confirm-upgrade' or 'corral up --rollback'`);
}

export function scopeOf(state: StackState, services: string[] | undefined): string[] {
  if (!state.exists) throw notFound(`stack ${state.name} not found`);
  for (const s of services ?? []) if (!state.services[s]) throw notFound(`stack ${state.name} has no service ${s} (services: ${Object.keys(state.services).join(", ")})`);
  return services?.length ? services : Object.keys(state.services);
}

/** Services whose upgrade waits for a verdict (upgraded, or paused by a failure), in the state's order. */
export function pendingUpgrades(state: StackState): string[] {
  return Object.entries(state.upgrades).flatMap(([service, u]) => (u.status === "upgraded" || u.status === "paused" ? [service] : []));
}

/** The services whose pending upgrade an operation made. */
export const upgradedBy = (state: StackState, op: string) => Object.entries(state.upgrades).flatMap(([service, u]) => (u.op === op ? [service] : []));

export const failureAction = (state: StackState, service: string) => state.services[service]?.spec.deploy?.update_config?.failure_action ?? "pause";

/** A stack's creation, by whoever creates it: its owner, and of their group unless told. */
export const stackCreated = (command: { stack: string; by: string; group?: string }): StackEvent => ({
  type: "StackCreated",
  stack: command.stack,
  by: command.by,
  owner: command.by,
  group: command.group ?? command.by,
});
