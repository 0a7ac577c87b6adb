import type { Command } from "commander";
import { CliError, type CallOptions } from "../client.js";
import { verb, type Ctx } from "./context.js";
import { runOp } from "./op.js";

/** `corral scale STACK/SERVICE=N...`: one operation per stack, each followed to its end. */
export function scaleCommand(ctx: Ctx): Command {
  return verb(ctx, "scale")
    .description("set the number of containers of services (adds or removes slots, highest first; not a new revision)")
    .argument("<targets...>", "STACK/SERVICE=N")
    .action(async (targets: string[]) => {
      const scales = new Map<string, Record<string, number>>();
      for (const t of targets) {
        const m = /^([^/=]+)\/([^/=]+)=(\d+)$/.exec(t);
        if (!m) throw new CliError(`${t}: expected STACK/SERVICE=N`);
        scales.set(m[1]!, { ...scales.get(m[1]!), [m[2]!]: Number(m[3]) });
      }
      const client = ctx.api();
      const requests = [...scales].map(([stack, s]) => ({ send: (o: CallOptions) => client.post("/v1/stacks/:stack/scale", { param: { stack }, json: { scales: s } }, o), stack }));
      await runOp(client, ctx.io, requests);
    });
}
