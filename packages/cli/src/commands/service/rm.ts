import type { Command } from "commander";
import { CliError, once } from "../../client.js";
import { verb, type Ctx } from "../context.js";
import { serviceTarget } from "./patch.js";
import { rollout } from "./rollout.js";

/** `service rm SERVICE...`: each removed in turn; a service alone in its stack takes the stack with it. */
export function serviceRmCommand(ctx: Ctx): Command {
  return verb(ctx, "rm")
    .description("remove services (a service alone in its stack: the stack)")
    .argument("<services...>", "STACK/SERVICE (or NAME)")
    .action(async (names: string[]) => {
      const client = ctx.api();
      for (const name of names) {
        const [stack, svc] = serviceTarget(name);
        const listed = await client.get("/v1/stacks/:stack", { param: { stack } });
        if (!listed.services.some((r) => r.name === `${stack}/${svc}`)) throw new CliError(`stack ${stack} has no service ${svc}`, 404);
        const alone = listed.services.length === 1;
        const res = alone
          ? await client.delete("/v1/stacks/:stack", { param: { stack } }, once())
          : await client.delete("/v1/stacks/:stack/services/:service", { param: { stack, service: svc } }, once());
        await rollout(client, ctx.io, { ...res, stack }, name, false);
      }
    });
}
