import type { Command } from "commander";
import { CliError, once } from "../../client.js";
import { started } from "../op.js";
import { verb, type Ctx } from "../context.js";
import { patchFlags, serviceTarget, toPatch, type PatchOptions } from "./patch.js";
import { rollout } from "./rollout.js";

/** `service update STACK/SERVICE [flags]`: a new revision holding exactly this change; --dry-run says what it would do. */
export function serviceUpdateCommand(ctx: Ctx): Command {
  const cmd = verb(ctx, "update")
    .description("change a service: a new revision holding exactly this change, rolled out with the service's update settings")
    .argument("<service>", "STACK/SERVICE");
  return patchFlags(cmd, "update").action(async (name: string, o: PatchOptions) => {
    const { io } = ctx;
    const [stack, svc] = serviceTarget(name);
    const client = ctx.api();
    const patch = toPatch(o, "update");
    if (Object.keys(patch).length === 0 && !o.force) throw new CliError(`${name}: nothing to update (give a flag such as --image, --env-add or --force)`);
    const body = { patch, source: "cli" as const, ...(o.force ? { force: true } : {}), ...(o.dryRun ? { dryRun: true } : {}) };
    const res = await client.post("/v1/stacks/:stack/services/:service/update", { param: { stack, service: svc }, json: body }, once());
    if (o.dryRun) {
      const u = "upgrade" in res ? res.upgrade : [];
      if (u.length === 0) io.out("Nothing would change");
      for (const x of u) io.out(`Would upgrade ${x.service}: ${x.keys.join(", ") || "forced"}`);
      return;
    }
    await rollout(client, io, started(res), name, o.detach as boolean | undefined);
  });
}
