import type { Command } from "commander";
import { once } from "../client.js";
import { printList } from "../output.js";
import { verb, type Ctx } from "./context.js";
import { formatOption } from "./flags.js";

/** `corral stack ls|create`. */
export function stackCommand(ctx: Ctx): Command {
  const { io, api } = ctx;
  const stackCmd = verb(ctx, "stack").description("stacks");
  stackCmd
    .command("ls")
    .description("list stacks")
    .addOption(formatOption())
    .action(async (opts: { format: string }) => {
      const rows = await api().get("/v1/stacks");
      return printList(io, opts.format, rows, ["NAME", "STATE", "SERVICES", "REVISION", "OWNER"], (r) => [r.name, r.state, String(r.services), String(r.revision), r.owner]);
    });
  stackCmd
    .command("create")
    .description("create a stack with no services yet (then 'corral up -s NAME')")
    .requiredOption("--empty", "create it empty (the only way for now)")
    .argument("<name>")
    .action(async (name: string) => {
      await api().post("/v1/stacks", { json: { name } }, once());
      io.out(name);
    });
  return stackCmd;
}
