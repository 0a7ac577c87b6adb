import { readFileSync } from "node:fs";
import type { Command } from "commander";
import type { ComposeError } from "@corral/core";
import { ApiClient, CliError, clientConfig } from "./client.js";
import { processRawOut } from "./sessions.js";
import { ExitError, printIssues, readStdin, type Out } from "./output.js";
import { usageAfterErrors, verb, type Ctx } from "./commands/context.js";
import { serverCommand } from "./commands/server.js";
import { agentCommand } from "./commands/agent.js";
import { upCommand } from "./commands/up.js";
import { secretCommand } from "./commands/secret.js";
import { registryCommand } from "./commands/registry.js";
import { exportCommand } from "./commands/export.js";
import { psCommand } from "./commands/ps.js";
import { rmCommand } from "./commands/rm.js";
import { scaleCommand } from "./commands/scale.js";
import { restartCommand, startCommand, stopCommand } from "./commands/lifecycle.js";
import { stackCommand } from "./commands/stack.js";
import { logsCommand } from "./commands/logs.js";
import { execCommand } from "./commands/exec.js";
import { inspectCommand } from "./commands/inspect.js";
import { historyCommand } from "./commands/history.js";
import { volumeCommand } from "./commands/volume.js";
import { userCommand } from "./commands/user.js";
import { serviceCommand } from "./commands/service/index.js";
import { hookCommand } from "./commands/hook.js";
import { chatCommand } from "./commands/chat.js";
import { hostCommand } from "./commands/host.js";
import { eventsCommand } from "./commands/events.js";

export { loadComposeFiles, stackNameFromDir } from "./compose.js"; // (loadComposeFiles loads the compose reader when called)
export { rmTypeOf } from "./commands/rm.js";

const defaultOut: Out = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  raw: processRawOut,
};

/** The verbs by name, in the order `corral --help` lists them (each name is its builder's: a test holds them equal). */
const verbs: Array<[string, (ctx: Ctx) => Command]> = [
  ["server", serverCommand],
  ["agent", agentCommand],
  ["up", upCommand],
  ["secret", secretCommand],
  ["registry", registryCommand],
  ["export", exportCommand],
  ["ps", psCommand],
  ["rm", rmCommand],
  ["scale", scaleCommand],
  ["stop", stopCommand],
  ["start", startCommand],
  ["restart", restartCommand],
  ["stack", stackCommand],
  ["logs", logsCommand],
  ["exec", execCommand],
  ["inspect", inspectCommand],
  ["history", historyCommand],
  ["volume", volumeCommand],
  ["user", userCommand],
  ["service", serviceCommand],
  ["hook", hookCommand],
  ["chat", chatCommand],
  ["host", hostCommand],
  ["events", eventsCommand],
];

/** The version in the CLI's package.json. */
export function cliVersion(): string {
  return (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;
}

/**
 * The command tree. Given the command line, only the verb it names is built (a verb's options are most of a
 * start's work, and `corral ps` has no use for `service create`'s); without one, or with a word that is not a
 * verb (`--help`, `help`, a typo to suggest a verb for), all of them.
 */
export function buildProgram(io: Out = defaultOut, argv?: readonly string[]): Command {
  const ctx: Ctx = { io, api: () => new ApiClient(clientConfig()), stdin: io.stdin ?? readStdin, raw: io.raw ?? processRawOut };
  const program = verb(ctx, "corral").description("Run Docker Compose stacks on a fleet of Docker hosts").version(cliVersion(), "-V, --version", "print corral's version");
  const named = verbs.find(([name]) => name === argv?.[2]);
  for (const [, command] of named ? [named] : verbs) program.addCommand(command(ctx));
  usageAfterErrors(program, "corral");
  return program;
}

/** Run the CLI; returns the exit status. */
export async function main(argv: string[], io: Out = defaultOut): Promise<number> {
  try {
    await buildProgram(io, argv).parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof ExitError) return e.code;
    const ce = e as { code?: string; exitCode?: number };
    if (typeof ce.code === "string" && ce.code.startsWith("commander.")) return ce.exitCode ?? 1;
    if (e instanceof Error && e.name === "ComposeError" && Array.isArray((e as ComposeError).issues)) {
      printIssues(io, (e as ComposeError).issues);
      return 1;
    }
    if (e instanceof CliError) {
      if (e.issues) printIssues(io, e.issues);
      else io.err(`error: ${e.message}`);
      return 1;
    }
    io.err(`error: ${e instanceof Error ? (process.env.CORRAL_DEBUG ? (e.stack ?? e.message) : e.message) : String(e)}`);
    return 1;
  }
}
