import type { Command } from "commander";
import type { ServiceRow } from "@corral/core";
import { CliError } from "../../client.js";
import { seg } from "../../output.js";
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
        const listed = await client.request<{ services: ServiceRow[] }>("GET", `/v1/stacks/${seg(stack)}`);
        if (!listed.services.some((r) => r.name === `${stack}/${svc}`)) throw new CliError(`stack ${stack} has no service ${svc}`, 404);
        const alone = listed.services.length === 1;
        const path = alone ? `/v1/stacks/${seg(stack)}` : `/v1/stacks/${seg(stack)}/services/${seg(svc)}`;
        const res = await client.request<{ stack: string; op: string; version: number }>("DELETE", path, undefined, { "idempotency-key": crypto.randomUUID() });
        await rollout(client, ctx.io, { ...res, stack }, name, false);
      }
    });
}
