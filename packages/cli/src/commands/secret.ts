import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { once } from "../client.js";
import { printList } from "../output.js";
import { verb, type Ctx } from "./context.js";
import { formatOption } from "./flags.js";

/** `corral secret create|ls|rm`: secrets, sealed at rest, whose values are never shown. */
export function secretCommand(ctx: Ctx): Command {
  const { io, api } = ctx;
  const secretCmd = verb(ctx, "secret").description("secrets: encrypted at rest, mounted at /run/secrets, never shown");
  secretCmd
    .command("create")
    .description("create a secret, or a new version of it, from FILE or standard input (-)")
    .argument("<name>", "SERVICE.STACK.FILE")
    .argument("[file]", "a file, or - for standard input", "-")
    .action(async (name: string, file: string) => {
      const value = file === "-" ? readFileSync(0) : readFileSync(file);
      const body = { value: value.toString("base64") };
      const res = await api().post("/v1/secrets/:name", { param: { name }, json: body }, once());
      io.out(res.kind === "unchanged" ? `Secret ${name} already exists (version ${res.version}, same content)` : `${name} version ${res.version}`);
    });
  secretCmd
    .command("ls")
    .description("list secrets (never their values)")
    .addOption(formatOption())
    .action(async (opts: { format: string }) => {
      const rows = await api().get("/v1/secrets");
      return printList(io, opts.format, rows, ["NAME", "VERSIONS", "OWNER", "GROUP", "CREATED"], (r) => [r.name, String(r.versions), r.owner, r.group, r.created]);
    });
  secretCmd
    .command("rm")
    .description("remove a secret (refused while a running container uses it)")
    .argument("<name>")
    .action(async (name: string) => {
      await api().delete("/v1/secrets/:name", { param: { name } }, once());
      io.out(name);
    });
  return secretCmd;
}
