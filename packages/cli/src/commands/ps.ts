import type { Command } from "commander";
import { CliError, type ApiClient, type ApiOutput } from "../client.js";
import { printList } from "../output.js";
import { verb, type Ctx } from "./context.js";
import { formatOption } from "./flags.js";

type StackListing = Pick<ApiOutput<"/v1/stacks/:stack", "$get">, "services" | "containers">;

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** `ps STACK | STACK/SERVICE`: that stack's rows (a stack you may not see is not found), or one service's. */
async function oneStack(client: ApiClient, target: string): Promise<StackListing> {
  const [stack, service, extra] = target.split("/");
  if (!stack || service === "" || extra !== undefined) throw new CliError(`${target}: expected STACK or STACK/SERVICE`);
  const s = await client.get("/v1/stacks/:stack", { param: { stack } });
  if (service === undefined) return s;
  const name = `${stack}/${service}`;
  if (!s.services.some((r) => r.name === name)) {
    throw new CliError(`stack ${stack} has no service ${service} (services: ${s.services.map((r) => r.name.slice(stack.length + 1)).join(", ") || "none"})`);
  }
  // its containers: STACK-SERVICE-N and a job's STACK-SERVICE.run-N (a service "web-2" has STACK-web-2-N, never STACK-web-N)
  const mine = new RegExp(`^${escapeRe(stack)}-${escapeRe(service)}(-\\d+|\\.run-\\d+)$`);
  return { services: s.services.filter((r) => r.name === name), containers: s.containers.filter((c) => mine.test(c.name)) };
}

const serviceColumns = ["ID", "TYPE", "NAME", "IMAGE", "STATE", "SCALE", "ENDPOINTS", "DETAIL"];
const containerColumns = ["ID", "NAME", "IMAGE", "STATE", "HOST", "IP", "DOCKER", "DETAIL"];

/** `corral ps`: services (or containers) as a table or JSON, the keys of which are the columns (DESIGN.md's contract). */
export function psCommand(ctx: Ctx): Command {
  const { io, api } = ctx;
  return verb(ctx, "ps")
    .description("list services (or containers), of every stack you may see or of one stack or service")
    .argument("[target]", "STACK or STACK/SERVICE")
    .option("-a, --all", "include stopped containers and inactive services")
    .option("-c, --containers", "list containers")
    .addOption(formatOption())
    .action(async (target: string | undefined, opts: { all?: boolean; containers?: boolean; format: string }) => {
      const client = api();
      const listed = target ? await oneStack(client, target) : undefined;
      if (opts.containers) {
        const all = listed?.containers ?? (await client.get("/v1/containers"));
        const rows = all.filter((r) => opts.all || r.state === "running" || r.state === "unknown");
        return printList(io, opts.format, rows, containerColumns, (r) => [r.id, r.name, r.image, r.state, r.host, r.ip, r.docker.slice(0, 12), r.detail]);
      }
      const rows = (listed?.services ?? (await client.get("/v1/services"))).filter((r) => opts.all || r.state !== "inactive");
      return printList(io, opts.format, rows, serviceColumns, (r) => [r.id, r.type, r.name, r.image, r.state, r.scale, r.endpoints, r.detail]);
    });
}
