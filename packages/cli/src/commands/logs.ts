import type { Command } from "commander";
import { CliError } from "../client.js";
import { ExitError } from "../output.js";
import { runSession, sinceSeconds } from "../sessions.js";
import { verb, type Ctx } from "./context.js";
import { interrupted } from "./signals.js";

/** `--tail`: a whole number of lines. */
function tail(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new CliError(`--tail: expected a whole number, got "${v}"`);
  return n;
}

/** `corral logs TARGET`: a session of the containers' output; its exit status is the session's. */
export function logsCommand(ctx: Ctx): Command {
  return verb(ctx, "logs")
    .description("the output of a stack's or a service's containers (each line prefixed with its container) or of one container; stdout and stderr kept apart")
    .argument("<target>", "STACK, STACK/SERVICE or CONTAINER")
    .option("-f, --follow", "keep following until interrupted")
    .option("--tail <n>", "only the last N lines of each container", tail)
    .option("--since <t>", "only lines since: a duration back (10m, 2h), a date, or unix seconds")
    .option("-t, --timestamps", "prefix each line with its time")
    .action(async (target: string, opts: { follow?: boolean; tail?: number; since?: string; timestamps?: boolean }) => {
      const body = {
        type: "logs" as const,
        target,
        follow: opts.follow ?? false,
        timestamps: opts.timestamps ?? false,
        ...(opts.tail !== undefined ? { tail: opts.tail } : {}),
        ...(opts.since ? { since: sinceSeconds(opts.since) } : {}),
      };
      const code = await runSession(ctx.api(), body, ctx.raw, interrupted());
      if (code !== 0) throw new ExitError(code);
    });
}
