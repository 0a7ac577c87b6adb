import { Option, type Command } from "commander";
import { CliError, once, type ApiClient, type CallOptions } from "../client.js";
import { verb, type Ctx } from "./context.js";
import { runOp } from "./op.js";

const rmTypes = ["stack", "service", "container", "secret", "volume"] as const;
type RmType = (typeof rmTypes)[number];

/**
 * What `rm NAME` removes, as Rancher's rm worked it out: STACK/SERVICE is a
 * service; otherwise whichever stack, container (STACK-SERVICE-N), secret or
 * volume of that name the caller may see; none is a stack (not found), more
 * than one an error listing the `--type` to choose.
 */
export async function rmTypeOf(client: Pick<ApiClient, "get">, name: string): Promise<RmType> {
  if (name.includes("/")) return "service";
  const absent = (e: unknown) => {
    if (e instanceof CliError && (e.status === 404 || e.status === 400)) return false;
    throw e;
  };
  const named = (rows: Array<{ name: string }>) => rows.some((r) => r.name === name);
  const [stack, container, secret, volume] = await Promise.all([
    client.get("/v1/stacks/:stack", { param: { stack: name } }).then(() => true, absent),
    /-\d+$/.test(name) ? client.get("/v1/containers").then(named) : false,
    client.get("/v1/secrets").then(named),
    client.get("/v1/volumes").then(named),
  ]);
  const is: Record<RmType, boolean> = { stack, service: false, container, secret, volume };
  const found = rmTypes.filter((t) => is[t]);
  if (found.length === 1) return found[0]!;
  // nothing of that name: a stack, as Rancher's rm took it (the API then says the stack is not found, as it says
  // of one the caller may not see)
  if (found.length === 0) return "stack";
  throw new CliError(`${name} names several things (${found.map((t) => `a ${t}`).join(", ")}); say which: ${found.map((t) => `corral rm --type ${t} ${name}`).join(" or ")}`);
}

/** The request that removes a stack, a service or a container (an operation, followed to its end). */
function rmRequest(client: ApiClient, type: "stack" | "service" | "container", name: string) {
  if (type === "container") return (o: CallOptions) => client.delete("/v1/containers/:name", { param: { name } }, o);
  if (type === "stack") return (o: CallOptions) => client.delete("/v1/stacks/:stack", { param: { stack: name } }, o);
  const [stack, service, extra] = name.split("/");
  if (!stack || !service || extra !== undefined) throw new CliError(`${name}: expected STACK/SERVICE`);
  return (o: CallOptions) => client.delete("/v1/stacks/:stack/services/:service", { param: { stack, service } }, o);
}

/** `corral rm NAME`: a stack, a service, a container, a secret or a volume, whichever NAME (or --type) says. */
export function rmCommand(ctx: Ctx): Command {
  const { io, api } = ctx;
  const typeHelp = "what NAME is (default: worked out from NAME: STACK/SERVICE is a service, else whichever of the others exists)";
  return verb(ctx, "rm")
    .description("remove a stack (and its containers), a service of a stack, one container (its slot is made anew), a secret or a volume; returns once done")
    .addOption(new Option("--type <type>", typeHelp).choices([...rmTypes]))
    .argument("<name>", "STACK, STACK/SERVICE, CONTAINER, or a secret's or volume's name")
    .action(async (name: string, opts: { type?: RmType }) => {
      const client = api();
      const type = opts.type ?? (await rmTypeOf(client, name));
      if (type === "secret" || type === "volume") {
        await client.delete(`/v1/${type}s/:name`, { param: { name } }, once());
        return io.out(name);
      }
      await runOp(client, io, [{ send: rmRequest(client, type, name), stack: name }]);
      io.out(name);
    });
}
