import type { Command } from "commander";
import type { ServiceRow } from "@corral/core";
import { printList } from "../../output.js";
import { verb, type Ctx } from "../context.js";
import { formatOption } from "../flags.js";

/** `service ls`: every service you may see, as docker service ls lists them. */
export function serviceLsCommand(ctx: Ctx): Command {
  return verb(ctx, "ls")
    .description("every service you may see")
    .addOption(formatOption())
    .action(async (o: { format: string }) => {
      const services = await ctx.api().get("/v1/services");
      const mode = (r: ServiceRow) => (r.scale.endsWith("/global") ? "global" : "replicated");
      const rows = services.map((r) => ({ id: r.id, name: r.name, mode: mode(r), replicas: r.scale, image: r.image, ports: r.endpoints, state: r.state }));
      await printList(ctx.io, o.format, rows, ["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS", "STATE"], (r) => [r.id, r.name, r.mode, r.replicas, r.image, r.ports, r.state]);
    });
}
