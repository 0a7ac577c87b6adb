import {
  CommitTooLargeError,
  cronSchedule,
  disconnectedContainers,
  drainingContainers,
  eachAtMost,
  restartDue,
  staleContainers,
  decideAll,
  handleCommand,
  isGlobal,
  stackPlaced,
  groupOf,
  hostState,
  lastHeard,
  splitEvents,
  toDispatch,
  type Command,
  type EventLog,
  type Handled,
  type HostInfo,
  type ControlMessage,
  type StackEvent,
  type StackState,
  type Logger,
  type Placed,
  type StepMessage,
  VersionConflictError,
} from "@corral/core";
import { faultPoint, type QueueSender, type Received } from "@corral/queue";
import type { ChangeFeed, EventStore, HostRecord, HostStore } from "@corral/store";
import { mayNeedTick, watchOf, type Watch } from "./watch.js";

/**
 * The hosts as listed up to 1 s ago do for a decision (a listing each batch
 * of messages and each tick otherwise): what this process changes of them
 * (state, labels, registrations) is seen at once, a heartbeat within 1 s.
 */
const HOSTS_AGE = { maxAgeMs: 1_000 };

export interface ControllerOptions {
  store: EventStore;
  hosts: Pick<HostStore, "list">;
  sender: Pick<QueueSender, "send">;
  clock?: () => number;
  /** A host whose heartbeat is this old is disconnected: it takes no new containers (default 30 s). */
  hostStaleMs?: number;
  /** A step planned and not reported within this is sent again. */
  resendAfterMs?: number;
  /**
   * When this control plane started, where no heartbeat could reach it
   * before (the embedded server: a restart): a host is not disconnected for
   * a silence that began before then until `hostStaleMs` after it, the time
   * its agent has to beat again. Unset (AWS: a function's cold start says
   * nothing of the hosts): only the heartbeats count.
   */
  heardSince?: number;
  /**
   * The most a commit's events may weigh, as JSON. A DynamoDB item holds
   * 400 KB: a larger decision (the plan of thousands of slots) is written in
   * several commits, each under this.
   */
  maxCommitBytes?: number;
  /**
   * How long the other stacks' containers, read for placement, are good for
   * (see #placedOf): a full sweep of the reconcile tick reads every stack
   * anyway and refreshes them; a control message later than this after the
   * last sweep reads them again (default: fullSweepMs).
   */
  placedCacheMs?: number;
  /**
   * How often the reconcile tick reads every stack (default 60 s): that finds
   * what this controller could not have seen (a lost "stack changed"
   * message, another controller's decisions). The ticks in between read only
   * the stacks whose last state this controller saw may need it (see
   * mayNeedTick), and stacks it has not seen: with 10,000 stacks at rest, a
   * tick reads one index, not 10,000 stacks.
   */
  fullSweepMs?: number;
  /**
   * Every append this process makes (the embedded server's API shares the
   * controller's store): a stack changed here is read at the next tick, its
   * "stack changed" message lost or not. Unset (AWS: the API runs in other
   * functions): the full sweeps find what a lost message would have said.
   */
  changes?: Pick<ChangeFeed, "onChange">;
  /** Run at the end of every tick (the webhooks' waiting deploys, taken up once their stacks are free). */
  afterTick?: () => Promise<void>;
  log?: Logger;
}

const MAX_CONFLICT_RETRIES = 8;

/** A write the store refuses whatever the retry (an item over its size limit): no use sending it again. */
const refusedForGood = (e: unknown) => e instanceof CommitTooLargeError || (e instanceof Error && e.name === "ValidationException");

/** Concurrent appends kept winning: the decision was made and lost MAX_CONFLICT_RETRIES times (the message is retried by the queue). */
export class ConflictRetriesExhaustedError extends Error {
  override name = "ConflictRetriesExhaustedError";
  constructor(
    readonly stackName: string,
    readonly attempts: number,
  ) {
    super(`stack ${stackName}: gave up after ${attempts} concurrent appends`);
  }
}

/** A decision that cannot be made or written, for a reason a retry would meet again: the operation in progress is abandoned with `reason`. */
class UnrecoverableDecision extends Error {
  override name = "UnrecoverableDecision";
  constructor(readonly reason: unknown) {
    super(reason instanceof Error ? reason.message : String(reason));
  }
}

/** The decider, whose refusals (and crashes) are unrecoverable: the same state and commands would meet them again. */
function decideOrGiveUp(commands: Command[], state: StackState) {
  try {
    return decideAll(commands, state);
  } catch (e) {
    throw new UnrecoverableDecision(e);
  }
}

/**
 * The controller: the decider plus a reactor. It turns control messages
 * (stack changed, step reports) and reconcile ticks into commands, appends
 * what the decider answers, and sends the steps it planned to their hosts.
 */
export class Controller {
  readonly #o: Required<Omit<ControllerOptions, "log" | "heardSince" | "afterTick" | "changes">> & {
    log: Logger | undefined;
    heardSince: number | undefined;
    afterTick: (() => Promise<void>) | undefined;
  };
  /** Every stack's containers, by stack, and when they were read (see #placedOf). */
  #placed: { at: number; byStack: Map<string, Placed[]> } | undefined;
  /** What the tick needs to know of each stack between full sweeps, from the last state of it this controller saw. */
  readonly #watch = new Map<string, Watch>();
  /** When the tick last read every stack. */
  #sweptAt: number | undefined;

  constructor(options: ControllerOptions) {
    this.#o = {
      clock: Date.now,
      hostStaleMs: 30_000,
      resendAfterMs: 30_000,
      maxCommitBytes: 300_000,
      placedCacheMs: options.fullSweepMs ?? 60_000,
      fullSweepMs: 60_000,
      ...options,
      log: options.log,
      heardSince: options.heardSince,
      afterTick: options.afterTick,
    };
    // a stack changed in this process is one this controller has not seen as it is now (see mayNeedTick)
    options.changes?.onChange((stack) => this.#watch.delete(stack));
  }

  /**
   * Every registered host as the decider sees it: its state (the admin's,
   * or disconnected when its heartbeat is `hostStaleMs` old) and labels.
   * The decider places new containers on the active ones only.
   */
  #hostInfo(hosts: HostRecord[], now: number): HostInfo[] {
    return hosts.map((h) => ({ id: h.id, name: h.name, state: hostState(h.state, lastHeard(h.lastSeen, this.#o.heardSince), now, this.#o.hostStaleMs), labels: h.labels }));
  }

  /** Handle a batch from the control queue; stacks are handled one after another, messages of a stack together. */
  async handleBatch(batch: Received<ControlMessage>[]): Promise<{ failed: string[] }> {
    const byStack = new Map<string, Received<ControlMessage>[]>();
    for (const m of batch) byStack.set(m.body.stack, [...(byStack.get(m.body.stack) ?? []), m]);
    const failed: string[] = [];
    let hosts: HostRecord[] | undefined;
    for (const [stack, messages] of byStack) {
      try {
        hosts ??= await this.#o.hosts.list(HOSTS_AGE);
        const now = this.#o.clock();
        const alive = this.#hostInfo(hosts, now);
        const placed = messages.some((m) => m.body.kind !== "health" && m.body.kind !== "exited") ? await this.#placedOf(stack, now) : [];
        const commands: Command[] = messages.map((m): Command => {
          const body = m.body;
          if (body.kind === "report") return { type: "Report", report: body, hosts: alive, now, placed };
          if (body.kind === "health") return { type: "Health", host: body.host, container: body.container, dockerId: body.dockerId, health: body.health, now };
          if (body.kind === "exited") return { type: "Exited", host: body.host, container: body.container, dockerId: body.dockerId, exitCode: body.exitCode, now };
          if (body.kind === "host-started") return { type: "Resend", now, timeoutMs: this.#o.resendAfterMs, host: body.host, hosts: alive, placed };
          return { type: "Plan", hosts: alive, now, placed };
        });
        await this.run(stack, commands, hosts);
      } catch (e) {
        this.#o.log?.error("control message failed", { stack, error: String(e) });
        failed.push(...messages.map((m) => m.messageId));
      }
    }
    return { failed };
  }

  /**
   * Decide `commands` against the current state of `stack`, append the
   * events (retrying on a concurrent append), then send the steps they
   * planned. Events that do not fit in one commit go in several, cut where
   * the decider completes a cut-short decision by itself (see splitEvents):
   * a crash between two of them leaves a plan whose rest the next decision
   * (a report, the reconcile tick) plans, each step once.
   *
   * A decision that cannot be made or written, for a reason a retry would
   * meet again, is logged and ends the operation in progress with the
   * reason (Abandon), instead of failing the message until the dead-letter
   * queue takes it while the reconcile tick tries again forever.
   */
  async run(stack: string, commands: Command[], hosts?: HostRecord[]): Promise<StackEvent[]> {
    const log: EventLog = { load: (name) => this.#o.store.load(name), append: (name, version, events, cause) => this.#append(name, version, events, cause) };
    let handled: Handled;
    try {
      handled = await handleCommand(log, stack, () => commands, { maxAttempts: MAX_CONFLICT_RETRIES, cause: "controller", decide: decideOrGiveUp });
    } catch (e) {
      if (e instanceof UnrecoverableDecision) return this.#abandon(stack, commands, e.reason);
      if (e instanceof VersionConflictError) throw new ConflictRetriesExhaustedError(stack, MAX_CONFLICT_RETRIES);
      throw e;
    }
    this.#watch.set(stack, watchOf(handled.after));
    if (handled.events.length === 0) return [];
    // what this stack now holds, for other stacks' placements: a port it let go is free at once (rm A; up B on A's port)
    this.#placed?.byStack.set(stack, stackPlaced(handled.after));
    await this.#dispatch(handled.state, handled.after, handled.events, hosts ?? (await this.#o.hosts.list(HOSTS_AGE)));
    return handled.events;
  }

  /**
   * Append a decision's events in commits of at most maxCommitBytes, one
   * after another, each conditional on its version. A write the store
   * refuses for good is unrecoverable; a conflict is the command handler's
   * to retry.
   */
  async #append(stack: string, version: number, events: StackEvent[], cause: string): Promise<{ version: number }> {
    let commits: StackEvent[][];
    try {
      commits = splitEvents(events, this.#o.maxCommitBytes);
    } catch (e) {
      throw new UnrecoverableDecision(e);
    }
    for (const [i, part] of commits.entries()) {
      try {
        await this.#o.store.append(stack, version + i, part, cause);
      } catch (e) {
        if (i > 0 && e instanceof VersionConflictError) {
          this.#o.log?.info("a decision in several commits was cut short by a concurrent append; the next decision completes it", { stack, written: i, of: commits.length });
        }
        throw refusedForGood(e) ? new UnrecoverableDecision(e) : e;
      }
    }
    return { version: version + commits.length };
  }

  /** Log a decision that cannot be made or written, and fail the operation in progress with the reason. */
  async #abandon(stack: string, commands: Command[], error: unknown): Promise<StackEvent[]> {
    const reason = `the controller could not handle ${commands.map((c) => c.type).join(", ")}: ${error instanceof Error ? error.message : String(error)}`;
    this.#o.log?.error("decision abandoned: a retry would fail the same way", {
      stack,
      commands: commands.map((c) => c.type),
      error: error instanceof Error ? (error.stack ?? error.message) : String(error),
    });
    if (commands.some((c) => c.type === "Abandon")) throw error; // failing the operation failed too: leave it to the queue's retries
    return this.run(stack, [{ type: "Abandon", reason }]);
  }

  /**
   * Send the steps this commit planned, re-sent or released (their
   * dependencies in other groups just succeeded) to their hosts' queues, in
   * planning order, one FIFO group per slot of a service.
   */
  async #dispatch(before: StackState, state: StackState, events: StackEvent[], hosts: HostRecord[]): Promise<void> {
    const byHost = new Map<string, StepMessage[]>();
    for (const step of toDispatch(before, state, events)) {
      const list = byHost.get(step.host) ?? [];
      list.push({ kind: "step", step, attempt: state.steps[step.id]?.attempt ?? 1 });
      byHost.set(step.host, list);
    }
    if (byHost.size > 0) faultPoint("after:commit");
    for (const [hostId, messages] of byHost) {
      const host = hosts.find((h) => h.id === hostId);
      if (!host) {
        this.#o.log?.error("step for an unknown host; the reconcile tick will retry", { host: hostId });
        continue;
      }
      await this.#o.sender.send(
        host.queueUrl,
        messages.map((m) => ({ body: m, group: groupOf(m.step), dedupId: `${m.step.id}#${m.attempt}`, to: hostId })),
      );
    }
  }

  /**
   * The containers of every stack but `stack`, for placement (host ports
   * and container-label rules span stacks). The cost: one stackNames() and
   * one load per stack (a snapshot read and its tail), at most once per
   * `placedCacheMs` (the tick refreshes it for free, as it loads every
   * stack), and kept current for each stack this controller decides for
   * (see run). What another controller placed within that window may be missed:
   * then the agent finds the host port in use, retries, and fails the start
   * naming it, and the next plan sees the holder.
   */
  async #placedOf(stack: string, now: number): Promise<Placed[]> {
    if (!this.#placed || now - this.#placed.at >= this.#o.placedCacheMs) {
      const byStack = new Map<string, Placed[]>();
      for (const name of await this.#o.store.stackNames()) byStack.set(name, stackPlaced(await this.#o.store.load(name)));
      this.#placed = { at: now, byStack };
    }
    return [...this.#placed.byStack].flatMap(([name, placed]) => (name === stack ? [] : placed));
  }

  /**
   * The reconcile tick: plan operations nobody planned (a lost "stack
   * changed" message) and re-send steps nobody reported (a lost step message,
   * a crash between append and send, a dead agent).
   */
  async tick(options: { resendAfterMs?: number; full?: boolean } = {}): Promise<TickOutcome> {
    const resendAfterMs = options.resendAfterMs ?? this.#o.resendAfterMs;
    const hosts = await this.#o.hosts.list(HOSTS_AGE);
    const now = this.#o.clock();
    const alive = this.#hostInfo(hosts, now);
    const names = await this.#o.store.stackNames();
    const full = options.full === true || this.#sweptAt === undefined || now - this.#sweptAt >= this.#o.fullSweepMs;
    const active = new Set(alive.filter((h) => (h.state ?? "active") === "active").map((h) => h.id));
    const states = await this.#loadAll(full ? names : names.filter((n) => mayNeedTick(this.#watch.get(n), active)));
    for (const [name, s] of states) this.#watch.set(name, watchOf(s));
    if (full) {
      // every stack's state was read: for what each needs, and for the others' placements
      this.#sweptAt = now;
      this.#placed = { at: now, byStack: new Map([...states].map(([name, s]) => [name, stackPlaced(s)])) };
      const known = new Set(names);
      for (const name of this.#watch.keys()) if (!known.has(name)) this.#watch.delete(name);
    } else {
      for (const [name, s] of states) this.#placed?.byStack.set(name, stackPlaced(s));
    }
    const byStack = this.#placed?.byStack ?? new Map<string, Placed[]>();
    let acted = 0;
    for (const [stack, state] of states) {
      try {
        const placed = () => [...byStack].flatMap(([name, p]) => (name === stack ? [] : p));
        const scheduled = Object.values(state.services).some((s) => cronSchedule(s.spec));
        // a global service follows the hosts: one that joins gets its container at the next tick
        const global = Object.entries(state.services).some(([name, s]) => isGlobal(stack, name, s.spec));
        // containers on a draining host move to active ones at the next tick
        // and so do those on a disconnected host; once it is back, what it still runs of re-placed slots goes,
        // and those that waited for it (pinned to it) no longer do
        const moving = [drainingContainers, disconnectedContainers, staleContainers].some((of) => of(state, alive).length > 0);
        const draining = moving || Object.keys(state.waiting ?? {}).length > 0;
        // a container its restart policy wants back, that its engine did not start again, is started at the next tick
        const healing = restartDue(state, alive, now).length > 0;
        if (state.op?.status === "running") {
          acted++;
          const others = placed();
          await this.run(stack, [
            { type: "Plan", hosts: alive, now, placed: others },
            { type: "Resend", now, timeoutMs: resendAfterMs, hosts: alive, placed: others },
            { type: "Tick", now, hosts: alive, placed: others },
          ], hosts);
        } else if (Object.values(state.upgrades).some((u) => u.autoConfirmMs) || scheduled || global || draining || healing) {
          acted++;
          await this.run(stack, [{ type: "Tick", now, hosts: alive, placed: placed() }], hosts);
        }
      } catch (e) {
        this.#o.log?.error("reconcile failed", { stack, error: String(e) });
      }
    }
    await this.#o.afterTick?.().catch((e: unknown) => this.#o.log?.error("after the reconcile tick", { error: String(e) }));
    return { stacks: states.size, acted, full };
  }

  /** The states of `names`, a few reads at a time; one that cannot be read is logged and left for the next tick. */
  async #loadAll(names: string[]): Promise<Map<string, StackState>> {
    const states = new Map<string, StackState>();
    await eachAtMost(names, LOAD_CONCURRENCY, async (stack) => {
      try {
        states.set(stack, await this.#o.store.load(stack));
      } catch (e) {
        this.#o.log?.error("reconcile failed", { stack, error: String(e) });
      }
    });
    // in the order the index gives them, as one reader would have: the decisions come in the same order
    return new Map(names.filter((n) => states.has(n)).map((n) => [n, states.get(n)!]));
  }
}

/** How many stacks the tick reads at once. */
const LOAD_CONCURRENCY = 16;

/** What a reconcile tick went through: the stacks it read, and those it decided for. */
export interface TickOutcome {
  stacks: number;
  acted: number;
  /** Whether it read every stack (a full sweep). */
  full: boolean;
}
