import type { StackEvent } from "./events.js";
import type { Step } from "./model.js";
import type { StackState } from "./state.js";

/**
 * The FIFO group of a step on its host's queue: one per slot of a service
 * (a pull goes with slot 1). Steps of one group arrive in order; groups run
 * side by side.
 */
export const groupOf = (step: Step): string => `${step.stack}/${step.service}/${step.slot ?? 1}`;

const sameGroup = (a: Step, b: Step) => a.host === b.host && groupOf(a) === groupOf(b);

/**
 * May a planned step go to its host now? A dependency in the same group is
 * ordered by the queue itself; one in another group (another slot, another
 * host, an earlier batch) must have succeeded first.
 */
export function sendable(state: StackState, step: Step, depth = 0): boolean {
  return step.after.every((id) => {
    const dep = state.steps[id];
    if (!dep) return true; // from an earlier operation
    // same group: the queue keeps the order, provided the dependency itself goes (or went) out first
    if (dep.status === "succeeded") return true;
    if (dep.status === "failed") return step.afterAny === true;
    return sameGroup(dep.step, step) && depth < 64 && sendable(state, dep.step, depth + 1);
  });
}

/**
 * Steps to send after a commit: planned in it, re-sent by it, or released by
 * it (their dependencies just succeeded). And when it completes a plan cut
 * short (its wave marked now, some of its steps written before by a decision
 * that died or lost a race between two commits), those steps too: nobody
 * sent them.
 */
export function toDispatch(before: StackState, after: StackState, events: StackEvent[]): Step[] {
  const out = new Map<string, Step>();
  const marked = new Set<string>();
  let opMarked: string | undefined;
  for (const e of events) {
    if (e.type === "CronFired" && e.step) out.set(e.step.id, e.step);
    if (e.type === "StepPlanned" || e.type === "StepResent") {
      const r = after.steps[e.type === "StepPlanned" ? e.step.id : e.stepId];
      if (r && r.status === "planned" && sendable(after, r.step)) out.set(r.step.id, r.step);
    }
    if (e.type === "WavePlanned" && before.op?.id === e.op) {
      for (const service of e.services) marked.add(service);
      if (!before.op.planned) opMarked = e.op; // the operation's first plan: every step it had was cut short
    }
  }
  if (marked.size > 0 || opMarked) {
    for (const r of Object.values(before.steps)) {
      if (r.status !== "planned" || (r.step.op !== opMarked && !marked.has(r.step.service)) || out.has(r.step.id)) continue;
      const now = after.steps[r.step.id];
      if (now?.status === "planned" && sendable(after, now.step)) out.set(now.step.id, now.step);
    }
  }
  for (const r of Object.values(after.steps)) {
    if (r.status !== "planned" || out.has(r.step.id)) continue;
    const was = before.steps[r.step.id];
    if (was && was.status === "planned" && !sendable(before, was.step) && sendable(after, r.step)) out.set(r.step.id, r.step);
  }
  return [...out.values()];
}

/**
 * Steps that wait on a failed step: they fail too, by name, so that the
 * operation can settle. (One the agent already had skips and reports the same;
 * the first report wins.)
 */
export function blockedByFailure(state: StackState): Array<{ stepId: string; error: string }> {
  const out: Array<{ stepId: string; error: string }> = [];
  const records = Object.values(state.steps);
  const failed = new Set(records.filter((r) => r.status === "failed").map((r) => r.step.id));
  if (failed.size === 0) return out;
  // one pass finds them all when what a step waits on was planned before it (as planners do); another confirms
  for (let grew = true; grew; ) {
    grew = false;
    for (const r of records) {
      if (r.status !== "planned" || failed.has(r.step.id) || r.step.afterAny) continue;
      const dep = r.step.after.map((id) => state.steps[id]).find((d) => d && failed.has(d.step.id));
      if (!dep) continue;
      out.push({ stepId: r.step.id, error: `skipped: ${dep.step.action} of ${dep.step.container ?? dep.step.service} failed` });
      failed.add(r.step.id);
      grew = true;
    }
  }
  return out;
}
