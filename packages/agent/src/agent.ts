import { groupOf, hostMessageSchema, labels as L, type HostMessage, type Logger, type Step, type StepMessage } from "@corral/core/host";
import { CONTROL, extendVisibility, faultPoint, receiveLoop, type Opener, type OutgoingMessage, type QueueSender, type Received } from "@corral/queue";
import type { SQSClient } from "@aws-sdk/client-sqs";
import { engineMessage, engineSettling, engineUnreachable } from "./engine-errors.js";
import { secretFolder } from "./names.js";
import type { AgentOptions } from "./options.js";
import type { NetworkAssignment } from "./runtime.js";
import type { SessionRunner } from "./sessions.js";
import { executeStep, type Outcome, type StepContext } from "./steps/index.js";

/** A step's failure when the engine stayed away: what happened in a line, the engine's error last. */
export function unreachableError(hostId: string, message: string, waitedMs: number): string {
  return `the Docker engine of host ${hostId} could not be reached (${message.split("\n")[0]!.slice(0, 200)}); waited ${Math.round(waitedMs / 1000)} s for it`;
}

/**
 * Runs steps on one host. Before acting it asks the engine whether the step
 * is already done (container labels), so a message delivered twice, or
 * again after a crash, acts once.
 */
export class StepRunner {
  readonly #o: AgentOptions;
  /** Steps seen by this process: a duplicate waits for the first run instead of acting. */
  readonly #runs = new Map<string, Promise<Outcome>>();
  /** Steps that failed in this process, for the steps planned after them. */
  readonly #failed = new Map<string, Outcome>();

  /** What steps are acting on right now, counted: container names and create step ids (see acting). */
  readonly #acting = new Map<string, number>();

  /** What the step handlers act with: this runner's options and networks, and the other handlers (a run's create and remove). */
  readonly #context: StepContext;

  constructor(options: AgentOptions) {
    this.#o = options;
    this.#context = {
      options,
      ensureNetwork: (network, stack) => this.#ensureNetwork(network, stack),
      execute: (step) => this.#execute(step),
    };
  }

  /**
   * Is a step of this process acting on this container (by name) right now,
   * or on this secret folder (`secrets:FOLDER`, its create's)? The reconcile
   * leaves those alone: the step says how it went.
   */
  acting(key: string): boolean {
    return (this.#acting.get(key) ?? 0) > 0;
  }

  #hold(keys: string[]): () => void {
    for (const k of keys) this.#acting.set(k, (this.#acting.get(k) ?? 0) + 1);
    return () => {
      for (const k of keys) {
        const n = (this.#acting.get(k) ?? 1) - 1;
        if (n > 0) this.#acting.set(k, n);
        else this.#acting.delete(k);
      }
    };
  }

  /** Networks being created: services of a stack created at once share one. */
  readonly #networks = new Map<string, Promise<NetworkAssignment | undefined>>();

  /** The stack's network here, made if missing; on the control plane's subnet when this host is on the overlay. */
  #ensureNetwork(network: string, stack: string): Promise<NetworkAssignment | undefined> {
    let pending = this.#networks.get(network);
    if (!pending) {
      pending = (async () => {
        const assigned = this.#o.stackNetwork ? await this.#o.stackNetwork(stack) : undefined;
        await this.#o.runtime.ensureNetwork(network, { [L.stack]: stack }, assigned);
        if (assigned) await this.#o.networkMade?.(stack);
        return assigned;
      })().finally(() => this.#networks.delete(network));
      this.#networks.set(network, pending);
    }
    return pending;
  }

  /** Steps handled right now, by stack: a report says whether more of its stack's are coming (see queueReporter). */
  readonly #handling = new Map<string, number>();

  /** Run a step (once per process), then report its outcome. */
  async handle(message: StepMessage): Promise<void> {
    const { stack } = message.step;
    this.#handling.set(stack, (this.#handling.get(stack) ?? 0) + 1);
    let outcome: Outcome;
    try {
      outcome = await this.run(message.step);
    } finally {
      const n = this.#handling.get(stack)! - 1;
      if (n > 0) this.#handling.set(stack, n);
      else this.#handling.delete(stack);
    }
    const more = this.#handling.has(stack);
    await this.#o.report({ kind: "report", stack, stepId: message.step.id, host: this.#o.hostId, ...outcome }, message.attempt, groupOf(message.step), more);
  }

  run(step: Step): Promise<Outcome> {
    let run = this.#runs.get(step.id);
    if (!run) {
      run = this.#afterDependencies(step);
      this.#runs.set(step.id, run);
      if (this.#runs.size > 5000) this.#runs.delete(this.#runs.keys().next().value as string);
      // a failure may be transient: let a redelivery try again, but remember it for the steps that wait on it
      void run.then((o) => {
        if (o.ok) return;
        this.#runs.delete(step.id);
        this.#failed.set(step.id, o);
        if (this.#failed.size > 5000) this.#failed.delete(this.#failed.keys().next().value as string);
      });
    }
    return run;
  }

  async #afterDependencies(step: Step): Promise<Outcome> {
    for (const dep of step.after) {
      const failed = this.#failed.get(dep);
      const before = this.#runs.get(dep) ?? (failed ? Promise.resolve(failed) : undefined);
      if (!before) continue; // done by an earlier process, or arriving later: the engine will tell
      const outcome = await before;
      if (!outcome.ok && !step.afterAny) return { ok: false, error: `skipped: ${dep.split(".")[3] ?? "an earlier step"} failed` };
    }
    if (step.delayMs) await new Promise((r) => setTimeout(r, step.delayMs)); // the interval between upgrade batches, as asked
    const release = this.#hold([step.container, step.renameTo, `secrets:${secretFolder(step.id)}`].filter((k): k is string => k !== undefined));
    try {
      const { waitMs, retryMs } = this.#o.engineWait ?? { waitMs: 120_000, retryMs: 1000 };
      const since = Date.now();
      for (let attempt = 1; ; attempt++) {
        try {
          const outcome = await this.#execute(step);
          this.#o.log?.info("step done", { step: step.id, action: step.action, ...(attempt > 1 ? { afterEngineWaitMs: Date.now() - since } : {}) });
          return outcome;
        } catch (e) {
          const message = engineMessage(e);
          // a dockerd on its way down answers a call it cuts off in many ways: any failure while the engine no
          // longer answers is its absence, not the step's; one just back may still hold a container's files a while
          if (engineUnreachable(e) || engineSettling(e) || !(await this.#engineAnswers())) {
            // the engine is away (stopped, restarting): every step checks the engine before acting, so the same
            // step, run again from the top once it answers, does what is left of it
            const waited = Date.now() - since;
            if (waited + retryMs <= waitMs) {
              const why = engineSettling(e) ? "the Docker engine, just back, still holds the container's files" : "the Docker engine cannot be reached";
              if (attempt === 1) this.#o.log?.warn?.(`${why}; the step waits for it`, { step: step.id, error: message });
              await new Promise((r) => setTimeout(r, retryMs));
              continue;
            }
            const error = unreachableError(this.#o.hostId, message, waited);
            this.#o.log?.error("step failed", { step: step.id, error });
            return { ok: false, error };
          }
          this.#o.log?.error("step failed", { step: step.id, error: message });
          return { ok: false, error: message };
        }
      }
    } finally {
      release();
    }
  }

  /** Whether the engine answers at all (its version). */
  #engineAnswers(): Promise<boolean> {
    return this.#o.runtime.engineVersion().then(
      () => true,
      () => false,
    );
  }

  /** Do the step's action, by its handler (steps/). */
  async #execute(step: Step): Promise<Outcome> {
    faultPoint(`before:${step.action}`);
    const outcome = await executeStep(step, this.#context);
    faultPoint(`after:${step.action}`);
    return outcome;
  }
}

export interface AgentLoopOptions {
  runner: StepRunner;
  /** Logs and exec sessions; without it, session messages are dropped. */
  sessions?: SessionRunner;
  sqs: SQSClient;
  queueUrl: string;
  /** This host: steps addressed to any other host are refused. */
  hostId: string;
  /** Checks the control plane's signature, the addressee and the expiry of every message, and refuses replays. */
  opener: Opener;
  signal: AbortSignal;
  /** Receive loops in parallel: steps of different stacks do not wait for each other. */
  concurrency?: number;
  visibilitySeconds?: number;
  log?: Logger;
}

/** Only the control plane tells this host what to run, and only what it addressed to this host. */
export function authorizeHostMessage(hostId: string, m: Received<HostMessage>): string | undefined {
  if (m.by !== CONTROL) return `${m.by ?? "an unsigned sender"} may not send steps or sessions`;
  if (m.body.kind === "step" && m.body.step.host !== hostId) return `step ${m.body.step.id} is for host ${m.body.step.host}, not ${hostId}`;
  return undefined;
}

/** Long-poll the host's queue and run what arrives. */
export async function runAgentLoop(options: AgentLoopOptions): Promise<void> {
  const { runner, sqs, queueUrl, signal } = options;
  const visibility = options.visibilitySeconds ?? 30;
  const handle = async (all: Received<HostMessage>[]) => {
    // sessions run beside the steps, for as long as they last: their messages are done once started
    for (const m of all) if (m.body.kind === "session") options.sessions?.handle(m.body);
    const batch = all.filter((m): m is Received<StepMessage> => m.body.kind === "step");
    // keep the batch invisible to others while it runs (a long pull)
    const keepAlive = setInterval(() => {
      for (const m of batch) extendVisibility(sqs, queueUrl, m.receiptHandle, visibility).catch(() => {});
    }, (visibility * 1000) / 2);
    try {
      const results = await Promise.allSettled(batch.map((m) => runner.handle(m.body)));
      return { failed: batch.filter((_, i) => results[i]?.status === "rejected").map((m) => m.messageId) };
    } finally {
      clearInterval(keepAlive);
    }
  };
  // four loops, each retrying every half second while the queue is away: one line per outage, not forty a second
  const onError = throttled((error, more) => options.log?.error("host queue", { error, ...(more ? { repeated: more } : {}) }), 30_000);
  const loops = Array.from({ length: options.concurrency ?? 4 }, () =>
    receiveLoop({
      sqs,
      queueUrl,
      schema: hostMessageSchema,
      opener: options.opener,
      authorize: (m) => authorizeHostMessage(options.hostId, m),
      signal,
      waitSeconds: 10,
      handle,
      onError: (e) => onError(String(e)),
      onRefused: (r) => options.log?.error("host queue: message refused", { message: r.messageId, reason: r.reason }),
    }),
  );
  await Promise.all(loops);
}

/**
 * Reports go to the control queue, in their step's group, deduplicated by step
 * and attempt. Reports that come within a few milliseconds of each other go
 * out in one batch, so that the controller folds them into one commit; a
 * report with more steps of its stack still running (`more`: the removals of
 * a confirm, the starts of a batch, which end a few milliseconds apart)
 * waits up to `holdMs` for them, and the last one sends the batch.
 */
export function queueReporter(sender: QueueSender, controlQueueUrl: string, lingerMs = 3, holdMs = 25): AgentOptions["report"] {
  let pending: Array<{ message: OutgoingMessage; done: (e?: unknown) => void }> = [];
  let timer: NodeJS.Timeout | undefined;
  let due = Infinity;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    due = Infinity;
    const batch = pending;
    pending = [];
    sender.send(controlQueueUrl, batch.map((p) => p.message)).then(
      () => batch.forEach((p) => p.done()),
      (e: unknown) => batch.forEach((p) => p.done(e)),
    );
  };
  // the group is the step's slot, not the whole stack: the reports of a stack's slots are delivered side by side
  // (a FIFO group yields its messages one at a time), and the controller folds a batch of them into one commit
  return (report, attempt, group, more = false) =>
    new Promise<void>((resolve, reject) => {
      const message = { body: report, group, dedupId: `${report.stepId}#${attempt}#${report.ok ? "ok" : "failed"}`, to: CONTROL };
      pending.push({ message, done: (e) => (e ? reject(e instanceof Error ? e : new Error(String(e))) : resolve()) });
      if (pending.length >= 10) return flush();
      // the soonest of the pending reports' waits sends them all
      const wait = more ? holdMs : lingerMs;
      if (Date.now() + wait < due) {
        clearTimeout(timer);
        due = Date.now() + wait;
        timer = setTimeout(flush, wait);
      }
    });
}

/**
 * A log line for an error, and for the same error again only once `everyMs`
 * has passed, saying how many were left out meanwhile.
 */
export function throttled(write: (error: string, more: number) => void, everyMs: number, clock: () => number = Date.now): (error: string) => void {
  let last = "";
  let at = -Infinity;
  let skipped = 0;
  return (error) => {
    const now = clock();
    if (error === last && now - at < everyMs) {
      skipped++;
      return;
    }
    write(error, error === last ? skipped : 0);
    last = error;
    at = now;
    skipped = 0;
  };
}
