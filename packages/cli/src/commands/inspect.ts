import type { Command } from "commander";
import { verb, type Ctx } from "./context.js";

/** `corral inspect TARGET`: a stack, service or container as one JSON object. */
export function inspectCommand(ctx: Ctx): Command {
  return verb(ctx, "inspect")
    .description("one JSON object: state, health, revision, image, scale, containers, fqdn, publicEndpoints, the config as deployed")
    .argument("<target>", "STACK, STACK/SERVICE or CONTAINER")
    .action(async (target: string) => {
      ctx.io.out(JSON.stringify(await ctx.api().get("/v1/inspect", { query: { target } }), null, 2));
    });
}
