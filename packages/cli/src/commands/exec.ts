import type { Command } from "commander";
import { ExitError } from "../output.js";
import { runSession } from "../sessions.js";
import { verb, type Ctx } from "./context.js";
import { positiveInt } from "./flags.js";
import { interrupted } from "./signals.js";

/** `corral exec TARGET -- CMD...`: a command in a running container; its exit status is the command's. */
export function execCommand(ctx: Ctx): Command {
  return verb(ctx, "exec")
    .description("run a command in a running container and return its output and exit code (corral exec hello/web -- ls -l)")
    .argument("<target>", "STACK/SERVICE or CONTAINER")
    .argument("<cmd...>", "the command, after --")
    .option("--slot <n>", "which container of the service (default 1)", (v) => positiveInt(v, "--slot"))
    .option("-i, --interactive", "keep stdin open: what you type or pipe goes to the command")
    .option("-t, --tty", "a terminal on the container's side (with -i: an interactive shell, exec -it ... -- sh)")
    .action(async (target: string, cmd: string[], opts: { slot?: number; interactive?: boolean; tty?: boolean }) => {
      const stdin = process.stdin;
      const raw = Boolean(opts.tty && opts.interactive && stdin.isTTY);
      const body = {
        type: "exec" as const,
        target,
        cmd,
        ...(opts.slot ? { slot: opts.slot } : {}),
        ...(opts.interactive ? { interactive: true } : {}),
        ...(opts.tty ? { tty: { rows: process.stdout.rows || 24, cols: process.stdout.columns || 80 } } : {}),
      };
      if (raw) stdin.setRawMode(true); // keys, Ctrl-C included, go to the command, as docker exec -it does
      try {
        const code = await runSession(ctx.api(), body, ctx.raw, raw ? undefined : interrupted(), opts.interactive ? stdin : undefined);
        if (code !== 0) throw new ExitError(code);
      } finally {
        if (raw) stdin.setRawMode(false);
        if (opts.interactive) stdin.destroy(); // nothing more to read: let the process end
      }
    });
}
