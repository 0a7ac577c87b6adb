import { Option, type Command } from "commander";
import { CliError } from "../client.js";
import { printList } from "../output.js";
import { verb, type Ctx } from "./context.js";
import { formatOption, many } from "./flags.js";

type VolumeRow = { id: string; name: string; state: string; driver: string; detail: string };

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
    .action(async (name: string, opts: { driver: string; opt: string[] }) => {
      const pairs = opts.opt.map((kv) => {
        const at = kv.indexOf("=");
        if (at < 1) throw new CliError(`--opt ${kv}: expected KEY=VALUE`);
        return [kv.slice(0, at), kv.slice(at + 1)] as const;
      });
      await api().request("POST", "/v1/volumes", { name, driver: opts.driver, opts: Object.fromEntries(pairs) }, { "idempotency-key": crypto.randomUUID() });
      io.out(name);
    });
  volumeCmd
    .command("ls")
    .description("list volumes: inactive until a container uses one, then active")
    .option("-a, --all", "include inactive volumes")
    .addOption(formatOption())
    .action(async (opts: { all?: boolean; format: string }) => {
      const rows = (await api().request<VolumeRow[]>("GET", "/v1/volumes")).filter((r) => opts.all || r.state === "active");
      return printList(io, opts.format, rows, ["ID", "NAME", "STATE", "DRIVER", "DETAIL"], (r) => [r.id, r.name, r.state, r.driver, r.detail]);
    });
  volumeCmd
    .command("rm")
    .description("remove a volume and its data on every host (refused while a container uses it)")
    .argument("<name>")
    .action(async (name: string) => {
      await api().request("DELETE", `/v1/volumes/${encodeURIComponent(name)}`, undefined, { "idempotency-key": crypto.randomUUID() });
      io.out(name);
    });
  return volumeCmd;
}
