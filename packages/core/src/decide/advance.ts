import { blockedByFailure, sendable } from "../dispatch.js";
import type { StackEvent } from "../events.js";
import type { Placed } from "../placement.js";
import { Draft, evolve, evolveAll, type StackState } from "../state.js";
import type { HostInfo } from "./commands.js";
import { planners } from "./planners.js";
import { upgradedBy } from "./shared.js";
import { planUp, readyServices } from "./up.js";
import { finishSteps, monitoring, upgradeFailed } from "./upgrade.js";

// How an operation goes on: what can be planned now is, and once nothing is left it settles.

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

/** The steps waiting on a failed one, as their failures: skipped. */
export const blockedSkips = (state: StackState) => blockedByFailure(state).map((b): StackEvent => ({ type: "StepFailed", stepId: b.stepId, error: b.error }));

/** Plan what can be planned now, then settle if nothing is left. */
export function advance(state: StackState, hosts: HostInfo[], now: number, others: Placed[] = []): StackEvent[] {
  const op = state.op;
  if (!op || op.status !== "running") return [];
  // steps still waiting on a failed one: skipped now (a failure's skips are cut short when a crash falls between the commits of a large decision)
  const halted = haltedSkips(state);
  const skips = halted.length > 0 ? halted : blockedSkips(state);
  if (skips.length > 0) return [...skips, ...advance(evolveAll(state, skips), hosts, now, others)];
  const planned: StackEvent[] = [];
  let after = op.planned ? state : evolve(state, { type: "WavePlanned", op: op.id, services: [] });
  if (!op.planned) {
    // the first steps: what finishes pending upgrades, then the operation's own
    planned.push(...finishSteps(state, op, now), ...planners[op.kind](state, op, hosts, now, others));
    if (planned.some((e) => e.type === "OperationFailed")) return planned;
    after = evolveAll(after, planned);
  }
  // waves with nothing to do (services already running) are passed through at once
  for (let wave = op.kind === "up" ? planUp(after, op.id, hosts, now, others) : []; wave.length > 0; ) {
    planned.push(...wave);
    if (wave.some((e) => e.type === "OperationFailed")) return planned;
    after = evolveAll(after, wave);
    wave = wave.some((e) => e.type === "StepPlanned") ? [] : planUp(after, op.id, hosts, now, others);
  }
  const settled = settle(after, now);
  // a failure that rolls back by itself starts the rollback at once
  const next = settled.find((e) => e.type === "OperationStarted");
  if (next) return [...planned, ...settled, ...advance(evolveAll(after, settled), hosts, now, others)];
  return [...planned, ...settled];
}
