import { cronOverlapAllowed, cronSchedule, lastFire, nextFire, scheduleProblem } from "../cron.js";
import type { StackEvent } from "../events.js";
import type { Step, StepReport } from "../model.js";
import { runContainerName } from "../names.js";
import type { Placed } from "../placement.js";
import { placeService, stackPlaced } from "../scheduling.js";
import type { StackState } from "../state.js";
import type { HostInfo } from "./commands.js";
import { dropUndefined, newContainer, stepId } from "./steps.js";

// Scheduled jobs: a run at each of their times, a one-shot container; and the report of how it ended.

/**
 * Scheduled jobs at a tick: each job whose time has come gets a run, a
 * one-shot container on a live host, unless its last run still goes and
 * overlap is not allowed. Missed times are not caught up: one run per tick
 * at most. A job seen for the first time starts counting from now.
 */
export function cronTick(state: StackState, hosts: HostInfo[], now: number, others: Placed[]): StackEvent[] {
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

/**
 * A report on a scheduled job's run: how it ended, from the host it went to
 * and once. Undefined when the report is about no run (but a step).
 */
export function cronRunFinished(state: StackState, report: StepReport, now: number): StackEvent[] | undefined {
  for (const [service, c] of Object.entries(state.cron)) {
    const run = c.runs.find((r) => r.stepId === report.stepId);
    if (!run) continue;
    if (run.host !== report.host) return []; // only the host the run went to may say how it ended
    if (run.status !== "running") return []; // reported before: a duplicate
    return [{ type: "CronRunFinished", service, run: run.run, at: now, ...(report.ok ? { exitCode: report.exitCode ?? 0 } : { error: report.error ?? "failed" }) }];
  }
  return undefined;
}
