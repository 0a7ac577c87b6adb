import type { Command } from "commander";
import { CliError, once } from "../client.js";
import { printList } from "../output.js";
import { verb, type Ctx } from "./context.js";
import { formatOption } from "./flags.js";

/** A password is at most 16 KiB (the API's bound); a byte more is refused before anything is sent. */
const PASSWORD_STDIN_LIMIT = 16 * 1024 + 2;

/** `corral registry add|ls|rm`: logins to private registries, the password from standard input only. */
export function registryCommand(ctx: Ctx): Command {
  const { io, api } = ctx;
  const registryCmd = verb(ctx, "registry").description("logins to private registries: agents pull your stacks' images with them; passwords are sealed as secrets are, never shown");
  registryCmd
    .command("add")
    .description("add (or replace) your login for a registry; the password is read from standard input, never from the command line")
    .argument("<server>", "the registry's host[:port], as images name it (SERVER/repo:tag)")
    .requiredOption("-u, --username <username>", "the registry username")
    .option("--password-stdin", "read the password from standard input (e.g. printf %s \"$PW\" | corral registry add ...)")
    .action(async (server: string, opts: { username: string; passwordStdin?: boolean }) => {
      if (!opts.passwordStdin) throw new CliError("the password comes from standard input only: pipe it in and give --password-stdin (on the command line, other users would see it)");
      // as docker login --password-stdin: one trailing newline is not part of the password
      const password = ctx.stdin(PASSWORD_STDIN_LIMIT).toString("utf8").replace(/\r?\n$/, "");
      if (password.length === 0) throw new CliError("standard input held no password");
      const body = { server, username: opts.username, password };
      const res = await api().post("/v1/registries", { json: body }, once());
      io.out(`${res.kind === "created" ? "Added" : "Replaced"} the login of ${res.owner} for ${res.server}`);
    });
  registryCmd
    .command("ls")
    .description("list the registry logins you may see (yours and your groups'), never their passwords")
    .addOption(formatOption())
    .action(async (opts: { format: string }) => {
      const rows = await api().get("/v1/registries");
      const shown = rows.map((r) => ({ server: r.server, username: r.username, owner: r.owner, group: r.group, created: r.created }));
      return printList(io, opts.format, shown, ["SERVER", "USERNAME", "OWNER", "GROUP", "CREATED"], (r) => [r.server, r.username, r.owner, r.group, r.created]);
    });
  registryCmd
    .command("rm")
    .description("remove your login for a registry (--owner: a member of your group's)")
    .argument("<server>")
    .option("--owner <user>", "whose login (default: yours)")
    .action(async (server: string, opts: { owner?: string }) => {
      await api().delete("/v1/registries/:server", { param: { server }, ...(opts.owner ? { query: { owner: opts.owner } } : {}) }, once());
      io.out(server);
    });
  return registryCmd;
}
