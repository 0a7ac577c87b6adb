import type { Command } from "commander";
import { verb, type Ctx } from "../context.js";
import { serviceTarget } from "./patch.js";

/** `service inspect STACK/SERVICE...`: the specs as JSON, as docker service inspect prints them. */
export function serviceInspectCommand(ctx: Ctx): Command {
  return verb(ctx, "inspect")
    .description("a service's spec and previous spec (JSON, as docker service inspect)")
    .argument("<service...>", "STACK/SERVICE")
    .action(async (names: string[]) => {
      const client = ctx.api();
      const out = [];
      for (const name of names) {
        const [stack, svc] = serviceTarget(name);
        out.push(await client.get("/v1/stacks/:stack/services/:service/spec", { param: { stack, service: svc } }));
      }
      ctx.io.out(JSON.stringify(out, null, 2));
    });
}
