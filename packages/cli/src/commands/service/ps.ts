import type { Command } from "commander";
import { taskState } from "@corral/core/light";
import { printList } from "../../output.js";
import { verb, type Ctx } from "../context.js";
import { formatOption } from "../flags.js";
import { serviceTarget } from "./patch.js";

const head = ["ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR", "PORTS"];

/** `service ps STACK/SERVICE`: the service's tasks, a slot's earlier ones beneath it. */
export function servicePsCommand(ctx: Ctx): Command {
  return verb(ctx, "ps")
    .description("a service's tasks: each slot's container, with its earlier ones beneath it")
    .argument("<service>", "STACK/SERVICE")
    .addOption(formatOption())
    .option("--no-trunc", "do not shorten errors")
    .action(async (name: string, o: { format: string; trunc: boolean }) => {
      const [stack, svc] = serviceTarget(name);
      const { now, tasks } = await ctx.api().get("/v1/stacks/:stack/services/:service/tasks", { param: { stack, service: svc } });
      // JSON keys: the columns (camel case, as host ls's lastSeen); the table marks a slot's earlier tasks with \_
      const rows = tasks.map((t) => ({
        id: t.id,
        name: t.name,
        image: t.image,
        node: t.host,
        desiredState: t.desired,
        currentState: taskState(t, now),
        error: t.error,
        ports: t.ports,
        first: false,
      }));
      rows.forEach((r, i) => (r.first = i === 0 || tasks[i - 1]!.slot !== tasks[i]!.slot));
      const cut = (s: string) => (o.trunc && s.length > 40 ? `${s.slice(0, 39)}…` : s);
      await printList(ctx.io, o.format, rows.map(({ first: _first, ...r }) => r), head, (r) => [
        r.id,
        rows.find((x) => x.id === r.id)!.first ? r.name : ` \\_ ${r.name}`,
        r.image,
        r.node,
        r.desiredState,
        r.currentState,
        cut(r.error),
        r.ports,
      ]);
    });
}
