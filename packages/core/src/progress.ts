import type { Commit, OperationKind, StackEvent } from "./events.js";
import type { Step } from "./model.js";
import { displayName, parseEngineName } from "./names.js";
import type { StackState } from "./state.js";

type Status = "planned" | "succeeded" | "failed";

/** What progress knows of a step when it starts reading: the step, and how it stood then. */
export interface KnownStep {
  step: Step;
  status?: Status;
}

/** What progress knows when it starts reading a log part way: the steps and the operation as they stood. */
export interface ProgressStart {
  steps?: Record<string, KnownStep>;
  op?: { id: string; kind: OperationKind };
}

/**
 * The progress lines a user sees (`[web]: Creating`), derived from a
 * stack's events read in order: `line(event)` for each, undefined for an
 * event that says nothing to a user.
 *
 * Lines come in the order things happen on the host: a step is announced
 * (`Creating`, `Starting`, `Stopping`) once what it waits for has
 * succeeded, not when it is planned (an upgrade plans the new container's
 * create at once, behind the old one's stop). Renames say nothing: they
 * are how an upgrade keeps the old container aside, not something a user
 * sees; the old container is `Stopped`, the new one `Creating`, and a
 * rollback's old container is `Started` again under its name.
 */
export class Progress {
  readonly #stack: string;
  readonly #steps = new Map<string, { step: Step; status: Status }>();
  /** Planned steps by what they wait for, to announce them when it is done. */
  readonly #waiting = new Map<string, string[]>();
  readonly #ops = new Map<string, { kind: OperationKind; steps: number }>();

  constructor(stack: string, start: ProgressStart = {}) {
    this.#stack = stack;
    if (start.op) this.#ops.set(start.op.id, { kind: start.op.kind, steps: 0 });
    for (const { step, status } of Object.values(start.steps ?? {})) this.#learn(step, status ?? "planned");
  }

  /** The line for the next event, if it says something to a user. */
  line(event: StackEvent): string | undefined {
    const lines = this.#lines(event).filter((l) => l !== "");
    return lines.length > 0 ? lines.join("\n") : undefined;
  }

  #learn(step: Step, status: Status): void {
    this.#steps.set(step.id, { step, status });
    const op = this.#ops.get(step.op);
    if (op) op.steps++;
    if (status !== "planned") return;
    for (const dep of step.after) this.#waiting.set(dep, [...(this.#waiting.get(dep) ?? []), step.id]);
  }

  /** May the step go now: every step it waits for is done (a failed one counts for a step that goes after any)? Unknown ones are from an earlier operation. */
  #ready(step: Step): boolean {
    return step.after.every((id) => {
      const dep = this.#steps.get(id);
      return !dep || dep.status === "succeeded" || (dep.status === "failed" && step.afterAny === true);
    });
  }

  #settle(stepId: string, status: Status): Step | undefined {
    const known = this.#steps.get(stepId);
    if (!known || known.status !== "planned") return known?.step;
    known.status = status;
    return known.step;
  }

  /** The announcements of steps that the one just done has let go. */
  #released(stepId: string): string[] {
    const out: string[] = [];
    for (const id of this.#waiting.get(stepId) ?? []) {
      const next = this.#steps.get(id);
      if (next?.status === "planned" && this.#ready(next.step)) out.push(announce(next.step));
    }
    this.#waiting.delete(stepId);
    return out;
  }

  #lines(event: StackEvent): string[] {
    switch (event.type) {
      case "OperationStarted":
        this.#ops.set(event.op, { kind: event.kind, steps: 0 });
        if (event.kind === "move") {
          const lost = new Set(event.disconnected ?? []);
          const why = (h: string) => `${h} (${lost.has(h) ? "disconnected" : "draining"})`;
          const off = event.hosts?.length ? ` off ${event.hosts.map(why).join(", ")}` : "";
          return [`Moving ${(event.containers ?? []).map((c) => displayName(c)).join(", ")}${off}`];
        }
        if (event.kind === "start" && event.by === "corral" && event.containers?.length) {
          return [`Starting ${event.containers.map((c) => displayName(c)).join(", ")} again: its restart policy wants it running, and its engine did not start it`];
        }
        if (event.kind === "cleanup") return [`Removing stale ${(event.containers ?? []).map((c) => displayName(c)).join(", ")} from ${(event.hosts ?? []).join(", ")} (back from a disconnection)`];
        return [];
      case "ContainerWaiting":
        return event.reason ? [`${displayName(event.container)} waits for ${event.host} (disconnected): ${event.reason}`] : [];
      case "StepPlanned": {
        const { step } = event;
        if (this.#steps.get(step.id)) return []; // known already
        this.#learn(step, "planned");
        return this.#ready(step) ? [announce(step)] : [];
      }
      case "StepSucceeded": {
        const was = this.#steps.get(event.stepId)?.status;
        const step = this.#settle(event.stepId, "succeeded");
        if (!step || was !== "planned") return [];
        return [done(step, event.alreadyDone === true), ...this.#released(event.stepId)];
      }
      case "StepFailed": {
        const was = this.#steps.get(event.stepId)?.status;
        const step = this.#settle(event.stepId, "failed");
        if (was && was !== "planned") return [];
        return [`${tag(step)}: ${step?.action ?? "step"} failed: ${event.error}`, ...this.#released(event.stepId)];
      }
      case "StepResent": {
        const step = this.#steps.get(event.stepId)?.step;
        return [`${tag(step)}: no answer from host ${step?.host ?? "?"} yet, sending ${step?.action ?? "step"} again (attempt ${event.attempt})`];
      }
      case "OperationSucceeded": {
        const op = this.#ops.get(event.op);
        // an up that found everything as it should be: say so, rather than nothing
        return op?.kind === "up" && op.steps === 0 ? [`Stack ${this.#stack} is up to date`] : [];
      }
      case "UpgradeStarted":
        return event.services.map((s) => (event.moved?.[s] ? `Upgrading ${s}: image ${event.moved[s].tag} moved to ${event.moved[s].digest}` : `Upgrading ${s}`));
      case "ImagesChecked":
        return [
          ...Object.entries(event.moved ?? {}).map(([s, m]) => `[${s}]: image ${m.tag} moved to ${m.digest}; 'corral up --upgrade' deploys it (what runs stays as it is)`),
          ...Object.entries(event.unchecked ?? {}).map(([s, u]) => `[${s}]: could not check ${s}'s image with its registry (${u.reason})${u.kept ? `; keeping ${u.kept}` : ""}`),
        ];
      case "UpgradeFinished":
        return ["Upgraded: 'corral up --confirm-upgrade' to keep it, 'corral up --rollback' to go back"];
      case "UpgradeConfirmed":
        return ["Upgrade confirmed"];
      case "RollbackFinished":
        return [`Rolled back to revision ${event.revision}`];
      case "UpgradePaused":
        return [`Upgrade paused: ${event.reason}`];
      case "RevisionCommitted":
        return [`Revision ${event.revision}: ${event.changed.length > 0 ? event.changed.join(", ") : "no service"} changed`];
      case "OperationFailed":
        return [`Failed: ${event.reason}`];
      case "ServiceFailed":
        return [`[${event.service}]: failed: ${event.reason}`];
      case "CronFired":
        return event.run ? [`[${event.service}]: run ${event.run} started`] : event.skipped === "overlap" ? [`[${event.service}]: run skipped: the last one still runs`] : [];
      case "CronRunFinished":
        return [`[${event.service}]: run ${event.run} ${event.error ? `failed: ${event.error}` : `exited ${event.exitCode ?? 0}`}`];
      case "ServiceScaled":
        return [`[${event.service}]: Scaling to ${event.scale}`];
      case "StackRemoved":
        return ["Stack removed"];
      default:
        return [];
    }
  }
}

const tag = (step: Step | undefined) => (step ? `[${step.service}]` : "[?]");

/** A step that may go now, as a user sees it begin; nothing for a pull, a rename or a removal. */
function announce(step: Step): string {
  if (step.action === "create") {
    if (!step.addressLeft) return `${tag(step)}: Creating`;
    return `${tag(step)}: Creating on ${step.host}: retain_ip cannot keep ${step.addressLeft} (each host has its own subnet of the stack network)`;
  }
  if (step.action === "start") return `${tag(step)}: Starting`;
  if (step.action === "stop") return `${tag(step)}: Stopping`;
  return "";
}

/** A step done, as a user sees it. */
function done(step: Step, alreadyDone: boolean): string {
  switch (step.action) {
    case "pull":
      return alreadyDone ? "" : `${tag(step)}: Pulled ${step.image}`;
    case "create":
      return `${tag(step)}: Created`;
    case "start":
      return `${tag(step)}: Started`;
    case "stop":
      return `${tag(step)}: Stopped`;
    case "remove":
      return `${tag(step)}: Removed ${shown(step.container ?? "")}`.trimEnd();
    default:
      return "";
  }
}

/** A container as users know it: its slot's name, and for an old one an upgrade kept aside, which revision it ran. */
function shown(engineName: string): string {
  const parsed = parseEngineName(engineName);
  if (parsed?.kind !== "aside") return displayName(engineName);
  return `${parsed.stack}-${parsed.service}-${parsed.slot} (the old one, revision ${parsed.revision})`;
}

/**
 * Progress for a page of a stack's log read from version `after` on, given
 * the state now and every commit after `after` up to the state's version:
 * the steps and the operation as they stood at `after` (what succeeded or
 * failed since, or was planned since, did so later).
 */
export function progressFrom(state: StackState, later: Commit[]): Progress {
  const planned = new Set<string>();
  const reported = new Set<string>();
  let opStarted = false;
  for (const commit of later) {
    for (const e of commit.events) {
      if (e.type === "StepPlanned") planned.add(e.step.id);
      if (e.type === "StepSucceeded" || e.type === "StepFailed") reported.add(e.stepId);
      if (e.type === "OperationStarted" && e.op === state.op?.id) opStarted = true;
    }
  }
  const steps: Record<string, KnownStep> = {};
  for (const [id, r] of Object.entries(state.steps)) {
    // planned since: learnt from its own event; reported since: it was still planned
    if (planned.has(id)) continue;
    steps[id] = { step: r.step, status: reported.has(id) ? "planned" : r.status };
  }
  const op = state.op && !opStarted ? { op: { id: state.op.id, kind: state.op.kind } } : {};
  return new Progress(state.name, { steps, ...op });
}
