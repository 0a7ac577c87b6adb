import { Command } from "commander";
import type { ApiClient } from "../client.js";
import type { Out } from "../output.js";
import type { RawOut } from "../sessions.js";

/** What the verbs share: made once by buildProgram and given to every verb's builder. */
export interface Ctx {
  /** Where lines go: stdout and stderr. */
  io: Out;
  /** A client of the API, configured (CORRAL_URL, CORRAL_TOKEN, the server's token file) when a verb runs, not when the program is built. */
  api: () => ApiClient;
  /** Standard input, at most `limit` bytes (more: an error). */
  stdin: (limit: number) => Buffer;
  /** Bytes as they come (logs, exec), stdout and stderr kept apart. */
  raw: RawOut;
}

/**
 * A command of corral's with the settings every one of them has: its help and errors go to `ctx.io`, an exit
 * is an exception (main answers its code), and an argument it does not take is an error. A subcommand made
 * with `.command()` inherits these from its parent; one added with `.addCommand()` does not (commander copies
 * them only in `.command()`), so every command built on its own is made here.
 */
export function verb(ctx: Ctx, name: string): Command {
  return new Command(name)
    .configureOutput({ writeOut: (s) => ctx.io.out(s.trimEnd()), writeErr: (s) => ctx.io.err(s.trimEnd()) })
    .exitOverride()
    .allowExcessArguments(false);
}

/**
 * Every verb refuses what it does not take with its usage line: never an argument silently ignored. Applied to
 * the whole tree once it is built, as a usage line needs the command's arguments and its parents' names.
 */
export function usageAfterErrors(cmd: Command, path: string): void {
  cmd.showHelpAfterError(`usage: ${path} ${cmd.usage()}   (see '${path} --help')`);
  for (const sub of cmd.commands) usageAfterErrors(sub, `${path} ${sub.name()}`);
}
