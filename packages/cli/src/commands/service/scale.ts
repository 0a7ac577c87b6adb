import type { Command } from "commander";
import { CliError, once } from "../../client.js";
import { verb, type Ctx } from "../context.js";
import { serviceTarget } from "./patch.js";
import { rollout } from "./rollout.js";

/** `service scale SERVICE=N...`: each in turn, followed to its end (the first to fail ends it). */
export function serviceScaleCommand(ctx: Ctx): Command {
  return verb(ctx, "scale")
    .description("set services' numbers of containers: SERVICE=N...")
    .argument("<scales...>", "STACK/SERVICE=N (or NAME=N)")
    .option("-d, --detach", "return at once")
    .action(async (scales: string[], o: { detach?: boolean }) => {
      const client = ctx.api();
      for (const s of scales) {
        const m = /^([^=]+)=(\d{1,5})$/.exec(s);
        if (!m) throw new CliError(`${s}: expected SERVICE=N`);
        const [stack, svc] = serviceTarget(m[1]!);
        const body = { scales: { [svc]: Number(m[2]) } };
        const res = await client.post("/v1/stacks/:stack/scale", { param: { stack }, json: body }, once());
        await rollout(client, ctx.io, res, `${m[1]} scaled to ${m[2]}`, o.detach);
      }
    });
}
