import { ago, parseHostLabel } from "@corral/core/light";
import type { Command } from "commander";
import { CliError, clientConfig } from "../client.js";
import { printList } from "../output.js";
import { verb, type Ctx } from "./context.js";
import { formatOption, many } from "./flags.js";

/** Labels as `k=v,k2=v2`, by key. */
const showLabels = (labels: Record<string, string>) =>
  Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(",");

/** `host label`'s changes: KEY=VALUE to set, KEY- to remove. */
function labelChanges(changes: string[]): { set: Record<string, string>; remove: string[] } {
  const set: Record<string, string> = {};
  const remove: string[] = [];
  for (const text of changes) {
    if (!text.includes("=") && text.endsWith("-")) {
      remove.push(text.slice(0, -1));
      continue;
    }
    const parsed = parseHostLabel(text);
    if ("problem" in parsed) throw new CliError(`${parsed.problem} (or KEY- to remove one)`);
    set[parsed.key] = parsed.value;
  }
  return { set, remove };
}

const addHelp =
  "make a one-time join token for a new host (the admin's), with its labels; prints it with the command to run on the node. " +
  "For a registered host: a token to join it again (its labels and state are kept)";

/** `host add NAME`: a join token, with the command that joins the node. */
function addHost(ctx: Ctx, hostCmd: Command): void {
  hostCmd
    .command("add")
    .description(addHelp)
    .argument("<name>", "the host's name (its id)")
    .option("-l, --label <key=value>", "a host label (repeatable; io.corral.* keys are corral's)", many)
    .action(async (name: string, opts: { label?: string[] }) => {
      const labels: Record<string, string> = {};
      for (const text of opts.label ?? []) {
        const parsed = parseHostLabel(text);
        if ("problem" in parsed) throw new CliError(`--label: ${parsed.problem}`);
        labels[parsed.key] = parsed.value;
      }
      const res = await ctx.api().post("/v1/hosts/:id/join", { param: { id: name }, json: { labels } });
      ctx.io.out(`${res.rejoin ? "re-join" : "join"} token for host ${res.id} (good once, until ${res.expiresAt}):`);
      ctx.io.out(res.token);
      ctx.io.out("on the node, run:");
      ctx.io.out(`  corral agent --join ${clientConfig().url} --token ${res.token}`);
    });
}

/** `host ls`: every host, with its state, address, labels, containers and last heartbeat. */
function listHosts(ctx: Ctx, hostCmd: Command): void {
  hostCmd
    .command("ls")
    .description("list hosts: state (active, draining, inactive, or disconnected when not heard from), address, labels, containers, last heartbeat")
    .addOption(formatOption())
    .action(async (opts: { format: string }) => {
      const rows = await ctx.api().get("/v1/hosts");
      const now = Date.now();
      // a user sees id, name and state only; the admin the rest
      return printList(ctx.io, opts.format, rows, ["ID", "NAME", "STATE", "ADDRESS", "LABELS", "CONTAINERS", "LAST SEEN"], (r) => [
        r.id,
        r.name,
        r.state,
        ...("address" in r ? [r.address, showLabels(r.labels), String(r.containers), ago(Date.parse(r.lastSeen), now)] : ["", "", "", ""]),
      ]);
    });
}

/** `corral host add|ls|label|drain|activate|deactivate|rm`: the Docker hosts corral places containers on. */
export function hostCommand(ctx: Ctx): Command {
  const { io, api } = ctx;
  const hostCmd = verb(ctx, "host").description("the Docker hosts corral places containers on");
  addHost(ctx, hostCmd);
  listHosts(ctx, hostCmd);
  hostCmd
    .command("label")
    .description("set (KEY=VALUE) and remove (KEY-) labels of a host (the admin's)")
    .argument("<name>", "the host")
    .argument("<labels...>", "KEY=VALUE to set, KEY- to remove")
    .action(async (name: string, changes: string[]) => {
      const body = labelChanges(changes);
      const res = await api().post("/v1/hosts/:id/labels", { param: { id: name }, json: body });
      io.out(`${res.name}: ${showLabels(res.labels) || "no labels"}`);
    });
  const hostState = (name: string, path: "drain" | "activate" | "deactivate", description: string) =>
    hostCmd
      .command(name)
      .description(description)
      .argument("<name>", "the host")
      .action(async (host: string) => {
        const res = await api().post(`/v1/hosts/:id/${path}`, { param: { id: host } });
        io.out(`${res.name}: ${res.state}`);
      });
  hostState("drain", "drain", "drain a host (the admin's): no new container lands on it; what it runs stays until moved");
  hostState("activate", "activate", "return a draining or inactive host to active (the admin's)");
  hostState("deactivate", "deactivate", "deactivate a host (the admin's): no new container lands on it");
  hostCmd
    .command("rm")
    .description("remove a host (the admin's): refused while a container of any stack is on it; its token and queue stop working")
    .argument("<name>", "the host")
    .option("--force", "remove a draining or inactive host even with containers on it: they are forgotten here, not stopped there")
    .action(async (name: string, opts: { force?: boolean }) => {
      const res = await api().delete("/v1/hosts/:id", { param: { id: name }, ...(opts.force ? { query: { force: "1" } } : {}) });
      io.out(res.name);
    });
  return hostCmd;
}
