import { Hono } from "hono";
import { streamSSE, type SSEStreamingApi } from "hono/streaming";
import { Progress, progressFrom, type StackEvent } from "@corral/core";
import type { ChangeFeed, EventStore } from "@corral/store";
import type { Env } from "../env.js";
import type { followLimiter } from "../limits.js";
import type { StackOps } from "../ops/index.js";
import { flagParam, intParam, query, stackNameParam, timeParam, waitParam } from "../query.js";
import { stackParam } from "../validate.js";

export interface EventDeps {
  store: Pick<EventStore, "commits" | "load">;
  feed: Pick<ChangeFeed, "wait" | "closed">;
  follows: ReturnType<typeof followLimiter>;
  clock: () => number;
  /** The longest an event stream stays open (see ApiDeps.maxFollowMs). */
  maxFollowMs?: number;
}

/** Events as the API shows them: the service spec of a step is not repeated in every line. */
function redact(event: StackEvent): StackEvent {
  if (event.type === "StepPlanned" && event.step.spec) {
    const { spec: _spec, ...step } = event.step;
    return { ...event, step };
  }
  return event;
}

type Line = { at: number; stack: string; version: number; type: string; line: string | null; event: StackEvent };

/**
 * Writes each stack's events the stream has not sent yet, in time order:
 * each stack's log is read from its start, so its lines follow as they came.
 */
function newEvents(deps: EventDeps, stream: SSEStreamingApi, stacks: () => Promise<string[]>, since: number) {
  const cursor = new Map<string, number>();
  const progress = new Map<string, Progress>();
  return async function emitNew() {
    const out: Line[] = [];
    for (const name of await stacks()) {
      const known = progress.get(name) ?? new Progress(name);
      progress.set(name, known);
      for (;;) {
        const commits = await deps.store.commits(name, cursor.get(name) ?? 0, 200);
        for (const commit of commits) {
          for (const event of commit.events) {
            const line = known.line(event) ?? null;
            if (commit.at >= since) out.push({ at: commit.at, stack: name, version: commit.version, type: event.type, line, event: redact(event) });
          }
          cursor.set(name, commit.version);
        }
        if (commits.length < 200) break;
      }
    }
    out.sort((a, b) => a.at - b.at);
    for (const e of out) await stream.writeSSE({ id: `${e.stack}:${e.version}`, event: e.type, data: JSON.stringify({ ...e, at: new Date(e.at).toISOString() }) });
  };
}

/** Stacks' event logs: one stack's page by page (a long-poll), and every visible stack's as server-sent events. */
export function eventRoutes(ops: StackOps, deps: EventDeps) {
  const { clock, follows } = deps;

  return new Hono<Env>()
    /**
     * The log of a stack after a version, with a user-facing line per event.
     * `wait=S` long-polls: the answer comes as soon as something is appended.
     */
    .get("/stacks/:stack/events", query({ after: intParam(0, Number.MAX_SAFE_INTEGER).default("0"), wait: waitParam }), async (c) => {
      const stack = stackParam(c.req.param("stack"));
      await ops.mayTouch(stack, c.get("principal"));
      const { after, wait } = c.req.valid("query");
      const deadline = clock() + wait * 1000;
      const release = wait > 0 ? follows.enter(c.get("principal").scope) : () => {};
      try {
        for (;;) {
          const commits = await deps.store.commits(stack, after, 100);
          if (commits.length > 0 || clock() >= deadline) {
            const state = await deps.store.load(stack);
            // the lines of this page follow from how things stood at `after`: the state now, less what came since
            const end = commits.at(-1)?.version ?? after;
            const since = state.version > end ? [...commits, ...(await deps.store.commits(stack, end))] : commits;
            const progress = progressFrom(state, since);
            const line = (version: number, at: number, event: StackEvent) => ({ version, at: new Date(at).toISOString(), type: event.type, line: progress.line(event) ?? null, event: redact(event) });
            return c.json({ stack, version: end, events: commits.flatMap((commit) => commit.events.map((event) => line(commit.version, commit.at, event))) });
          }
          await deps.feed.wait(stack, Math.min(1000, deadline - clock()), c.req.raw.signal);
          if (c.req.raw.signal.aborted) return c.body(null, 204);
          if (deps.feed.closed) return c.json({ error: "unavailable", message: "the server is stopping" }, 503);
        }
      } finally {
        release();
      }
    })
    /**
     * Server-sent events: the event log of one stack, or of every stack the
     * caller may see, as progress lines; with follow=1 it stays open and sends
     * what comes. since: epoch ms or an ISO time.
     */
    .get("/events", query({ stack: stackNameParam.optional(), since: timeParam.optional(), follow: flagParam.optional() }), async (c) => {
      const p = c.get("principal");
      const { stack: only, since = 0, follow = false } = c.req.valid("query");
      if (only) await ops.existing(only, p);
      const release = follow ? follows.enter(p.scope) : () => {};
      return streamSSE(c, async (stream) => {
        try {
          let aborted = false;
          stream.onAbort(() => void (aborted = true));
          const emitNew = newEvents(deps, stream, async () => (only ? [only] : (await ops.existingStacks(p)).map((s) => s.name)), since);
          await emitNew();
          const until = deps.maxFollowMs === undefined ? Infinity : clock() + deps.maxFollowMs;
          while (follow && !aborted && !deps.feed.closed && clock() < until) {
            await deps.feed.wait(only ?? "*", Math.min(15_000, until - clock()), c.req.raw.signal);
            if (aborted || deps.feed.closed) break;
            await emitNew();
            await stream.write(": alive\n\n"); // a comment: keeps proxies from closing an idle stream
          }
        } finally {
          release();
        }
      });
    });
}
