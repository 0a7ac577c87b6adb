import type { Command } from "commander";
import { once } from "../../client.js";
import { verb, type Ctx } from "../context.js";
import { started } from "../op.js";
import { patchFlags, toPatch, type PatchOptions } from "./patch.js";
import { rollout } from "./rollout.js";

/** `service create --name NAME IMAGE [COMMAND...]`: a service, in a stack of its own unless --stack names one. */
export function serviceCreateCommand(ctx: Ctx): Command {
  const cmd = verb(ctx, "create")
    .description("create a service (in a stack of its own, named as the service, unless --stack names another) from an image")
    .requiredOption("--name <name>", "the service's name")
    .option("--stack <stack>", "the stack it goes in (default: a stack of its own, named as the service)")
    .argument("<image>", "the image")
    .argument("[command...]", "the command and its arguments");
  return patchFlags(cmd, "create").action(async (image: string, command: string[], o: PatchOptions) => {
    const client = ctx.api();
    const patch = { ...toPatch(o, "create"), image, ...(command.length ? { args: command } : {}) };
    const body = { name: String(o.name), ...(o.stack ? { stack: String(o.stack) } : {}), patch, source: "cli" as const };
    const res = started(await client.post("/v1/services", { json: body }, once()));
    await rollout(client, ctx.io, res, res.stack === o.name ? String(o.name) : `${res.stack}/${String(o.name)}`, o.detach as boolean | undefined);
  });
}
