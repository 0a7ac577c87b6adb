import type { Command } from "commander";
import type { ApiClient, ApiInput } from "../client.js";

type EventsQuery = ApiInput<"/v1/events", "$get">["query"];
import { sinceSeconds, streamEvents, type StreamedEvent } from "../sessions.js";
import { verb, type Ctx } from "./context.js";
import { interrupted } from "./signals.js";

/**
 * `events -f`: a server may end a follow (on AWS, after CORRAL_MAX_FOLLOW_MS): follow on from the last event's
 * time, printing none twice (the events of a commit come again in the same order: count them per commit).
 */
async function followEvents(api: () => ApiClient, query: (since: number | undefined) => EventsQuery, since: number | undefined, print: (e: StreamedEvent) => void, signal: AbortSignal) {
  const printed = new Map<string, { n: number; at: number }>();
  while (!signal.aborted) {
    const counted = new Map<string, number>();
    await streamEvents(
      api(),
      query(since),
      (e) => {
        const key = `${e.stack}#${e.version}`;
        const n = (counted.get(key) ?? 0) + 1;
        counted.set(key, n);
        if (n <= (printed.get(key)?.n ?? 0)) return;
        since = Date.parse(e.at);
        printed.set(key, { n, at: since });
        print(e);
      },
      signal,
    );
    for (const [key, p] of printed) if (since !== undefined && p.at < since) printed.delete(key); // those never come again
    if (!signal.aborted) await new Promise((r) => setTimeout(r, 200));
  }
}

/** `corral events [STACK]`: the event log as lines; -f follows it. */
export function eventsCommand(ctx: Ctx): Command {
  return verb(ctx, "events")
    .description("the event log of a stack, or of every stack you may see, as lines; -f follows (server-sent events)")
    .argument("[stack]", "the stack (default: all)")
    .option("-f, --follow", "keep printing new events until interrupted")
    .option("--since <t>", "only events since: a duration back (10m, 2h), a date, or unix seconds")
    .action(async (stack: string | undefined, opts: { follow?: boolean; since?: string }) => {
      const print = (e: StreamedEvent) => ctx.io.out(`${e.at}  ${e.stack}  ${String(e.version).padStart(4)}  ${e.type}${e.line ? `  ${e.line.replace(/\n/g, " | ")}` : ""}`);
      const query = (since: number | undefined): EventsQuery => ({ ...(stack ? { stack } : {}), ...(opts.follow ? { follow: "1" } : {}), ...(since !== undefined ? { since: String(since) } : {}) });
      const since = opts.since ? sinceSeconds(opts.since) * 1000 : undefined;
      const signal = interrupted();
      if (!opts.follow) return streamEvents(ctx.api(), query(since), print, signal);
      await followEvents(ctx.api, query, since, print, signal);
    });
}
