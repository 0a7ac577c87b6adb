import type { Command } from "commander";
import { CliError, type CallOptions } from "../client.js";
import { verb, type Ctx } from "./context.js";
import { positiveInt } from "./flags.js";
import { runOp } from "./op.js";

/** `STACK` or `STACK/SERVICE` arguments, grouped by stack (services: undefined = the whole stack). */
function byStack(targets: string[]): Map<string, string[] | undefined> {
  const out = new Map<string, string[] | undefined>();
  for (const t of targets) {
    const [stack, service, extra] = t.split("/");
    if (!stack || extra !== undefined || service === "") throw new CliError(`${t}: expected STACK or STACK/SERVICE`);
    if (!service) out.set(stack, undefined);
    else if (!out.has(stack) || out.get(stack)) out.set(stack, [...(out.get(stack) ?? []), service]);
  }
  return out;
}

/** stop, start or restart: one operation per stack named, on its services or all of them. */
function lifecycle(ctx: Ctx, name: "stop" | "start" | "restart", description: string): Command {
  const cmd = verb(ctx, name).description(description).argument("<targets...>", "STACK or STACK/SERVICE");
  if (name === "restart") {
    cmd
      .option("--batch-size <n>", "containers restarted at once", (v) => positiveInt(v, "--batch-size"))
      .option("--interval <ms>", "wait between batches, in milliseconds", (v) => positiveInt(v, "--interval"));
  }
  return cmd.action(async (targets: string[], opts: { batchSize?: number; interval?: number }) => {
    const client = ctx.api();
    const requests = [...byStack(targets)].map(([stack, services]) => {
      const body = { ...(services ? { services } : {}), ...(opts.batchSize ? { batchSize: opts.batchSize } : {}), ...(opts.interval !== undefined ? { intervalMs: opts.interval } : {}) };
      return { send: (o: CallOptions) => client.post(`/v1/stacks/:stack/${name}`, { param: { stack }, json: body }, o), stack };
    });
    await runOp(client, ctx.io, requests);
  });
}

export const stopCommand = (ctx: Ctx) => lifecycle(ctx, "stop", "stop the containers of a stack or service (state inactive); 'corral start' brings them back");
export const startCommand = (ctx: Ctx) => lifecycle(ctx, "start", "start the stopped containers of a stack or service");
export const restartCommand = (ctx: Ctx) => lifecycle(ctx, "restart", "restart the containers of a stack or service, in batches");
