import { randomUUID } from "node:crypto";
import { Option, type Command } from "commander";
import { splitCommand, taskState, type ServicePatch, type ServiceRow, type TaskRow } from "@corral/core";
import { CliError, type ApiClient } from "../client.js";
import { ExitError, follow, printList, seg, type Out } from "../output.js";

/**
 * `corral service ...`: Docker Swarm's service verbs on corral's stacks. A
 * service is named STACK/SERVICE, or NAME alone for the one-service stack
 * `service create --name NAME` makes (NAME/NAME).
 */
export function addServiceCommands(program: Command, io: Out, api: () => ApiClient): void {
  const service = program.command("service").description("Docker Swarm's service verbs: create, update, rollback, inspect, ps, ls, scale, rm");
  const many = (v: string, prev: string[] = []) => [...prev, v];
  const count = (flag: string) => (v: string) => {
    if (!/^\d{1,5}$/.test(v)) throw new CliError(`${flag}: expected a whole number, got "${v}"`);
    return Number(v);
  };

  /** The flags a patch is made of, shared by create (adding) and update (adding and removing). */
  const patchFlags = (cmd: Command, verb: "create" | "update") => {
    const add = verb === "create" ? "" : "-add";
    cmd
      .option(`--env${add} <K=V>`, "set an environment variable (repeatable)", many)
      .option(`--publish${add} <[P:]T[/proto]>`, "publish a port: PUBLISHED:TARGET, TARGET (a free port from the site's range) or published=,target=,protocol=,mode= (repeatable)", many)
      .option(`--secret${add} <S>`, "mount a secret at /run/secrets: NAME or source=NAME,target=,uid=,gid=,mode= (repeatable)", many)
      .option(`--mount${add} <M>`, "mount: type=volume|bind|tmpfs,source=,target=[,readonly] (repeatable)", many)
      .option(`--constraint${add} <C>`, "placement constraint, e.g. node.labels.zone==front (repeatable)", many)
      .option(`--label${add} <K=V>`, "service label (repeatable)", many)
      .option(`--container-label${add} <K=V>`, "container label (repeatable)", many)
      .option("--cap-add <cap>", "add a capability (the site's policy says which; repeatable)", many)
      .option("--cap-drop <cap>", "drop a capability (repeatable; every service drops ALL by default)", many)
      .option("--replicas <n>", "number of containers", count("--replicas"))
      .option("--user <user>", "user[:group] the containers run as")
      .option("--health-cmd <cmd>", "health check command (run by the container's shell)")
      .option("--health-interval <d>", "time between checks (e.g. 5s)")
      .option("--health-timeout <d>", "longest a check may run")
      .option("--health-retries <n>", "failures in a row that make the container unhealthy", count("--health-retries"))
      .option("--health-start-period <d>", "time to start before failures count")
      .option("--no-healthcheck", "disable the image's health check")
      .option("--update-parallelism <n>", "containers updated at once (0: all)", count("--update-parallelism"))
      .option("--update-delay <d>", "pause between batches (e.g. 10s)")
      .addOption(new Option("--update-failure-action <a>", "what a failed update does").choices(["pause", "continue", "rollback"]))
      .addOption(new Option("--update-order <o>", "stop the old container first, or start the new one first").choices(["stop-first", "start-first"]))
      .option("--update-monitor <d>", "how long a new container must run to count as updated")
      .option("-d, --detach", "return at once instead of following the rollout to its end");
    if (verb === "update") {
      cmd
        .option("--image <image>", "the service's image")
        .option("--args <args>", "the command and its arguments, as one string split as a shell splits words")
        .option("--env-rm <K>", "remove an environment variable (repeatable)", many)
        .option("--publish-rm <[P:]T[/proto]>", "remove a published port (repeatable)", many)
        .option("--secret-rm <S>", "unmount a secret (repeatable)", many)
        .option("--mount-rm <target>", "remove the mount at this path (repeatable)", many)
        .option("--constraint-rm <C>", "remove a placement constraint (repeatable)", many)
        .option("--label-rm <K>", "remove a service label (repeatable)", many)
        .option("--container-label-rm <K>", "remove a container label (repeatable)", many)
        .option("--force", "roll the service out again even when nothing changed")
        .option("--dry-run", "print what the update would do; change nothing");
    } else {
      cmd.addOption(new Option("--mode <mode>", "replicated (a number of containers) or global (one per host)").choices(["replicated", "global"]));
    }
    return cmd;
  };

  type PatchOptions = Record<string, string | string[] | number | boolean | undefined>;
  const toPatch = (o: PatchOptions, verb: "create" | "update"): ServicePatch => {
    const add = (name: string) => (verb === "create" ? name : `${name}Add`);
    const pick = <T>(k: string) => o[k] as T | undefined;
    const patch: Record<string, unknown> = {
      envAdd: pick(add("env")),
      publishAdd: pick(add("publish")),
      secretAdd: pick(add("secret")),
      mountAdd: pick(add("mount")),
      constraintAdd: pick(add("constraint")),
      labelAdd: pick(add("label")),
      containerLabelAdd: pick(add("containerLabel")),
      envRm: pick("envRm"),
      publishRm: pick("publishRm"),
      secretRm: pick("secretRm"),
      mountRm: pick("mountRm"),
      constraintRm: pick("constraintRm"),
      labelRm: pick("labelRm"),
      containerLabelRm: pick("containerLabelRm"),
      image: pick("image"),
      replicas: pick("replicas"),
      mode: pick("mode"),
      user: pick("user"),
      healthCmd: pick("healthCmd"),
      healthInterval: pick("healthInterval"),
      healthTimeout: pick("healthTimeout"),
      healthRetries: pick("healthRetries"),
      healthStartPeriod: pick("healthStartPeriod"),
      // commander's --no-healthcheck: `healthcheck: false`
      noHealthcheck: o.healthcheck === false ? true : undefined,
      updateParallelism: pick("updateParallelism"),
      updateDelay: pick("updateDelay"),
      updateFailureAction: pick("updateFailureAction"),
      updateOrder: pick("updateOrder"),
      updateMonitor: pick("updateMonitor"),
      args: typeof o.args === "string" ? splitCommand(o.args) : undefined,
      capAdd: pick("capAdd"),
      capDrop: pick("capDrop"),
    };
    return Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as ServicePatch;
  };

  /** STACK/SERVICE, or NAME for NAME/NAME. */
  const target = (name: string): [string, string] => {
    const [stack, svc, extra] = name.split("/");
    if (!stack || svc === "" || extra !== undefined) throw new CliError(`${name}: expected STACK/SERVICE (or NAME, for the stack 'service create --name NAME' made)`);
    return [stack, svc ?? stack];
  };

  /**
   * Follow the operation, then (as `docker service update` waits for the
   * service to converge) until the upgrade is final: its old containers gone
   * once the rollout stayed well, or the upgrade paused.
   */
  const rollout = async (client: ApiClient, res: { stack: string; op?: string; version: number; service?: string }, name: string, detach: boolean | undefined) => {
    if (!res.op) return io.out(`${name}: nothing to change`);
    if (detach) return io.out(name);
    const ok = await follow(client, res.stack, res.op, res.version - 1, io);
    if (!ok) throw new ExitError(1);
    if (res.service) {
      const until = Date.now() + 10 * 60_000;
      for (;;) {
        const spec = await client.request<{ UpdateStatus?: { State: string; Message?: string } }>("GET", `/v1/stacks/${seg(res.stack)}/services/${seg(res.service)}/spec`);
        const state = spec.UpdateStatus?.State ?? "completed";
        if (state === "paused") throw new CliError(`${name}: the update is paused: ${spec.UpdateStatus?.Message ?? ""}`);
        if (state !== "updating" && state !== "rollback_started") break;
        if (Date.now() > until) throw new CliError(`${name}: still updating after 10 minutes: ${spec.UpdateStatus?.Message ?? ""}`);
        await new Promise((r) => setTimeout(r, 300));
      }
    }
    io.out(name);
  };

  patchFlags(
    service
      .command("create")
      .description("create a service (in a stack of its own, named as the service, unless --stack names another) from an image")
      .requiredOption("--name <name>", "the service's name")
      .option("--stack <stack>", "the stack it goes in (default: a stack of its own, named as the service)")
      .argument("<image>", "the image")
      .argument("[command...]", "the command and its arguments"),
    "create",
  ).action(async (image: string, command: string[], o: PatchOptions) => {
    const client = api();
    const patch = { ...toPatch(o, "create"), image, ...(command.length ? { args: command } : {}) };
    const res = await client.request<{ stack: string; op: string; version: number; service: string }>("POST", "/v1/services", { name: o.name, ...(o.stack ? { stack: o.stack } : {}), patch, source: "cli" }, { "idempotency-key": randomUUID() });
    await rollout(client, res, res.stack === o.name ? String(o.name) : `${res.stack}/${String(o.name)}`, o.detach as boolean | undefined);
  });

  patchFlags(service.command("update").description("change a service: a new revision holding exactly this change, rolled out with the service's update settings").argument("<service>", "STACK/SERVICE"), "update").action(
    async (name: string, o: PatchOptions) => {
      const [stack, svc] = target(name);
      const client = api();
      const patch = toPatch(o, "update");
      if (Object.keys(patch).length === 0 && !o.force) throw new CliError(`${name}: nothing to update (give a flag such as --image, --env-add or --force)`);
      const body = { patch, source: "cli", ...(o.force ? { force: true } : {}), ...(o.dryRun ? { dryRun: true } : {}) };
      const res = await client.request<{ stack: string; op?: string; version: number; service?: string; upgrade?: Array<{ service: string; keys: string[] }> }>("POST", `/v1/stacks/${seg(stack)}/services/${seg(svc)}/update`, body, { "idempotency-key": randomUUID() });
      if (o.dryRun) {
        const u = res.upgrade ?? [];
        if (u.length === 0) io.out("Nothing would change");
        for (const x of u) io.out(`Would upgrade ${x.service}: ${x.keys.join(", ") || "forced"}`);
        return;
      }
      await rollout(client, res, name, o.detach as boolean | undefined);
    },
  );

  service
    .command("rollback")
    .description("roll a service back: an upgrade awaiting confirmation to its old containers, else to its previous spec (a new revision)")
    .argument("<service>", "STACK/SERVICE")
    .option("-d, --detach", "return at once")
    .action(async (name: string, o: { detach?: boolean }) => {
      const [stack, svc] = target(name);
      const client = api();
      const res = await client.request<{ stack: string; op: string; version: number; service: string }>("POST", `/v1/stacks/${seg(stack)}/services/${seg(svc)}/rollback`, { source: "cli" }, { "idempotency-key": randomUUID() });
      await rollout(client, res, name, o.detach);
    });

  service
    .command("inspect")
    .description("a service's spec and previous spec (JSON, as docker service inspect)")
    .argument("<service...>", "STACK/SERVICE")
    .action(async (names: string[]) => {
      const client = api();
      const out = [];
      for (const name of names) {
        const [stack, svc] = target(name);
        out.push(await client.request("GET", `/v1/stacks/${seg(stack)}/services/${seg(svc)}/spec`));
      }
      io.out(JSON.stringify(out, null, 2));
    });

  service
    .command("ps")
    .description("a service's tasks: each slot's container, with its earlier ones beneath it")
    .argument("<service>", "STACK/SERVICE")
    .addOption(new Option("--format <format>", "output format").choices(["table", "json"]).default("table"))
    .option("--no-trunc", "do not shorten errors")
    .action(async (name: string, o: { format: string; trunc: boolean }) => {
      const [stack, svc] = target(name);
      const { now, tasks } = await api().request<{ now: number; tasks: TaskRow[] }>("GET", `/v1/stacks/${seg(stack)}/services/${seg(svc)}/tasks`);
      // JSON keys: the columns (camel case, as host ls's lastSeen); the table marks a slot's earlier tasks with \_
      const rows = tasks.map((t) => ({ id: t.id, name: t.name, image: t.image, node: t.host, desiredState: t.desired, currentState: taskState(t, now), error: t.error, ports: t.ports, first: false }));
      rows.forEach((r, i) => (r.first = i === 0 || tasks[i - 1]!.slot !== tasks[i]!.slot));
      const cut = (s: string) => (o.trunc && s.length > 40 ? `${s.slice(0, 39)}…` : s);
      printList(io, o.format, rows.map(({ first: _first, ...r }) => r), ["ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR", "PORTS"], (r) => [
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

  service
    .command("ls")
    .description("every service you may see")
    .addOption(new Option("--format <format>", "output format").choices(["table", "json"]).default("table"))
    .action(async (o: { format: string }) => {
      const rows = (await api().request<ServiceRow[]>("GET", "/v1/services")).map((r) => ({ id: r.id, name: r.name, mode: r.scale.endsWith("/global") ? "global" : "replicated", replicas: r.scale, image: r.image, ports: r.endpoints, state: r.state }));
      printList(io, o.format, rows, ["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS", "STATE"], (r) => [r.id, r.name, r.mode, r.replicas, r.image, r.ports, r.state]);
    });

  service
    .command("scale")
    .description("set services' numbers of containers: SERVICE=N...")
    .argument("<scales...>", "STACK/SERVICE=N (or NAME=N)")
    .option("-d, --detach", "return at once")
    .action(async (scales: string[], o: { detach?: boolean }) => {
      const client = api();
      for (const s of scales) {
        const m = /^([^=]+)=(\d{1,5})$/.exec(s);
        if (!m) throw new CliError(`${s}: expected SERVICE=N`);
        const [stack, svc] = target(m[1]!);
        const res = await client.request<{ stack: string; op: string; version: number }>("POST", `/v1/stacks/${seg(stack)}/scale`, { scales: { [svc]: Number(m[2]) } }, { "idempotency-key": randomUUID() });
        await rollout(client, res, `${m[1]} scaled to ${m[2]}`, o.detach);
      }
    });

  service
    .command("rm")
    .description("remove services (a service alone in its stack: the stack)")
    .argument("<services...>", "STACK/SERVICE (or NAME)")
    .action(async (names: string[]) => {
      const client = api();
      for (const name of names) {
        const [stack, svc] = target(name);
        const listed = await client.request<{ services: ServiceRow[] }>("GET", `/v1/stacks/${seg(stack)}`);
        if (!listed.services.some((r) => r.name === `${stack}/${svc}`)) throw new CliError(`stack ${stack} has no service ${svc}`, 404);
        const alone = listed.services.length === 1;
        const path = alone ? `/v1/stacks/${seg(stack)}` : `/v1/stacks/${seg(stack)}/services/${seg(svc)}`;
        const res = await client.request<{ stack: string; op: string; version: number }>("DELETE", path, undefined, { "idempotency-key": randomUUID() });
        await rollout(client, { ...res, stack }, name, false);
      }
    });
}
