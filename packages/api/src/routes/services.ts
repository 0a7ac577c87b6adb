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
import type { Principal } from "../auth.js";
import type { UpBody } from "../bodies.js";
import type { Env } from "../env.js";
import type { UpAnswer, UpExtra } from "../ops/index.js";
import { body } from "../validate.js";

/**
 * Swarm's service verbs (`docker service create|update|rollback|inspect|ps`)
 * on corral's stacks. Each change is a patch of one service made a new
 * revision and rolled out by the same path as `up --upgrade` (its files
 * admitted by the same policy, its history and export the same), so that
 * webhooks and chat, which change a service the same way, share it.
 */
export interface ServiceRouteDeps {
  up(stack: string, body: UpBody, principal: Principal, source: Source, extra?: UpExtra): Promise<UpAnswer>;
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
/** hold: the upgrade waits for a confirm (`up --confirm-upgrade`) or a rollback, as `up --upgrade` does, instead of confirming by itself. */
const updateBody = z.object({ patch: servicePatchSchema, hold: z.boolean().optional(), ...rollout }).strict();
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

/** What a change to one service does, whoever asks for it (the CLI, a webhook, a chat command). */
export interface ServiceUpdate {
  patch: ServicePatch;
  force?: boolean;
  /** Pull the images again, even when the host has them (a git push: the same tag, rebuilt). */
  pull?: boolean;
  /**
   * Confirm by itself once the new containers have run this long (a
   * webhook's --confirm-after). Unset: SWARM_CONFIRM_MS, as Swarm's update is
   * done once it converged (its monitor window is the rollout's own); null:
   * the upgrade waits for a person (a webhook without --confirm-after).
   */
  autoConfirmMs?: number | null;
  dryRun?: boolean;
}

/**
 * How long after a service verb's rollout ends its old containers go (the
 * upgrade confirmed): the rollout itself waited out the monitor window
 * (update_config.monitor) without a failure, so this is only a breath in
 * which `service rollback` still finds them.
 */
export const SWARM_CONFIRM_MS = 1000;

export function serviceActions(deps: ServiceRouteDeps) {
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
  return {
    patched,
    /** `service update`: a new revision holding exactly the patch, rolled out as `up --upgrade` (replicas alone: a scale). */
    async update(state: StackState, service: string, u: ServiceUpdate, principal: Principal, from: Source) {
      if (!state.services[service]) throw notFound(`stack ${state.name} has no service ${service}`);
      if (onlyReplicas(u.patch) && !u.force && !u.dryRun && !u.pull) {
        return { status: 202 as const, body: { ...(await deps.scale(state.name, { [service]: u.patch.replicas! }, principal, from)), service, scaled: true } };
      }
      const where = `service update ${state.name}/${service}`;
      const project = await patched(state, service, u.patch, where);
      const answer = await deps.up(
        state.name,
        {
          ...asFiles(project, where),
          services: [service],
          upgrade: true,
          ...(u.force ? { forceUpgrade: true } : {}),
          ...(u.pull ? { pull: true } : {}),
          ...(u.autoConfirmMs === null ? {} : { autoConfirmMs: u.autoConfirmMs ?? SWARM_CONFIRM_MS }),
          ...(u.dryRun ? { dryRun: true } : {}),
        },
        principal,
        from,
      );
      return { status: answer.status, body: { ...answer.body, service } };
    },
  };
}

/** Swarm's UpdateStatus of a service: its upgrade's, else the stack's operation's. */
function updateStatus(state: StackState, service: string): { State: string; Message: string } {
  const upgrade = state.upgrades[service];
  if (upgrade) {
    const rolling = `revision ${upgrade.from} → ${upgrade.to}`;
    if (upgrade.status === "paused") return { State: "paused", Message: upgrade.reason ?? "paused" };
    if (upgrade.status !== "upgraded") return { State: "updating", Message: `rolling out ${rolling}` };
    if (upgrade.autoConfirmMs) return { State: "updating", Message: `${rolling}: confirms by itself once the new containers have run ${Math.round(upgrade.autoConfirmMs / 1000)} s` };
    return { State: "updating", Message: `${rolling}, awaiting confirmation ('corral up --confirm-upgrade' or 'corral service rollback')` };
  }
  if (state.op?.status === "running") return { State: state.op.kind === "rollback" ? "rollback_started" : "updating", Message: `${state.op.kind} running` };
  return { State: state.op?.kind === "rollback" ? "rollback_completed" : "completed", Message: state.op?.status === "failed" ? (state.errors[service] ?? "failed") : "" };
}

export function serviceRoutes(deps: ServiceRouteDeps) {
  const actions = serviceActions(deps);
  const patched = actions.patched;
  const serviceParam = (name: string) => {
    if (!serviceNamePattern.test(name)) throw invalid(`service: "${name.slice(0, 80)}" is not a service name (a-z, 0-9 and '-', at most 63)`, "service");
    return name;
  };
  const source = (given: Source | undefined, header: string | undefined): Source => given ?? (sourceSchema.safeParse(header).data as Source | undefined) ?? "api";

  return new Hono<Env>()
    /** `service create`: a service (with its stack, unless given one that exists) from an image and Docker's flags. */
    .post("/services", body(createBody), async (c) => {
      const given = c.req.valid("json");
      const name = serviceParam(given.name);
      const stackName = given.stack ?? name;
      const principal = c.get("principal");
      const state = await deps.touchable(stackName, principal);
      if (state.exists && state.services[name]) throw conflict(`service ${stackName}/${name} already exists: 'corral service update ${stackName}/${name}' changes it`);
      const where = `service create ${stackName}/${name}`;
      const project = await patched(state.exists ? state : { ...state, services: {} }, name, given.patch, where);
      const asUpgrade = state.exists ? { upgrade: true, autoConfirmMs: SWARM_CONFIRM_MS } : {};
      const files = { ...asFiles(project, where), services: [name], ...asUpgrade, ...(given.dryRun ? { dryRun: true } : {}) };
      const answer = await deps.up(stackName, files, principal, source(given.source, c.req.header("x-corral-source")));
      return c.json({ ...answer.body, service: name }, answer.status);
    })
    /** `service update STACK/SERVICE`: a new revision holding exactly the patch, rolled out as `up --upgrade`; replicas alone is a scale. */
    .post("/stacks/:stack/services/:service/update", body(updateBody), async (c) => {
      const given = c.req.valid("json");
      const service = serviceParam(c.req.param("service"));
      const principal = c.get("principal");
      const state = await deps.existing(c.req.param("stack"), principal);
      if (!state.services[service]) throw notFound(`stack ${state.name} has no service ${service}`);
      const { hold, ...update } = given;
      const answer = await actions.update(state, service, { ...update, ...(hold ? { autoConfirmMs: null } : {}) }, principal, source(given.source, c.req.header("x-corral-source")));
      return c.json(answer.body, answer.status);
    })
    /**
     * `service rollback STACK/SERVICE`: an upgrade of it awaiting a verdict
     * is rolled back (its old containers run again); else its previous spec
     * (Swarm's PreviousSpec) is made a new revision and rolled out.
     */
    .post("/stacks/:stack/services/:service/rollback", body(rollbackBody), async (c) => {
      const given = c.req.valid("json");
      const service = serviceParam(c.req.param("service"));
      const principal = c.get("principal");
      const state = await deps.existing(c.req.param("stack"), principal);
      if (!state.services[service]) throw notFound(`stack ${state.name} has no service ${service}`);
      const from = source(given.source, c.req.header("x-corral-source"));
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
      const files = { ...asFiles(back, where), services: [service], upgrade: true, autoConfirmMs: SWARM_CONFIRM_MS };
      const answer = await deps.up(state.name, files, principal, from, { note: `rollback of ${service} to revision ${previous.revision}` });
      return c.json({ ...answer.body, service, to: previous.revision }, answer.status);
    })
    /** `service inspect`: Swarm's shape, with the compose entry as Spec and PreviousSpec. */
    .get("/stacks/:stack/services/:service/spec", async (c) => {
      const service = serviceParam(c.req.param("service"));
      const state = await deps.existing(c.req.param("stack"), c.get("principal"));
      const current = state.services[service];
      if (!current) throw notFound(`stack ${state.name} has no service ${service}`);
      const entry = (spec: typeof current.spec) => (toComposeDocuments({ services: { [service]: spec }, volumes: {}, secrets: {} }).compose.services as Record<string, unknown>)[service];
      const previous = previousSpec(state.revisions, state.revision, service);
      const row = serviceRows(state).find((r) => r.name === `${state.name}/${service}`);
      const revision = state.revisions[state.revision];
      const published = (p: (typeof current.spec.ports)[number]) => (p.published !== undefined ? { PublishedPort: p.published } : {});
      const ports = current.spec.ports.map((p) => ({ Protocol: p.protocol, TargetPort: p.target, ...published(p), PublishMode: p.mode ?? "ingress" }));
      return c.json({
        ID: row?.id,
        Name: `${state.name}/${service}`,
        Version: { Index: state.version },
        Revision: state.revision,
        UpdatedAt: revision?.at ? new Date(revision.at).toISOString() : undefined,
        Spec: entry(current.spec),
        ...(previous ? { PreviousSpec: entry(previous.spec), PreviousRevision: previous.revision } : {}),
        Endpoint: { Ports: ports },
        UpdateStatus: updateStatus(state, service),
        State: row?.state,
        Replicas: row?.scale,
      });
    })
    /** `service ps`: every slot's tasks, newest first, with the server's clock for their ages. */
    .get("/stacks/:stack/services/:service/tasks", async (c) => {
      const service = serviceParam(c.req.param("service"));
      const state = await deps.existing(c.req.param("stack"), c.get("principal"));
      if (!state.services[service]) throw notFound(`stack ${state.name} has no service ${service}`);
      return c.json({ now: deps.clock(), tasks: serviceTasks(state.name, await deps.commits(state.name), service) });
    });
}
