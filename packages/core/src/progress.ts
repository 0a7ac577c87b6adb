import type { StackEvent } from "./events.js";
import type { Step } from "./model.js";
import { displayName } from "./names.js";

/**
 * The progress line a user sees for an event (`[web]: Created`), given the
 * steps of the operation; undefined for events that say nothing to a user.
 */
export function progressLine(event: StackEvent, steps: Record<string, { step: Step }>): string | undefined {
  const tag = (step: Step | undefined) => (step ? `[${step.service}]` : "[?]");
  switch (event.type) {
    case "StepPlanned": {
      const { step } = event;
      if (step.action === "stop") return `${tag(step)}: Stopping`;
      if (step.after.length > 0) return undefined; // announced when what it waits for is done
      if (step.action === "create") return `${tag(step)}: Creating`;
      if (step.action === "start") return `${tag(step)}: Starting`;
      return undefined;
    }
    case "StepSucceeded": {
      const step = steps[event.stepId]?.step;
      switch (step?.action) {
        case "pull":
          return `${event.alreadyDone ? "" : `${tag(step)}: Pulled ${step.image}\n`}${tag(step)}: Creating`;
        case "create":
          return `${tag(step)}: Created\n${tag(step)}: Starting`;
        case "start":
          return `${tag(step)}: Started`;
        case "stop":
          return `${tag(step)}: Stopped`;
        case "remove":
          return `${tag(step)}: Removed ${displayName(step.container ?? "")}`.trimEnd();
        case "rename":
          return `${tag(step)}: Kept ${displayName(step.container ?? "")} as ${displayName(step.renameTo ?? "")}`;
        default:
          return undefined;
      }
    }
    case "StepFailed": {
      const step = steps[event.stepId]?.step;
      return `${tag(step)}: ${step?.action ?? "step"} failed: ${event.error}`;
    }
    case "StepResent": {
      const step = steps[event.stepId]?.step;
      return `${tag(step)}: no answer from host ${step?.host ?? "?"} yet, sending ${step?.action ?? "step"} again (attempt ${event.attempt})`;
    }
    case "UpgradeStarted":
      return event.services.map((s) => `Upgrading ${s}`).join("\n");
    case "UpgradeFinished":
      return "Upgraded: 'corral up --confirm-upgrade' to keep it, 'corral up --rollback' to go back";
    case "UpgradeConfirmed":
      return "Upgrade confirmed";
    case "RollbackFinished":
      return `Rolled back to revision ${event.revision}`;
    case "UpgradePaused":
      return `Upgrade paused: ${event.reason}`;
    case "RevisionCommitted":
      return `Revision ${event.revision}: ${event.changed.length > 0 ? event.changed.join(", ") : "no service"} changed`;
    case "OperationFailed":
      return `Failed: ${event.reason}`;
    case "ServiceFailed":
      return `[${event.service}]: failed: ${event.reason}`;
    case "CronFired":
      return event.run ? `[${event.service}]: run ${event.run} started` : event.skipped === "overlap" ? `[${event.service}]: run skipped: the last one still runs` : undefined;
    case "CronRunFinished":
      return `[${event.service}]: run ${event.run} ${event.error ? `failed: ${event.error}` : `exited ${event.exitCode ?? 0}`}`;
    case "ServiceScaled":
      return `[${event.service}]: Scaling to ${event.scale}`;
    case "StackRemoved":
      return "Stack removed";
    default:
      return undefined;
  }
}
