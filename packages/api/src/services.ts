import { Hono } from "hono";
import { z } from "zod";
import {
  applyServicePatch,
  ComposeError,
  conflict,
  currentProject,
  invalid,
  notFound,
  onlyReplicas,
  previousSpec,
  serviceNamePattern,
  serviceRows,
  servicePatchSchema,
  serviceTasks,
  sourceSchema,
  toComposeDocuments,
  type Commit,
  type Project,
  type ServicePatch,
  type Source,
  type StackState,
} from "@corral/core";
import type { Principal } from "./auth.js";
import type { UpBody } from "./bodies.js";

type Env = { Variables: { principal: Principal; credential?: boolean } };

/**
 * Swarm's service verbs (`docker service create|update|rollback|inspect|ps`)
 * on corral's stacks. Each change is a patch of one service made a new
 * revision and rolled out by the same path as `up --upgrade` (its files
 * admitted by the same policy, its history and export the same), so that
 * webhooks and chat, which change a service the same way, share it.
 */
export interface ServiceRouteDeps {
  up(stack: string, body: UpBody, principal: Principal, source: Source, extra?: { note?: string; rollbackServices?: string[] }): Promise<{ status: 200 | 202; body: Record<string, unknown> }>;
  scale(stack: string, scales: Record<string, number>, principal: Principal, source: Source): Promise<{ stack: string; op: string; version: number }>;
  /** The stack, if it exists and the principal may see it; else not found. */
  existing(stack: string, p: Principal): Promise<StackState>;
  /** The stack as it is (existing or not), when the principal may touch it; else not found. */
  touchable(stack: string, p: Principal): Promise<StackState>;
  commits(stack: string): Promise<Commit[]>;
  /** A volume corral knows by that name (a patch mounting it mounts it as external). */
  volumeExists(name: string): Promise<boolean>;
  clock(): number;
}

const rollout = {
  force: z.boolean().optional(),
  dryRun: z.boolean().optional(),
  source: sourceSchema.optional(),
};
const updateBody = z.object({ patch: servicePatchSchema, ...rollout }).strict();
const createBody = z
  .object({
    name: z.string().min(1).max(63),
    /** The stack it goes in (default: one of its own, named as the service). */
    stack: z.string().min(1).max(63).optional(),
    patch: servicePatchSchema.extend({ image: z.string().min(1).max(512) }),
    ...rollout,
  })
  .strict();
const rollbackBody = z.object({ source: sourceSchema.optional() }).strict();

/** A project's one service as compose files: what up admits. */
function asFiles(project: Project, where: string): Pick<UpBody, "files" | "rancher"> {
  const { compose, rancher } = toComposeDocuments(project);
  return { files: [{ name: where, document: compose }], rancher: { name: `${where} (rancher-compose)`, document: rancher } };
}

export function serviceRoutes(deps: ServiceRouteDeps): Hono<Env> {
  const app = new Hono<Env>();
  const serviceParam = (name: string) => {
    if (!serviceNamePattern.test(name)) throw invalid(`service: "${name.slice(0, 80)}" is not a service name (a-z, 0-9 and '-', at most 63)`, "service");
    return name;
  };
  const knownVolumes = async (patch: ServicePatch) => {
    const names = (patch.mountAdd ?? []).flatMap((m) => /(?:^|,)(?:source|src)=([^,]+)/.exec(m)?.[1] ?? []);
    const known = await Promise.all(names.map(async (n) => ((await deps.volumeExists(n)) ? n : undefined)));
    return new Set(known.filter((n): n is string => n !== undefined));
  };
  const patched = async (state: StackState, service: string, patch: ServicePatch, where: string) => {
    const result = applyServicePatch(currentProject(state), service, patch, where, await knownVolumes(patch));
    if ("issues" in result) throw new ComposeError(result.issues);
    return result.project;
  };
  const source = (given: Source | undefined, header: string | undefined): Source => given ?? (sourceSchema.safeParse(header).data as Source | undefined) ?? "api";

  /** `service create`: a service (with its stack, unless given one that exists) from an image and Docker's flags. */
  app.post("/services", async (c) => {
    const body = createBody.parse(await c.req.json().catch(() => ({})));
    const name = serviceParam(body.name);
    const stackName = body.stack ?? name;
    const principal = c.get("principal");
    const state = await deps.touchable(stackName, principal);
    if (state.exists && state.services[name]) throw conflict(`service ${stackName}/${name} already exists: 'corral service update ${stackName}/${name}' changes it`);
    const where = `service create ${stackName}/${name}`;
    const project = await patched(state.exists ? state : { ...state, services: {} }, name, body.patch, where);
    const answer = await deps.up(stackName, { ...asFiles(project, where), services: [name], ...(state.exists ? { upgrade: true } : {}), ...(body.dryRun ? { dryRun: true } : {}) }, principal, source(body.source, c.req.header("x-corral-source")));
    return c.json({ ...answer.body, service: name }, answer.status);
  });

  /** `service update STACK/SERVICE`: a new revision holding exactly the patch, rolled out as `up --upgrade`; replicas alone is a scale. */
  app.post("/stacks/:stack/services/:service/update", async (c) => {
    const body = updateBody.parse(await c.req.json().catch(() => ({})));
    const service = serviceParam(c.req.param("service"));
    const principal = c.get("principal");
    const state = await deps.existing(c.req.param("stack"), principal);
    if (!state.services[service]) throw notFound(`stack ${state.name} has no service ${service}`);
    const from = source(body.source, c.req.header("x-corral-source"));
    if (onlyReplicas(body.patch) && !body.force && !body.dryRun) return c.json({ ...(await deps.scale(state.name, { [service]: body.patch.replicas! }, principal, from)), service, scaled: true }, 202);
    const where = `service update ${state.name}/${service}`;
    const project = await patched(state, service, body.patch, where);
    const answer = await deps.up(state.name, { ...asFiles(project, where), services: [service], upgrade: true, ...(body.force ? { forceUpgrade: true } : {}), ...(body.dryRun ? { dryRun: true } : {}) }, principal, from);
    return c.json({ ...answer.body, service }, answer.status);
  });

  /**
   * `service rollback STACK/SERVICE`: an upgrade of it awaiting a verdict
   * is rolled back (its old containers run again); else its previous spec
   * (Swarm's PreviousSpec) is made a new revision and rolled out.
   */
  app.post("/stacks/:stack/services/:service/rollback", async (c) => {
    const body = rollbackBody.parse(await c.req.json().catch(() => ({})));
    const service = serviceParam(c.req.param("service"));
    const principal = c.get("principal");
    const state = await deps.existing(c.req.param("stack"), principal);
    if (!state.services[service]) throw notFound(`stack ${state.name} has no service ${service}`);
    const from = source(body.source, c.req.header("x-corral-source"));
    const pending = state.upgrades[service];
    if (pending) {
      const answer = await deps.up(state.name, { files: [], rollback: true }, principal, from, { rollbackServices: [service] });
      return c.json({ ...answer.body, service, to: pending.from }, answer.status);
    }
    const previous = previousSpec(state.revisions, state.revision, service);
    if (!previous) throw conflict(`service ${state.name}/${service} has no previous spec: it has had one since it was made (see 'corral history ${state.name}')`);
    const project = currentProject(state);
    const where = `service rollback ${state.name}/${service}`;
    const back = { ...project, services: { ...project.services, [service]: previous.spec } };
    const answer = await deps.up(state.name, { ...asFiles(back, where), services: [service], upgrade: true }, principal, from, { note: `rollback of ${service} to revision ${previous.revision}` });
    return c.json({ ...answer.body, service, to: previous.revision }, answer.status);
  });

  /** `service inspect`: Swarm's shape, with the compose entry as Spec and PreviousSpec. */
  app.get("/stacks/:stack/services/:service/spec", async (c) => {
    const service = serviceParam(c.req.param("service"));
    const state = await deps.existing(c.req.param("stack"), c.get("principal"));
    const current = state.services[service];
    if (!current) throw notFound(`stack ${state.name} has no service ${service}`);
    const entry = (spec: typeof current.spec) => (toComposeDocuments({ services: { [service]: spec }, volumes: {}, secrets: {} }).compose.services as Record<string, unknown>)[service];
    const previous = previousSpec(state.revisions, state.revision, service);
    const row = serviceRows(state).find((r) => r.name === `${state.name}/${service}`);
    const upgrade = state.upgrades[service];
    const revision = state.revisions[state.revision];
    return c.json({
      ID: row?.id,
      Name: `${state.name}/${service}`,
      Version: { Index: state.version },
      Revision: state.revision,
      UpdatedAt: revision?.at ? new Date(revision.at).toISOString() : undefined,
      Spec: entry(current.spec),
      ...(previous ? { PreviousSpec: entry(previous.spec), PreviousRevision: previous.revision } : {}),
      Endpoint: { Ports: current.spec.ports.map((p) => ({ Protocol: p.protocol, TargetPort: p.target, ...(p.published !== undefined ? { PublishedPort: p.published } : {}), PublishMode: p.mode ?? "ingress" })) },
      ...(upgrade
        ? { UpdateStatus: { State: upgrade.status === "paused" ? "paused" : "updating", Message: upgrade.reason ?? `revision ${upgrade.from} → ${upgrade.to}, awaiting confirmation` } }
        : state.op?.kind === "upgrade" || state.op?.kind === "rollback"
          ? { UpdateStatus: { State: state.op.status === "running" ? (state.op.kind === "rollback" ? "rollback_started" : "updating") : state.op.kind === "rollback" ? "rollback_completed" : state.op.status === "succeeded" ? "completed" : "paused" } }
          : {}),
      State: row?.state,
      Replicas: row?.scale,
    });
  });

  /** `service ps`: every slot's tasks, newest first, with the server's clock for their ages. */
  app.get("/stacks/:stack/services/:service/tasks", async (c) => {
    const service = serviceParam(c.req.param("service"));
    const state = await deps.existing(c.req.param("stack"), c.get("principal"));
    if (!state.services[service]) throw notFound(`stack ${state.name} has no service ${service}`);
    return c.json({ now: deps.clock(), tasks: serviceTasks(state.name, await deps.commits(state.name), service) });
  });

  return app;
}
