import { Option, type Command } from "commander";
import { CliError, once } from "../client.js";
import { printList } from "../output.js";
import { verb, type Ctx } from "./context.js";
import { formatOption, many } from "./flags.js";

/** `corral volume create|ls|rm`: named volumes, made on the host where a container lands. */
export function volumeCommand(ctx: Ctx): Command {
  const { io, api } = ctx;
  const volumeCmd = verb(ctx, "volume").description("named volumes (SERVICE.STACK), made on the host where a container lands");
  volumeCmd
    .command("create")
    .description("create a named volume")
    .argument("<name>", "SERVICE.STACK")
    .addOption(new Option("--driver <driver>", "local, or nfs (Docker's local driver with NFS options)").choices(["local", "nfs"]).default("local"))
    .option("--opt <k=v>", "a driver option, repeatable (nfs: addr=HOST, device=:/path, o=...)", many, [] as string[])
    .action(async (name: string, opts: { driver: "local" | "nfs"; opt: string[] }) => {
      const pairs = opts.opt.map((kv) => {
        const at = kv.indexOf("=");
        if (at < 1) throw new CliError(`--opt ${kv}: expected KEY=VALUE`);
        return [kv.slice(0, at), kv.slice(at + 1)] as const;
      });
      await api().post("/v1/volumes", { json: { name, driver: opts.driver, opts: Object.fromEntries(pairs) } }, once());
      io.out(name);
    });
  volumeCmd
    .command("ls")
    .description("list volumes: inactive until a container uses one, then active")
    .option("-a, --all", "include inactive volumes")
    .addOption(formatOption())
    .action(async (opts: { all?: boolean; format: string }) => {
      const rows = (await api().get("/v1/volumes")).filter((r) => opts.all || r.state === "active");
      return printList(io, opts.format, rows, ["ID", "NAME", "STATE", "DRIVER", "DETAIL"], (r) => [r.id, r.name, r.state, r.driver, r.detail]);
    });
  volumeCmd
    .command("rm")
    .description("remove a volume and its data on every host (refused while a container uses it)")
    .argument("<name>")
    .action(async (name: string) => {
      await api().delete("/v1/volumes/:name", { param: { name } }, once());
      io.out(name);
    });
  return volumeCmd;
}
