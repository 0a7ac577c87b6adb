import type { OperationKind, StackEvent } from "../events.js";
import type { Placed } from "../placement.js";
import type { Operation, StackState } from "../state.js";
import { planCleanup } from "./cleanup.js";
import type { HostInfo } from "./commands.js";
import { planLifecycle } from "./lifecycle.js";
import { planMove } from "./move.js";
import { planRemove, planRemoveParts } from "./remove.js";
import { planScale } from "./scale.js";
import { planConfirm, planRollback, planUpgrade } from "./upgrade.js";

/**
 * The first steps of an operation just started, planned on the live `hosts`
 * beside `others` (the other stacks' containers). A failure to place is an
 * OperationFailed among the events.
 */
export type Planner = (state: StackState, op: Operation, hosts: HostInfo[], now: number, others: Placed[]) => StackEvent[];

/** Every kind of operation has its planner: a new kind does not compile until it has one. */
export const planners: Record<OperationKind, Planner> = {
  // an up plans wave after wave, as the dependencies come up: on every advance (see planUp), not here
  up: () => [],
  rm: (state, op, _hosts, now) => planRemove(state, op.id, now),
  upgrade: (state, op, hosts, now, others) => planUpgrade(state, op.id, hosts, now, op, others),
  confirm: (state, op, _hosts, now) => planConfirm(state, op, now),
  rollback: (state, op, _hosts, now) => planRollback(state, op, now),
  scale: planScale,
  stop: (state, op, _hosts, now) => planLifecycle(state, op, now),
  start: (state, op, _hosts, now) => planLifecycle(state, op, now),
  restart: (state, op, _hosts, now) => planLifecycle(state, op, now),
  "rm-service": planRemoveParts,
  "rm-container": planRemoveParts,
  move: planMove,
  cleanup: planCleanup,
};
