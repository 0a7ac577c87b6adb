import type { Command } from "commander";
import { once } from "../../client.js";
import { started } from "../op.js";
import { verb, type Ctx } from "../context.js";
import { serviceTarget } from "./patch.js";
import { rollout } from "./rollout.js";

/** `service rollback STACK/SERVICE`: an upgrade awaiting confirmation undone, else the previous spec again. */
export function serviceRollbackCommand(ctx: Ctx): Command {
  return verb(ctx, "rollback")
    .description("roll a service back: an upgrade awaiting confirmation to its old containers, else to its previous spec (a new revision)")
    .argument("<service>", "STACK/SERVICE")
    .option("-d, --detach", "return at once")
    .action(async (name: string, o: { detach?: boolean }) => {
      const [stack, svc] = serviceTarget(name);
      const client = ctx.api();
      const param = { stack, service: svc };
      const res = started(await client.post("/v1/stacks/:stack/services/:service/rollback", { param, json: { source: "cli" } }, once()));
      await rollout(client, ctx.io, res, name, o.detach);
    });
}
