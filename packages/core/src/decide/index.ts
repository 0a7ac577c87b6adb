import type { StackEvent } from "../events.js";
import type { StepReport } from "../model.js";
import { containerName, displayName } from "../names.js";
import type { Placed } from "../placement.js";
import type { PlannedPlacement } from "../scheduling.js";
import { Draft, type StackState } from "../state.js";
import type { Command, HostInfo } from "./commands.js";
import { decideExited, decideHealth } from "./health.js";
import { decideLifecycle } from "./lifecycle.js";
import { decideRemove, decideRemoveContainer, decideRemoveService } from "./remove.js";
import { decideAbandon, decidePlan, decideReport, decideResend } from "./report.js";
import { decideScale } from "./scale.js";
import { slotPortEvents } from "./slot-ports.js";
import { decideTick } from "./tick.js";
import { decideCreate, decideUp } from "./up.js";

export type { Command, CommandOf, HostInfo } from "./commands.js";
export { disconnectedContainers, drainingContainers } from "./move.js";
export { staleContainers } from "./cleanup.js";
export { restartDue } from "./tick.js";
export { placementProblem } from "./scale.js";
export { pendingUpgrades } from "./shared.js";
export { stepId } from "./steps.js";

/**
 * The decider: given the state of a stack and a command, the events that
 * follow. Pure; throws DomainError to refuse. Each command is decided in its
 * own module; a command type not handled here does not compile.
 */
export function decide(command: Command, state: StackState): StackEvent[] {
  // an operation this stack started already: the same request again (its answer was lost), decided once
  if ("op" in command && state.recentOps?.includes(command.op)) return [];
  switch (command.type) {
    case "Up":
      return slotPortEvents(state, decideUp(command, state), command.ports);
    case "Create":
      return decideCreate(command, state);
    case "Remove":
      return decideRemove(command, state);
    case "RemoveService":
      return decideRemoveService(command, state);
    case "RemoveContainer":
      return decideRemoveContainer(command, state);
    case "Scale":
      return decideScale(command, state);
    case "Lifecycle":
      return decideLifecycle(command, state);
    case "Plan":
      return decidePlan(command, state);
    case "Report":
      return decideReport(command, state);
    case "Resend":
      return decideResend(command, state);
    case "Abandon":
      return decideAbandon(command, state);
    case "Health":
      return decideHealth(command, state);
    case "Exited":
      return decideExited(command, state);
    case "Tick":
      return decideTick(command, state);
    default: {
      const never: never = command;
      return never;
    }
  }
}

/**
 * Where an operation just started (`state` has its OperationStarted) would
 * put its new containers, and why: the decider plans it on `hosts` beside
 * `placed` (the other stacks' containers) with a perfect agent (every step
 * succeeds), wave after wave, as far as it goes. `failed`: the reason it
 * would fail (no host for a container, say). Pure: for `up --dry-run`.
 */
export function previewPlacements(state: StackState, hosts: HostInfo[], placed: Placed[], now: number): { placements: PlannedPlacement[]; failed?: string } {
  const draft = new Draft(state);
  const placements: PlannedPlacement[] = [];
  const note = (events: StackEvent[]) => {
    for (const e of events) {
      if (e.type === "StepPlanned" && e.step.action === "create" && e.step.placement && e.step.slot !== undefined) {
        const container = displayName(e.step.container ?? containerName(state.name, e.step.service, e.step.slot));
        placements.push({ service: e.step.service, slot: e.step.slot, container, host: e.step.host, why: e.step.placement });
      }
    }
    draft.applyAll(events);
  };
  note(decide({ type: "Plan", hosts, now, placed }, draft.state));
  for (let guard = 0; guard < 100_000 && draft.state.op?.status === "running"; guard++) {
    const s = draft.state;
    const next = Object.values(s.steps).find((r) => r.status === "planned" && r.step.after.every((d) => s.steps[d]?.status !== "planned"));
    if (!next) break;
    const created = next.step.action === "create" ? { containerId: `dry-run-${guard}` } : {};
    const report: StepReport = { kind: "report", stack: state.name, stepId: next.step.id, host: next.step.host, ok: true, ...created };
    note(decide({ type: "Report", report, hosts, now, placed }, s));
  }
  const op = draft.state.op;
  return { placements, ...(op?.status === "failed" && op.reason ? { failed: op.reason } : {}) };
}
