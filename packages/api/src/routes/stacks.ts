import { Hono } from "hono";
import { createFactory } from "hono/factory";
import { stringify as toYaml } from "yaml";
import { z } from "zod";
import { containerRows, invalid, notFound, sourceSchema, toComposeDocuments } from "@corral/core";
import { primaryGroup } from "../auth.js";
import { scaleBody, upBody } from "../bodies.js";
import type { Env } from "../env.js";
import { namedHosts, newOpId, opOf, type StackOps } from "../ops/index.js";
import { body, stackParam, stackPath } from "../validate.js";

const createBody = z.object({ name: z.string() });
const lifecycleBody = z.object({
  services: z.array(z.string()).optional(),
  batchSize: z.number().int().min(1).optional(),
  intervalMs: z.number().int().min(0).optional(),
});

/** `stop`, `start` and `restart`: one handler, made for each action. */
const lifecycle = (ops: StackOps, action: "stop" | "start" | "restart") =>
  createFactory<Env>().createHandlers(stackPath(), body(lifecycleBody), async (c) => {
    const { stack } = c.req.valid("param");
    const given = c.req.valid("json");
    await ops.mayTouch(stack, c.get("principal"));
    const op = newOpId();
    const { version } = await ops.command(stack, () => ({
      type: "Lifecycle",
      stack,
      op,
      action,
      by: c.get("principal").name,
      source: "api",
      ...(given.services ? { services: given.services } : {}),
      ...(given.batchSize ? { batchSize: given.batchSize } : {}),
      ...(given.intervalMs !== undefined ? { intervalMs: given.intervalMs } : {}),
    }));
    return c.json({ stack, op, version }, 202);
  });

/** A stack's changes (`/v1/stacks`): create, up (and its render), scale, stop, start, restart, rm, and rm of one service. */
export function stackRoutes(ops: StackOps, clock: () => number) {
  return new Hono<Env>()
    .post("/", body(createBody), async (c) => {
      const stack = stackParam(c.req.valid("json").name);
      const p = c.get("principal");
      await ops.mayTouch(stack, p);
      const { version } = await ops.command(stack, () => ({ type: "Create", stack, by: p.name, group: primaryGroup(p) }));
      return c.json({ stack, version }, 201);
    })
    .post("/:stack/up", stackPath(), body(upBody), async (c) => {
      const { stack } = c.req.valid("param");
      const given = c.req.valid("json");
      const principal = c.get("principal");
      await ops.mayTouch(stack, principal);
      const header = c.req.header("x-corral-source");
      const fromHeader = header === undefined ? undefined : sourceSchema.safeParse(header);
      // it goes into the stack's history as it is: one of the known sources, never free text (a terminal escape)
      if (fromHeader && !fromHeader.success) throw invalid(`x-corral-source: must be one of ${sourceSchema.options.join(", ")}`, "x-corral-source");
      const answer = await ops.up(stack, given, principal, given.source ?? fromHeader?.data ?? "api");
      return c.json(answer.body, answer.status);
    })
    /** `up --render`: what corral understood, and every policy violation; writes nothing. */
    .post("/:stack/render", stackPath(), body(upBody), async (c) => {
      const { stack } = c.req.valid("param");
      await ops.mayTouch(stack, c.get("principal"));
      const { project, violations, warnings } = await ops.admit(stack, c.req.valid("json"), { checkSecrets: false, principal: c.get("principal") });
      const { compose, rancher } = toComposeDocuments(project);
      return c.json({ stack, files: { "docker-compose.yml": toYaml(compose), "rancher-compose.yml": toYaml(rancher) }, issues: violations?.issues ?? [], warnings });
    })
    .post("/:stack/scale", stackPath(), body(scaleBody), async (c) => {
      return c.json(await ops.scale(c.req.valid("param").stack, c.req.valid("json").scales, c.get("principal"), "api"), 202);
    })
    .post("/:stack/stop", ...lifecycle(ops, "stop"))
    .post("/:stack/start", ...lifecycle(ops, "start"))
    .post("/:stack/restart", ...lifecycle(ops, "restart"))
    .delete("/:stack", async (c) => {
      const stack = stackParam(c.req.param("stack"));
      await ops.mayTouch(stack, c.get("principal"));
      const op = newOpId();
      const { state, version, events } = await ops.command(stack, () => ({ type: "Remove", stack, op, by: c.get("principal").name, source: "api" }));
      const started = opOf(events);
      // an rm already in progress: answer with that one
      const current = started?.type === "OperationStarted" ? started.op : state.op?.id;
      return c.json({ stack, op: current, version }, 202);
    })
    .delete("/:stack/services/:service", async (c) => {
      const stack = stackParam(c.req.param("stack"));
      await ops.existing(stack, c.get("principal"));
      const op = newOpId();
      const { version } = await ops.command(stack, () => ({ type: "RemoveService", stack, op, service: c.req.param("service"), by: c.get("principal").name, source: "api", now: clock() }));
      return c.json({ stack, op, version }, 202);
    });
}

/** Containers (`/v1/containers`): every one the caller may see, and `rm --type container NAME` (it goes; its slot is made anew). */
export function containerRoutes(ops: StackOps) {
  return new Hono<Env>()
    .get("/", async (c) => {
      const names = await ops.hostNames();
      return c.json((await ops.existingStacks(c.get("principal"))).flatMap((s) => namedHosts(containerRows(s), names)));
    })
    .delete("/:name", async (c) => {
      const name = c.req.param("name");
      const t = name.includes("/") ? undefined : await ops.resolveTarget(name, c.get("principal")).catch(() => undefined);
      if (!t?.container) throw notFound(`no container named ${name}`);
      const owner = t.stack;
      const op = newOpId();
      const { version } = await ops.command(owner.name, () => ({ type: "RemoveContainer", stack: owner.name, op, container: t.container!.name, by: c.get("principal").name, source: "api" }));
      return c.json({ stack: owner.name, op, version }, 202);
    });
}
