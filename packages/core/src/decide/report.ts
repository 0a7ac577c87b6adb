import type { StackEvent } from "../events.js";
import type { Step } from "../model.js";
import { sendable } from "../dispatch.js";
import { Draft, type StackState } from "../state.js";
import { advance, blockedSkips } from "./advance.js";
import type { CommandOf } from "./commands.js";
import { cronRunFinished } from "./cron.js";
import { opInProgress, upgradedBy } from "./shared.js";

// The operation in progress, step by step: planned, reported on, re-sent, or given up.

/** Plan the steps of the operation in progress, once: later waves are planned as reports come. */
export function decidePlan(command: CommandOf<"Plan">, state: StackState): StackEvent[] {
  const op = state.op;
  if (!op || op.status !== "running" || op.planned) return [];
  return advance(state, command.hosts, command.now, command.placed);
}

/** An agent's report on a step (or on a scheduled job's run): the steps it blocks are skipped, the next wave planned. */
export function decideReport(command: CommandOf<"Report">, state: StackState): StackEvent[] {
  const { report } = command;
  const run = cronRunFinished(state, report, command.now);
  if (run) return run;
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
        ...(report.image && record.step.action === "pull" ? { image: report.image } : {}),
        ...(record.step.action === "start" ? { at: command.now } : {}),
      }
    : { type: "StepFailed", stepId: report.stepId, error: report.error ?? "failed" };
  const implied = report.ok ? impliedRenames(state, record.step) : [];
  const s = new Draft(state).applyAll(implied).apply(event);
  const skips = event.type === "StepFailed" ? blockedSkips(s.state) : [];
  return [...implied, event, ...skips, ...advance(s.applyAll(skips).state, command.hosts, command.now, command.placed)];
}

/**
 * A container started under a name a rename of the plan gives it (a
 * rollback's old container, taking its name back), while that rename's own
 * report has not come (lost with a queue, or behind this one): the agent
 * found the very container (its create's label) under the new name, so the
 * rename is done. Said first, so that the start lands on the moved record.
 */
function impliedRenames(state: StackState, step: Step): StackEvent[] {
  if (step.action !== "start" || !step.container || !step.createdBy) return [];
  return step.after.flatMap((id): StackEvent[] => {
    const dep = state.steps[id];
    const renamed = dep?.status === "planned" && dep.step.action === "rename" && dep.step.renameTo === step.container && dep.step.host === step.host && dep.step.createdBy === step.createdBy;
    return renamed ? [{ type: "StepSucceeded", stepId: id, alreadyDone: true }] : [];
  });
}

/** Steps planned and not reported within the timeout are sent again, or fail after the last attempt (at the first timeout for a disconnected host). */
export function decideResend(command: CommandOf<"Resend">, state: StackState): StackEvent[] {
  if (!opInProgress(state)) return [];
  // a step for a host that stopped heartbeating is not sent again: once late it fails, saying so, and the operation
  // with it; a host back within the timeout (a network blip longer than the heartbeat's) has it re-sent as any
  const lost = new Set((command.hosts ?? []).filter((h) => h.state === "disconnected").map((h) => h.id));
  const due = (r: { step: { host: string }; plannedAt: number }) => (command.host !== undefined ? r.step.host === command.host : command.now - r.plannedAt >= command.timeoutMs);
  const late = Object.values(state.steps).filter((r) => r.status === "planned" && sendable(state, r.step) && due(r));
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
  const skips = blockedSkips(s.state);
  return [...events, ...skips, ...advance(s.applyAll(skips).state, command.hosts ?? [], command.now, command.placed)];
}

/** The operation in progress fails with the reason it cannot go on; an upgrade still rolling pauses, so that rollback and confirm stay open. */
export function decideAbandon(command: CommandOf<"Abandon">, state: StackState): StackEvent[] {
  const op = state.op;
  if (!op || op.status !== "running") return [];
  const reason = `${command.reason}; the operation cannot go on`;
  const rolling = op.kind === "upgrade" && upgradedBy(state, op.id).some((s) => state.upgrades[s]!.status === "upgrading");
  const pause: StackEvent[] = rolling ? [{ type: "UpgradePaused", op: op.id, reason }] : [];
  return [...pause, { type: "OperationFailed", op: op.id, reason }];
}
