import type { Command } from "commander";
import { printList } from "../output.js";
import { verb, type Ctx } from "./context.js";
import { formatOption } from "./flags.js";

/** `corral user create|ls|rm|token`: users and their groups (the admin's). */
export function userCommand(ctx: Ctx): Command {
  const { io, api } = ctx;
  const userCmd = verb(ctx, "user").description("users and groups (the admin's)");
  userCmd
    .command("create")
    .description("create a user; prints the user's token, once")
    .argument("<name>")
    .option("-g, --group <group...>", "groups (the first is the primary group: new stacks and secrets belong to it)")
    .action(async (name: string, opts: { group?: string[] }) => {
      const res = await api().post("/v1/users", { json: { name, groups: opts.group ?? [] } });
      io.out(res.token);
    });
  userCmd
    .command("ls")
    .description("list users")
    .addOption(formatOption())
    .action(async (opts: { format: string }) => {
      const rows = await api().get("/v1/users");
      return printList(io, opts.format, rows, ["NAME", "GROUPS", "CREATED"], (r) => [r.name, r.groups.join(","), r.created]);
    });
  userCmd
    .command("rm")
    .description("remove a user (their token stops working)")
    .argument("<name>")
    .action(async (name: string) => {
      await api().delete("/v1/users/:name", { param: { name } });
      io.out(name);
    });
  userCmd
    .command("token")
    .description("issue a new token for a user (the old one stops working); prints it once")
    .argument("<name>")
    .action(async (name: string) => {
      const res = await api().post("/v1/users/:name/token", { param: { name } });
      io.out(res.token);
    });
  return userCmd;
}
