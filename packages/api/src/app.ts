import { randomBytes } from "node:crypto";
import { Hono, type MiddlewareHandler } from "hono";
import { streamSSE } from "hono/streaming";
import { HTTPException } from "hono/http-exception";
import { z } from "zod";
import { stringify as toYaml } from "yaml";
import {
  applySiteDefaults,
  assignPorts,
  checkPolicy,
  ComposeError,
  conflict,
  containerId,
  containerRows,
  displayName,
  currentProject,
  decide,
  defaultPolicy,
  evolve,
  invalid,
  loadProject,
  notFound,
  Progress,
  progressFrom,
  stackHistory,
  whatChanged,
  serviceRows,
  stackState,
  inspectContainer,
  inspectService,
  inspectStack,
  type InspectContext,
  stackNamePattern,
  sourceSchema,
  sessionChunkSchema,
  type Command,
  type ContainerRow,
  type HostInfo,
  hostState,
  lastHeard,
  type Logger,
  type PortPool,
  type Placed,
  previewPlacements,
  stackPlaced,
  type PortSpec,
  type Project,
  portsOfServices,
  type SitePolicy,
  type Source,
  type StackEvent,
  type StackState,
  type ContainerRecord,
  toComposeDocuments,
  volumeProblems,
} from "@corral/core";
import { CONTROL, type QueueSender } from "@corral/queue";
import { LeaseBusyError, VersionConflictError, type ChangeFeed, type LeaseStore, type RateStore, type ChatStore, type EventStore, type HookStore, type HostStore, type IdempotencyStore, type RegistryStore, type SecretStore, type SessionCursor, type SessionStore, type SubnetStore, type UserStore, type VolumeStore } from "@corral/store";
import { bearerAuth, canSee, hashToken, primaryGroup, type Principal } from "./auth.js";
import { onError } from "./errors.js";
import { accessLog } from "./access-log.js";
import { selectServices } from "./select.js";
import { holdsCredential, idempotency } from "./idempotency.js";
import { DEFAULT_HOST_STALE_MS, hostIdPattern, hostRoutes, registrationRoutes } from "./hosts.js";
import { overlayRoutes } from "./overlay.js";
import { bodyLimits, DEFAULT_MUTATIONS_PER_MINUTE, defaultBodyLimits, followLimiter, mutationLimit, type BodyLimits } from "./limits.js";
import { flagParam, intParam, jsonParam, query, queryGuard, stackNameParam, textParam, timeParam, waitParam } from "./query.js";
import { belongsToStack, mayName, mayUse, secretStack, volumeStack, type Holder } from "./names.js";
import { openapi } from "./openapi.js";
import { hostRegistryRoute, registryRoutes } from "./registries.js";
import { scaleBody, upBody, type UpBody } from "./bodies.js";
import { serviceActions, serviceRoutes, type ServiceRouteDeps } from "./services.js";
import { HOOK_DELIVERIES_PER_MINUTE, hookRoutes } from "./webhooks.js";
import { CHAT_COMMANDS_PER_MINUTE, chatRoutes } from "./chat.js";

export interface ApiDeps {
  store: EventStore;
  hosts: HostStore;
  idempotency: IdempotencyStore;
  secrets: SecretStore;
  /** Logins to private registries (`corral registry add`), sealed as secrets are. */
  registries: RegistryStore;
  users: UserStore;
  volumes: VolumeStore;
  sessions: SessionStore;
  feed: ChangeFeed;
  sender: QueueSender;
  controlQueueUrl: string;
  /** Creates (idempotently) the queue of a host and returns its URL. */
  hostQueue: (hostId: string) => Promise<string>;
  /** What an agent needs to reach SQS. */
  sqs: { endpoint?: string; region: string; socketPath?: string };
  visibilitySeconds: number;
  adminToken: string;
  /** The control plane's public key (SPKI DER, base64), handed to agents at registration. */
  controlKey: string;
  /** Keys the HMAC that fingerprints Idempotency-Key requests (at least 32 bytes; the same on every server, e.g. `masterKey.derive("idempotency")`). */
  idempotencyKey: Buffer;
  policy?: SitePolicy;
  /**
   * Serializes the decisions that give out host ports (up, scale) across
   * every API process: each reads what all stacks hold and writes one
   * stack, so two at once could give the same port. Without it, this
   * process serializes its own (enough for one `corral server`).
   */
  leases?: Pick<LeaseStore, "with">;
  /** The stack networks' subnets and the hosts' VTEPs (the cross-host overlay); absent: no overlay routes. */
  overlay?: { subnets: SubnetStore; vteps: SubnetStore };
  /** A host not heard from for this long is disconnected: nothing new is placed on it (default 30 s, as the controller's). */
  hostStaleMs?: number;
  /** When this control plane started, where no heartbeat could reach it before (see lastHeard): the embedded server's start. */
  heardSince?: number;
  /** Chatops (a Slack slash command): its signing secret and who is who; absent: no chat routes. */
  chat?: ChatStore;
  /** Runs a chat command's work after its request is answered (default: at once, in this process). */
  defer?: (job: () => Promise<void>) => void;
  /** Webhooks (`corral hook create`) and their deliveries; absent: no webhook routes. */
  hooks?: HookStore;
  /** Deletes a removed host's queue (and its dead-letter queue). */
  removeHostQueue?: (queueUrl: string) => Promise<void>;
  /** Told to agents at registration: how often they reconcile their host, and how long an orphan container stays (unset: the agents' defaults). */
  agentReconcileMs?: number;
  agentOrphanGraceMs?: number;
  /** Request bounds: body sizes (413 past them), and follows (long-polls, event streams) one token may hold at once (429 past it; default 8). */
  limits?: { body?: Partial<BodyLimits>; followsPerToken?: number; mutationsPerMinute?: number };
  /** Counts each token's mutating requests (rate limits, 429 past limits.mutationsPerMinute); absent: none. */
  rates?: Pick<RateStore, "take">;
  /**
   * The longest an event stream (`/v1/events?follow=1`) stays open; then it
   * ends and the client reconnects with `since`. Unset: until the client
   * goes. A function whose response is sent when it ends (Lambda) sets it
   * under its timeout.
   */
  maxFollowMs?: number;
  /** False while the server is still starting (its local agent not yet registered): /healthz answers 503. */
  ready?: () => boolean;
  clock?: () => number;
  log?: Logger;
}

type Env = { Variables: { principal: Principal; credential?: boolean } };

const lifecycleBody = z.object({
  services: z.array(z.string()).optional(),
  batchSize: z.number().int().min(1).optional(),
  intervalMs: z.number().int().min(0).optional(),
});
const sessionBody = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("logs"),
    target: z.string().min(1),
    follow: z.boolean().default(false),
    tail: z.number().int().min(0).optional(),
    since: z.number().int().optional(),
    timestamps: z.boolean().default(false),
  }),
  z.object({
    type: z.literal("exec"),
    target: z.string().min(1),
    cmd: z.array(z.string()).min(1),
    slot: z.number().int().min(1).optional(),
    interactive: z.boolean().default(false),
    tty: z.object({ rows: z.number().int().min(1).max(1000), cols: z.number().int().min(1).max(1000) }).optional(),
  }),
]);
const inputBody = z.object({ seq: z.number().int().min(0), data: z.string().max(200_000), eof: z.boolean().default(false) });
const chunksBody = z.object({
  // an agent posts chunks of at most 32 KiB (base64: ~43,700 characters)
  chunks: z.array(sessionChunkSchema.extend({ container: z.string().max(300), data: z.string().max(64 * 1024) })).max(1000),
  end: z.object({ exitCode: z.number().int().optional(), error: z.string().max(2000).optional() }).optional(),
});
/** A follow nobody has read for this long is let go: the agent stops at its next post. */
const ABANDONED_MS = 60_000;
/** How long a join token stays good. */
const JOIN_TOKEN_MS = 60 * 60_000;
/** A session read position: per host, the last chunk read. */
const sessionCursor = z.record(z.string().regex(hostIdPattern, "a host id"), z.number().int().min(0));

const newOpId = () => `op-${Date.now().toString(36)}${randomBytes(3).toString("hex")}`;
const secretBody = z.object({ value: z.string().base64().max(700_000) });
const volumeNamePattern = /^[a-z0-9][a-z0-9_-]*\.[a-z0-9][a-z0-9-]*$/;

function stackParam(name: string): string {
  if (!stackNamePattern.test(name)) {
    throw invalid(`invalid stack name "${name}": lower-case letters, digits and '-', starting with a letter or digit`, "stack");
  }
  return name;
}

export function createApp(deps: ApiDeps) {
  return createApi(deps).app;
}

/** The API's app, and what a control loop runs beside it: the webhooks' waiting deploys, taken up once their stacks are free. */
export function createApi(deps: ApiDeps): { app: Hono<Env>; drainHooks: () => Promise<void> } {
  const clock = deps.clock ?? Date.now;
  const staleMs = deps.hostStaleMs ?? DEFAULT_HOST_STALE_MS;
  const policy = deps.policy ?? defaultPolicy;
  const follows = followLimiter(deps.limits?.followsPerToken ?? 8);
  if (deps.idempotencyKey.length < 32) throw new Error("createApp: idempotencyKey must be at least 32 bytes");

  /**
   * Host ports other stacks hold: published in their specs, given to their
   * slots, or still held by their containers (one above the scale not yet
   * removed); and this stack's current ports.
   */
  async function portsInUse(stack: string): Promise<{ used: Map<number, StackState>; previous: Record<string, PortSpec[]>; own?: StackState }> {
    const used = new Map<number, StackState>();
    let previous: Record<string, PortSpec[]> = {};
    let own: StackState | undefined;
    for (const s of await existingStacks()) {
      if (s.name === stack) {
        previous = Object.fromEntries(Object.entries(s.services).map(([n, r]) => [n, r.spec.ports]));
        own = s;
        continue;
      }
      for (const p of portsOfServices(s.services, s.slotPorts)) used.set(p, s);
      for (const c of Object.values(s.containers)) for (const p of c.ports ?? []) if (p.published !== undefined) used.set(p.published, s);
    }
    return { used, previous, ...(own ? { own } : {}) };
  }

  /** What the decider gives slots their host ports from: the site's range, less what other stacks hold. */
  async function portPool(stack: string): Promise<PortPool> {
    const { used } = await portsInUse(stack);
    return { range: policy.portRange, taken: [...used.keys()].sort((a, b) => a - b) };
  }

  /** One port-giving decision at a time, across API processes (a lease), else within this one. */
  let portQueue: Promise<unknown> = Promise.resolve();
  async function givingPorts<T>(fn: () => Promise<T>): Promise<T> {
    if (deps.leases) {
      try {
        return await deps.leases.with("host-ports", fn);
      } catch (e) {
        if (e instanceof LeaseBusyError) throw new HTTPException(503, { message: "host ports are being given out by another request; try again" });
        throw e;
      }
    }
    const turn = portQueue.then(fn, fn);
    portQueue = turn.catch(() => undefined);
    return turn;
  }

  /** The other stacks' containers, for placement (ports and container-label rules span stacks): one load per stack. */
  async function othersPlaced(stack: string): Promise<Placed[]> {
    return (await existingStacks()).flatMap((s) => (s.name === stack ? [] : stackPlaced(s)));
  }

  /** Every registered host with its state and labels: the decider places new containers on the active ones. */
  async function liveHosts(): Promise<HostInfo[]> {
    const now = clock();
    return (await deps.hosts.list()).map((h) => ({ id: h.id, name: h.name, state: hostState(h.state, lastHeard(h.lastSeen, deps.heardSince), now, staleMs), labels: h.labels }));
  }

  /** Host id → name, for listings: a container's HOST is its host's name. */
  async function hostNames(): Promise<Map<string, { name: string; state: string }>> {
    // the same states placement sees (a control plane just started counts its hosts as heard since then)
    return new Map((await liveHosts()).map((h) => [h.id, { name: h.name ?? h.id, state: h.state ?? "active" }]));
  }
  // a container on a disconnected host may run or not: nobody can tell until the host is back
  const namedHosts = (rows: ContainerRow[], names: Map<string, { name: string; state: string }>) =>
    rows.map((r) => {
      const h = names.get(r.host);
      if (h?.state !== "disconnected") return { ...r, host: h?.name ?? r.host };
      const lost = `host ${h.name} is disconnected`;
      return { ...r, host: h.name, state: r.state === "running" ? "unknown" : r.state, detail: r.detail ? `${lost}; ${r.detail}` : lost };
    });

  /** The request's files as one project under the site policy: every violation at once, or the project with its ports assigned. */
  async function admit(
    stack: string,
    body: UpBody,
    { checkSecrets, principal }: { checkSecrets: boolean; principal: Principal }, // render leaves secrets to the CLI, which creates them next
  ): Promise<{ project: Project; violations: ComposeError | undefined; secretVersions: Record<string, number>; autoConfirmMs?: number }> {
    const loaded = loadProject({ files: body.files, ...(body.rancher ? { rancher: body.rancher } : {}) });
    const ctx = { stack, file: loaded.file, origins: loaded.origins, user: principal.name };
    const { used, previous, own } = await portsInUse(stack);
    const assigned = { ...assignPorts(loaded.project, policy, new Set(used.keys()), previous, ctx) };
    const issues = [...checkPolicy(assigned.project, policy, ctx), ...assigned.issues];
    // this stack's own slots' ports, by the service they belong to: another service may not write one as its host port
    const slotHolders = new Map<number, string>();
    for (const [service, slots] of Object.entries(own?.slotPorts ?? {})) {
      for (const [slot, ports] of Object.entries(slots)) if (Number(slot) <= (own?.services[service]?.spec.scale ?? 0)) for (const p of Object.values(ports)) slotHolders.set(p, service);
    }
    for (const [name, s] of Object.entries(loaded.project.services)) {
      s.ports.forEach((p, i) => {
        const holder = p.published !== undefined ? used.get(p.published) : undefined;
        const slotOf = p.published !== undefined ? slotHolders.get(p.published) : undefined;
        const at = { file: loaded.origins?.[name]?.ports ?? loaded.file, path: `services.${name}.ports.${i}` };
        if (slotOf !== undefined && slotOf !== name) issues.push({ ...at, reason: `host port ${p.published} is given to a container of ${slotOf} in this stack` });
        if (!holder) return;
        const who = canSee(principal, holder.owner, holder.group) ? `stack ${holder.name}` : "another group's stack";
        issues.push({ ...at, reason: `host port ${p.published} is already used by ${who}` });
      });
    }
    const volumes: Project["volumes"] = { ...assigned.project.volumes };
    for (const [key, volume] of Object.entries(assigned.project.volumes)) {
      if (!volume.external) continue;
      const name = volume.name ?? key;
      const found = await deps.volumes.get(name);
      if (!found || !mayUse(principal, found, await holderOf(volumeStack(name)))) {
        issues.push({ file: loaded.file, path: `volumes.${key}`, reason: `volume ${name} does not exist: create it with 'corral volume create ${name}'` });
        continue;
      }
      // made where the container lands, with the driver it was declared with (and still allowed)
      for (const p of volumeProblems(found.driver, found.opts, policy)) issues.push({ file: loaded.file, path: `volumes.${key}`, reason: `volume ${name}: ${p.key.replace(/^driver_opts/, "opts")}: ${p.reason}` });
      volumes[key] = { ...volume, name, driver: found.driver, driver_opts: found.opts, labels: { ...volume.labels, "io.corral.volume": name } };
    }
    assigned.project = applySiteDefaults({ ...assigned.project, volumes }, policy);
    const secretVersions: Record<string, number> = {};
    for (const [key, secret] of Object.entries(assigned.project.secrets)) {
      const name = secret.name ?? key;
      const found = await deps.secrets.info(name);
      const info = found && mayUse(principal, found, await holderOf(name.split(".")[1] ?? "")) ? found : undefined; // another group's secret is not there
      if (info) secretVersions[name] = info.versions;
      else if (checkSecrets) issues.push({ file: loaded.file, path: `secrets.${key}`, reason: `secret ${name} does not exist: create it with 'corral secret create ${name} FILE'` });
    }
    return {
      project: assigned.project,
      violations: issues.length > 0 ? new ComposeError(issues) : undefined,
      secretVersions,
      ...(loaded.autoConfirmMs ? { autoConfirmMs: loaded.autoConfirmMs } : {}),
    };
  }
  const app = new Hono<Env>();
  app.onError(onError(deps.log));
  if (deps.log) {
    const log = deps.log;
    app.use(accessLog(log));
  }
  // a path no route answers: for an API client, which request it was (the CLI never sends one, and says so in its words)
  app.notFound((c) => c.json({ error: "no_route", message: `corral's API has no ${c.req.method} ${c.req.path} (GET /openapi.json lists the routes)` }, 404));

  app.get("/healthz", (c) => (deps.ready && !deps.ready() ? c.json({ ok: false, reason: "starting" }, 503) : c.json({ ok: true })));
  app.get("/openapi.json", (c) => c.json(openapi));

  // registration authenticates on its own terms (the admin, a join token, the host's current token)
  app.route("/v1/hosts", registrationRoutes({ ...deps, hostStaleMs: staleMs, clock, bindRoots: policy.bindRoots, portRange: policy.portRange }));
  /** The user a hook or a chat account acts as, with their groups now; none: the user is gone. */
  const principalOf = async (name: string): Promise<Principal | undefined> => {
    if (name === "admin") return { name, admin: true, groups: [], scope: "as:admin" };
    const u = await deps.users.get(name);
    return u ? { name, admin: false, groups: u.groups, scope: `as:${name}` } : undefined;
  };
  // webhooks: their deliveries authenticate with the hook's signature (or the URL's secret), not a bearer token
  const actions = () => serviceActions(serviceDeps);
  const hooks = deps.hooks
    ? hookRoutes({
        hooks: deps.hooks,
        load: (stack) => deps.store.load(stackParam(stack)),
        principalOf,
        update: (state, service, u, p, from) => actions().update(state, service, u, p, from),
        clock,
        ...(deps.rates ? { take: (key: string) => deps.rates!.take(key, HOOK_DELIVERIES_PER_MINUTE, 60_000) } : {}),
        ...(deps.log ? { log: deps.log } : {}),
      })
    : undefined;
  if (hooks) app.route("/hooks", hooks.receive);
  // chat commands: Slack's signature; then the routes as the mapped user (asPrincipal, below)
  const chat = deps.chat
    ? chatRoutes({
        chat: deps.chat,
        principalOf,
        call: async (principal, method, path, body) => {
          const res = await asPrincipal.request(path, { method, ...(body !== undefined ? { body: JSON.stringify(body), headers: { "content-type": "application/json" } } : {}) }, { principal });
          return { status: res.status, body: (await res.json().catch(() => ({}))) as unknown };
        },
        defer: deps.defer ?? ((job) => void job().catch((e: unknown) => deps.log?.error("chat command", { error: String(e) }))),
        clock,
        ...(deps.rates ? { take: (key: string) => deps.rates!.take(key, CHAT_COMMANDS_PER_MINUTE, 60_000) } : {}),
        ...(deps.log ? { log: deps.log } : {}),
      })
    : undefined;
  if (chat) app.route("/chat", chat.receive);
  const v1 = new Hono<Env>();
  v1.use("*", bearerAuth({ adminToken: deps.adminToken, hostTokenHash: (id) => deps.hosts.tokenHash(id), user: (name) => deps.users.get(name) }));
  // a host's own token opens only that host's routes (heartbeat, secrets for containers it creates);
  // users and host registration are the admin's
  const scope: MiddlewareHandler<Env> = async function scope(c, next) {
    const p = c.get("principal");
    if (p.admin) return next();
    const path = c.req.path;
    if (p.hostId) {
      if (path.startsWith(`/v1/hosts/${p.hostId}/`) && !path.endsWith("/join")) return next();
      throw new HTTPException(403, { message: "a host token opens only its own host's routes" });
    }
    if (path.startsWith("/v1/users") || /^\/v1\/hosts\/[^/]+\//.test(path)) throw new HTTPException(403, { message: "this route is the admin's" });
    return next();
  };
  v1.use("*", scope);
  v1.use("*", bodyLimits({ ...defaultBodyLimits, ...deps.limits?.body }));
  v1.use("*", queryGuard());
  // a token's changes per minute, counted across every API process; an idempotent replay counts too (it is a request)
  if (deps.rates) {
    const rates = deps.rates;
    const perMinute = deps.limits?.mutationsPerMinute ?? DEFAULT_MUTATIONS_PER_MINUTE;
    v1.use("*", mutationLimit((scope) => rates.take(scope, perMinute, 60_000)));
  }
  v1.use("*", idempotency({ store: deps.idempotency, key: deps.idempotencyKey }));
  // the routes, apart from how a caller authenticates: /v1 (bearer tokens) and chat commands (a mapped chat user) both reach them
  const routes = new Hono<Env>();

  /** Decide and append, retrying when the controller appended meanwhile; then wake the controller. */
  async function command(stack: string, make: (state: StackState) => Command) {
    for (let attempt = 0; ; attempt++) {
      const state = await deps.store.load(stack);
      const cmd = make(state);
      const events = decide(cmd, state);
      if (events.length === 0) return { state, version: state.version, events };
      try {
        const commit = await deps.store.append(stack, state.version, events, cmd.type);
        await deps.sender.send(deps.controlQueueUrl, [
          { body: { kind: "stack-changed", stack, version: commit.version }, group: stack, dedupId: `${stack}#${commit.version}`, to: CONTROL },
        ]);
        return { state, version: commit.version, events };
      } catch (e) {
        if (!(e instanceof VersionConflictError) || attempt >= 5) throw e;
      }
    }
  }

  const opOf = (events: StackEvent[]) => events.find((e) => e.type === "OperationStarted");

  routes.post("/stacks/:stack/up", async (c) => {
    const stack = stackParam(c.req.param("stack"));
    const body = upBody.parse(await c.req.json().catch(() => ({})));
    const principal = c.get("principal");
    await mayTouch(stack, principal);
    const header = c.req.header("x-corral-source");
    const fromHeader = header === undefined ? undefined : sourceSchema.safeParse(header);
    // it goes into the stack's history as it is: one of the known sources, never free text (a terminal escape)
    if (fromHeader && !fromHeader.success) throw invalid(`x-corral-source: must be one of ${sourceSchema.options.join(", ")}`, "x-corral-source");
    const answer = await up(stack, body, principal, body.source ?? fromHeader?.data ?? "api");
    return c.json(answer.body, answer.status);
  });

  /**
   * `up` (and every verb that makes a revision from a project: service
   * update, service rollback, webhooks): admit the files, decide, append,
   * wake the controller; with dryRun, the plan only.
   */
  async function up(
    stack: string,
    body: UpBody,
    principal: Principal,
    source: Source,
    extra: { note?: string; rollbackServices?: string[] } = {},
  ): Promise<{ status: 200 | 202; body: Record<string, unknown> }> {
    // --confirm-upgrade and --rollback need no file: they act on what runs
    const noFiles = body.files.length === 0;
    if (noFiles && !body.confirmUpgrade && !body.rollback) throw invalid("files: at least one compose file is required", "files");
    if (noFiles && body.services?.length) throw invalid("services: up SERVICE... brings services up from the compose files: send the files", "services");
    const admitted = noFiles ? undefined : await admit(stack, body, { checkSecrets: true, principal });
    if (admitted?.violations) throw admitted.violations;
    let fileServices = admitted?.project.services;
    if (fileServices && body.services?.length) {
      const selected = selectServices(fileServices, body.services, body.files.map((f) => f.name).join(" + "));
      if (selected.issues.length > 0) throw new ComposeError(selected.issues);
      const all = fileServices;
      fileServices = Object.fromEntries(selected.services.map((n) => [n, all[n]!]));
    }
    const op = newOpId();
    const make = (state: StackState, ports: PortPool): Command => ({
      type: "Up",
      ports,
      stack,
      op,
      services: fileServices ?? (body.toRevision ? {} : Object.fromEntries(Object.entries(state.services).map(([n, r]) => [n, r.spec]))),
      ...(admitted ? { volumes: admitted.project.volumes, secrets: admitted.project.secrets, secretVersions: admitted.secretVersions } : {}),
      by: principal.name,
      group: primaryGroup(principal),
      source,
      now: clock(),
      ...(body.upgrade ? { upgrade: true } : {}),
      ...(body.forceUpgrade ? { force: true } : {}),
      ...(body.confirmUpgrade ? { confirm: true } : {}),
      ...(body.rollback ? { rollback: true } : {}),
      ...(body.toRevision !== undefined ? { toRevision: body.toRevision } : {}),
      ...(body.batchSize ? { batchSize: body.batchSize } : {}),
      ...(body.intervalMs !== undefined ? { intervalMs: body.intervalMs } : {}),
      ...(body.startFirst ? { startFirst: true } : {}),
      ...(body.pull ? { pull: true } : {}),
      ...((body.autoConfirmMs ?? admitted?.autoConfirmMs) ? { autoConfirmMs: body.autoConfirmMs ?? admitted?.autoConfirmMs } : {}),
      ...(extra.note ? { note: extra.note } : {}),
      ...(extra.rollbackServices ? { rollbackServices: extra.rollbackServices } : {}),
    });
    if (body.dryRun) {
      // decide, and write nothing: which services would be upgraded, and why
      const state = await deps.store.load(stack);
      const events = decide(make(state, await portPool(stack)), state);
      const after = events.reduce(evolve, state);
      // where the new containers would land, and why: the operation planned on the live hosts with a perfect agent
      const preview = after.op?.status === "running" ? previewPlacements(after, await liveHosts(), await othersPlaced(stack), clock()) : { placements: [] };
      const upgrade = events.find((e) => e.type === "UpgradeStarted");
      const services = upgrade?.type === "UpgradeStarted" ? upgrade.services : [];
      const revision = events.find((e) => e.type === "RevisionCommitted");
      return {
        status: 200,
        body: {
          stack,
          dryRun: true,
          kind: events.find((e) => e.type === "OperationStarted")?.type === "OperationStarted" ? (events.find((e) => e.type === "OperationStarted") as { kind: string }).kind : "none",
          revision: revision?.type === "RevisionCommitted" ? revision.revision : state.revision,
          upgrade: services.map((name) => ({ service: name, keys: whatChanged(state.services[name], after.services[name], body.forceUpgrade) })),
          create: revision?.type === "RevisionCommitted" ? revision.changed.filter((n) => !services.includes(n) && !state.services[n]) : [],
          placements: preview.placements.map((p) => ({ container: p.container, service: p.service, host: p.host, why: p.why })),
          ...(preview.failed ? { failed: preview.failed } : {}),
        },
      };
    }
    // the ports other stacks hold are read and this stack's slots given theirs under one lease: no port is given twice
    const { version, events } = await givingPorts(async () => {
      const ports = await portPool(stack);
      return command(stack, (state) => make(state, ports));
    });
    const started = opOf(events);
    return { status: 202, body: { stack, op: started?.type === "OperationStarted" ? started.op : op, version, revision: started?.type === "OperationStarted" ? started.revision : undefined } };
  }

  /**
   * History: what changed what runs, per life of the stack (revisions count
   * from 1 again in a stack made anew after a removal): revisions committed
   * and rollbacks, with when, who, from where, which services and keys.
   * The current (or last) life; all=1: every earlier one before it.
   */
  routes.get("/stacks/:stack/history", query({ all: flagParam.optional() }), async (c) => {
    const s = await deps.store.load(stackParam(c.req.param("stack")));
    const lives = stackHistory(s, { all: c.req.valid("query").all ?? false });
    if (lives.length === 0 || !canSee(c.get("principal"), s.owner, s.group)) throw notFound(`stack ${s.name} not found`);
    return c.json({ stack: s.name, lives });
  });

  /** `up --render`: what corral understood, and every policy violation; writes nothing. */
  routes.post("/stacks/:stack/render", async (c) => {
    const stack = stackParam(c.req.param("stack"));
    const body = upBody.parse(await c.req.json().catch(() => ({})));
    await mayTouch(stack, c.get("principal"));
    const { project, violations } = await admit(stack, body, { checkSecrets: false, principal: c.get("principal") });
    const { compose, rancher } = toComposeDocuments(project);
    return c.json({ stack, files: { "docker-compose.yml": toYaml(compose), "rancher-compose.yml": toYaml(rancher) }, issues: violations?.issues ?? [] });
  });

  /** `export`: the current revision as docker-compose.yml and rancher-compose.yml (secret references only). */
  routes.get("/stacks/:stack/export", async (c) => {
    const s = await existing(c.req.param("stack"), c.get("principal"));
    const { compose, rancher } = toComposeDocuments(currentProject(s));
    return c.json({ stack: s.name, revision: s.revision, files: { "docker-compose.yml": toYaml(compose), "rancher-compose.yml": toYaml(rancher) } });
  });

  routes.delete("/stacks/:stack", async (c) => {
    const stack = stackParam(c.req.param("stack"));
    await mayTouch(stack, c.get("principal"));
    const op = newOpId();
    const { state, version, events } = await command(stack, () => ({ type: "Remove", stack, op, by: c.get("principal").name, source: "api" }));
    const started = opOf(events);
    // an rm already in progress: answer with that one
    const current = started?.type === "OperationStarted" ? started.op : state.op?.id;
    return c.json({ stack, op: current, version }, 202);
  });

  routes.post("/stacks", async (c) => {
    const body = z.object({ name: z.string() }).parse(await c.req.json().catch(() => ({})));
    const stack = stackParam(body.name);
    const p = c.get("principal");
    await mayTouch(stack, p);
    const { version } = await command(stack, () => ({ type: "Create", stack, by: p.name, group: primaryGroup(p) }));
    return c.json({ stack, version }, 201);
  });

  routes.delete("/stacks/:stack/services/:service", async (c) => {
    const stack = stackParam(c.req.param("stack"));
    await existing(stack, c.get("principal"));
    const op = newOpId();
    const { version } = await command(stack, () => ({ type: "RemoveService", stack, op, service: c.req.param("service"), by: c.get("principal").name, source: "api", now: clock() }));
    return c.json({ stack, op, version }, 202);
  });

  routes.delete("/containers/:name", async (c) => {
    const name = c.req.param("name");
    const t = name.includes("/") ? undefined : await resolveTarget(name, c.get("principal")).catch(() => undefined);
    if (!t?.container) throw notFound(`no container named ${name}`);
    const owner = t.stack;
    const op = newOpId();
    const { version } = await command(owner.name, () => ({ type: "RemoveContainer", stack: owner.name, op, container: t.container!.name, by: c.get("principal").name, source: "api" }));
    return c.json({ stack: owner.name, op, version }, 202);
  });

  routes.post("/stacks/:stack/scale", async (c) => {
    const stack = stackParam(c.req.param("stack"));
    const body = scaleBody.parse(await c.req.json().catch(() => ({})));
    return c.json(await scale(stack, body.scales, c.get("principal"), "api"), 202);
  });

  /** `scale` (and `service update --replicas`, `service scale`): slots added or removed, not a new revision. */
  async function scale(stack: string, scales: Record<string, number>, principal: Principal, source: Source) {
    for (const [service, n] of Object.entries(scales)) {
      if (n > policy.maxScale) throw invalid(`scales.${service}: ${n} containers is above the site's limit of ${policy.maxScale} per service`, `scales.${service}`);
    }
    await mayTouch(stack, principal);
    const op = newOpId();
    const { version } = await givingPorts(async () => {
      const [ports, hosts, placed] = [await portPool(stack), await liveHosts(), await othersPlaced(stack)];
      return command(stack, () => ({ type: "Scale", stack, op, scales, by: principal.name, source, ports, hosts, placed }));
    });
    return { stack, op, version };
  }

  for (const action of ["stop", "start", "restart"] as const) {
    routes.post(`/stacks/:stack/${action}`, async (c) => {
      const stack = stackParam(c.req.param("stack"));
      const body = lifecycleBody.parse(await c.req.json().catch(() => ({})));
      await mayTouch(stack, c.get("principal"));
      const op = newOpId();
      const { version } = await command(stack, () => ({
        type: "Lifecycle",
        stack,
        op,
        action,
        by: c.get("principal").name,
        source: "api",
        ...(body.services ? { services: body.services } : {}),
        ...(body.batchSize ? { batchSize: body.batchSize } : {}),
        ...(body.intervalMs !== undefined ? { intervalMs: body.intervalMs } : {}),
      }));
      return c.json({ stack, op, version }, 202);
    });
  }

  /** Stacks that exist; with a principal, only those it may see. */
  async function existingStacks(p?: Principal): Promise<StackState[]> {
    const states = await Promise.all((await deps.store.stackNames()).map((n) => deps.store.load(n)));
    return states.filter((s) => s.exists && (!p || canSee(p, s.owner, s.group))).sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  async function existing(stack: string, p: Principal): Promise<StackState> {
    const state = await deps.store.load(stackParam(stack));
    if (!state.exists || !canSee(p, state.owner, state.group)) throw notFound(`stack ${stack} not found`);
    return state;
  }

  /** Who holds a stack's name: its owner and group, kept after it is removed; nobody for a stack never made (or a name that is none). */
  async function holderOf(stack: string): Promise<Holder> {
    if (!stackNamePattern.test(stack)) return {};
    const s = await deps.store.load(stack);
    return s.owner ? { owner: s.owner, ...(s.group ? { group: s.group } : {}) } : {};
  }

  async function holdersOf(stacks: string[]): Promise<Map<string, Holder>> {
    const names = [...new Set(stacks)];
    return new Map(await Promise.all(names.map(async (n) => [n, await holderOf(n)] as const)));
  }

  /** Someone else's stack answers as if it did not exist (a new one is anyone's to create). */
  async function mayTouch(stack: string, p: Principal): Promise<void> {
    const state = await deps.store.load(stack);
    if ((state.exists || state.owner) && !canSee(p, state.owner, state.group)) throw notFound(`stack ${stack} not found`);
  }

  routes.get("/stacks", async (c) => {
    const stacks = await existingStacks(c.get("principal"));
    return c.json(
      stacks.map((s) => {
        return { id: s.name, name: s.name, state: stackState(s), services: Object.keys(s.services).length, revision: s.revision, owner: s.owner ?? "", group: s.group ?? "", version: s.version };
      }),
    );
  });

  /**
   * Logs and exec: a session. The API finds the containers and their hosts,
   * sends each host a session message on its queue, and serves the chunks the
   * agents post back (under their host tokens) to the user who asked, by
   * long-poll. Agents accept no inbound connection.
   */
  routes.post("/sessions", async (c) => {
    const body = sessionBody.parse(await c.req.json().catch(() => ({})));
    const p = c.get("principal");
    const { containers, of } = await resolveContainers(body.target, p, body.type === "exec" ? (body.slot ?? 1) : undefined);
    if (body.type === "exec") {
      const target = containers[0]!;
      if (target.state !== "running") throw conflict(`container ${displayName(target.name)} is not running (it is ${target.state}): 'corral start' it first`);
    }
    const hosts: Record<string, string[]> = {};
    for (const ct of containers) hosts[ct.host] = [...(hosts[ct.host] ?? []), ct.name];
    const known = new Map((await deps.hosts.list()).map((h) => [h.id, h]));
    for (const h of Object.keys(hosts)) if (!known.has(h)) throw conflict(`host ${h} of ${hosts[h]!.join(", ")} is not registered`);
    const id = `s-${Date.now().toString(36)}${randomBytes(6).toString("hex")}`;
    await deps.sessions.create({ id, owner: p.name, type: body.type, hosts, created: clock() });
    for (const [host, names] of Object.entries(hosts)) {
      const message = {
        kind: "session" as const,
        id,
        type: body.type,
        containers: names,
        ...(body.type === "logs" ? { logs: { follow: body.follow, timestamps: body.timestamps, ...(body.tail !== undefined ? { tail: body.tail } : {}), ...(body.since !== undefined ? { since: body.since } : {}) } } : { exec: { cmd: body.cmd, ...(body.interactive ? { interactive: true } : {}), ...(body.tty ? { tty: body.tty } : {}) } }),
      };
      await deps.sender.send(known.get(host)!.queueUrl, [{ body: message, group: `session/${id}`, dedupId: `session.${id}`, to: host }]);
    }
    // `of`: what the target named (a stack's or service's lines are prefixed with their container, as compose does)
    return c.json({ id, containers: containers.map((x) => x.name), of }, 201);
  });

  async function mySession(id: string, p: Principal) {
    const s = await deps.sessions.get(id);
    if (!s || (s.owner !== p.name && !p.admin)) throw notFound(`session ${id} not found`);
    return s;
  }

  routes.get("/sessions/:id", query({ cursor: jsonParam(sessionCursor).default("{}"), wait: waitParam }), async (c) => {
    const s = await mySession(c.req.param("id"), c.get("principal"));
    const q = c.req.valid("query");
    const cursor: SessionCursor = q.cursor;
    const deadline = clock() + q.wait * 1000;
    const hosts = Object.keys(s.hosts);
    await deps.sessions.touch(s.id);
    const release = q.wait > 0 ? follows.enter(c.get("principal").scope) : () => {};
    try {
      for (;;) {
        const status = await deps.sessions.status(s.id);
        const page = await deps.sessions.read(s.id, hosts, cursor);
        const done = hosts.every((h) => status.ended[h]);
        if (page.chunks.length > 0 || done || clock() >= deadline || c.req.raw.signal.aborted || deps.feed.closed) {
          const ends = Object.values(status.ended);
          const errors = Object.entries(status.ended).flatMap(([h, e]) => (e.error ? [`${h}: ${e.error}`] : []));
          const silent = hosts.filter((h) => !status.answered.includes(h));
          return c.json({ chunks: page.chunks, cursor: page.cursor, done: done && page.chunks.length === 0, ...(done ? { exitCode: ends.find((e) => e.exitCode !== undefined)?.exitCode ?? (errors.length ? 1 : 0) } : {}), errors, silent });
        }
        await deps.feed.wait(`session:${s.id}`, Math.min(1000, deadline - clock()), c.req.raw.signal);
      }
    } finally {
      release();
    }
  });

  /** exec -i: the user's keystrokes or piped input, in order; the agent fetches them for the command's stdin. */
  routes.post("/sessions/:id/input", async (c) => {
    const s = await mySession(c.req.param("id"), c.get("principal"));
    if (s.type !== "exec") throw invalid("only an exec session takes input", "id");
    const body = inputBody.parse(await c.req.json().catch(() => ({})));
    await deps.sessions.putInput(s.id, body.seq, body.data, body.eof);
    deps.feed.changed(`session-input:${s.id}`);
    return c.json({ ok: true });
  });

  routes.get("/hosts/:id/sessions/:sid/input", query({ after: intParam(-1, Number.MAX_SAFE_INTEGER).default("-1"), wait: waitParam }), async (c) => {
    const host = c.req.param("id");
    const s = await deps.sessions.get(c.req.param("sid"));
    if (!s || !s.hosts[host]) throw notFound(`session ${c.req.param("sid")} not found`);
    const { after, wait } = c.req.valid("query");
    const deadline = clock() + wait * 1000;
    for (;;) {
      const input = await deps.sessions.readInput(s.id, after);
      const status = await deps.sessions.status(s.id);
      if (input.length > 0 || status.cancelled || clock() >= deadline || c.req.raw.signal.aborted || deps.feed.closed) return c.json({ input, cancelled: status.cancelled });
      await deps.feed.wait(`session-input:${s.id}`, Math.min(1000, deadline - clock()), c.req.raw.signal);
    }
  });

  /** Cancel a session (Ctrl-C); one every host has ended is read to the end: its items go. */
  routes.delete("/sessions/:id", async (c) => {
    const s = await mySession(c.req.param("id"), c.get("principal"));
    const status = await deps.sessions.status(s.id);
    if (Object.keys(s.hosts).every((h) => status.ended[h])) {
      await deps.sessions.remove(s.id);
      return c.json({ id: s.id, removed: true });
    }
    await deps.sessions.cancel(s.id);
    return c.json({ id: s.id, cancelled: true });
  });

  /** A host's answer to a session: its chunks in order, then its end. Tells the agent to stop when nobody listens. */
  routes.post("/hosts/:id/sessions/:sid/chunks", async (c) => {
    const host = c.req.param("id");
    const s = await deps.sessions.get(c.req.param("sid"));
    if (!s || !s.hosts[host]) throw notFound(`session ${c.req.param("sid")} not found`);
    const body = chunksBody.parse(await c.req.json().catch(() => ({})));
    // a host speaks only for the containers the session asked of it
    const stray = body.chunks.find((ch) => !s.hosts[host]!.includes(ch.container));
    if (stray) throw invalid(`chunks.${body.chunks.indexOf(stray)}.container: ${stray.container} is not one of this session's containers on host ${host}`, "container");
    const status = await deps.sessions.status(s.id);
    if (status.cancelled || clock() - status.lastRead > ABANDONED_MS) return c.json({ cancelled: true });
    await deps.sessions.put(s.id, host, body.chunks, body.end);
    deps.feed.changed(`session:${s.id}`);
    return c.json({ cancelled: false });
  });

  /** STACK, STACK/SERVICE or CONTAINER, among what the caller may see; anything else answers 404. */
  async function resolveTarget(target: string, p: Principal): Promise<{ stack: StackState; service?: string; container?: ContainerRecord }> {
    if (target.includes("/")) {
      const [stackName, service] = target.split("/", 2) as [string, string];
      const s = await existing(stackName, p);
      if (!s.services[service]) throw notFound(`stack ${s.name} has no service ${service} (services: ${Object.keys(s.services).join(", ")})`);
      return { stack: s, service };
    }
    const visible = await existingStacks(p);
    const stack = visible.find((s) => s.name === target);
    if (stack) return { stack };
    // a container by the name users see (STACK-SERVICE-N) or by the engine's: two stacks may show the same name
    // (a-b/c and a/b-c both show a-b-c-1; their engine names differ), so a name that fits more than one is refused
    // (or by its id, as ps shows it: the one way to name an upgrade's previous container, listed under its slot's name)
    const found = visible.flatMap((s) => Object.values(s.containers).filter((c) => c.name === target || displayName(c.name) === target || containerId(c) === target).map((container) => ({ stack: s, container })));
    if (found.length === 1) return found[0]!;
    if (found.length > 1) {
      // never a guess: logs or exec in another tenant's container because two names look alike
      const which = found.map((f) => `${f.stack.name}/${f.container.service} (engine name ${f.container.name})`).join(", ");
      throw invalid(`the name ${target} fits containers of several stacks: ${which}; name the service (STACK/SERVICE)`, "target");
    }
    throw notFound(`no stack, service or container named ${target}`);
  }

  /** The containers a logs or exec target names: a stack's, a service's (one slot for exec), or one container. */
  async function resolveContainers(target: string, p: Principal, slot?: number): Promise<{ containers: ContainerRecord[]; of: "stack" | "service" | "container" }> {
    const t = await resolveTarget(target, p);
    if (t.container) return { containers: [t.container], of: "container" };
    if (!t.service && slot !== undefined) throw invalid(`exec needs a service or a container, not the stack ${target}: '${target}/SERVICE' or a container name`, "target");
    const all = Object.values(t.stack.containers)
      .filter((x) => (!t.service || x.service === t.service) && !x.previousOf)
      .sort((a, b) => (a.service === b.service ? a.slot - b.slot : a.service < b.service ? -1 : 1));
    const chosen = slot === undefined ? all : all.filter((x) => x.slot === slot);
    if (chosen.length === 0) {
      const what = t.service ? `service ${target}` : `stack ${target}`;
      throw notFound(slot === undefined ? `${what} has no containers` : `${what} has no container in slot ${slot} (slots: ${all.map((x) => x.slot).join(", ") || "none"})`);
    }
    return { containers: chosen, of: t.service ? "service" : "stack" };
  }

  /** `inspect STACK | STACK/SERVICE | CONTAINER`: one object; what the caller may not see answers 404. */
  routes.get("/inspect", query({ target: textParam(300) }), async (c) => {
    const t = await resolveTarget(c.req.valid("query").target, c.get("principal"));
    const known = await deps.hosts.list();
    const ctx: InspectContext = {
      environment: policy.environment,
      domain: policy.domain,
      hostAddresses: Object.fromEntries(known.flatMap((h) => (h.address ? [[h.id, h.address]] : []))),
      hostNames: Object.fromEntries(known.map((h) => [h.id, h.name])),
    };
    if (t.container) return c.json(inspectContainer(t.stack, t.container.name, ctx));
    return c.json(t.service ? inspectService(t.stack, t.service, ctx) : inspectStack(t.stack, ctx));
  });

  routes.get("/stacks/:stack", async (c) => {
    const s = await existing(c.req.param("stack"), c.get("principal"));
    return c.json({ name: s.name, owner: s.owner ?? null, group: s.group ?? null, revision: s.revision, version: s.version, operation: s.op ?? null, services: serviceRows(s), containers: namedHosts(containerRows(s), await hostNames()) });
  });

  routes.get("/services", async (c) => c.json((await existingStacks(c.get("principal"))).flatMap(serviceRows)));
  routes.get("/containers", async (c) => {
    const names = await hostNames();
    return c.json((await existingStacks(c.get("principal"))).flatMap((s) => namedHosts(containerRows(s), names)));
  });

  /**
   * The log of a stack after a version, with a user-facing line per event.
   * `wait=S` long-polls: the answer comes as soon as something is appended.
   */
  routes.get("/stacks/:stack/events", query({ after: intParam(0, Number.MAX_SAFE_INTEGER).default("0"), wait: waitParam }), async (c) => {
    const stack = stackParam(c.req.param("stack"));
    await mayTouch(stack, c.get("principal"));
    const { after, wait } = c.req.valid("query");
    const deadline = clock() + wait * 1000;
    const release = wait > 0 ? follows.enter(c.get("principal").scope) : () => {};
    try {
      for (;;) {
        const commits = await deps.store.commits(stack, after, 100);
        if (commits.length > 0 || clock() >= deadline) {
          const state = await deps.store.load(stack);
          // the lines of this page follow from how things stood at `after`: the state now, less what came since
          const end = commits.at(-1)?.version ?? after;
          const since = state.version > end ? [...commits, ...(await deps.store.commits(stack, end))] : commits;
          const progress = progressFrom(state, since);
          return c.json({
            stack,
            version: end,
            events: commits.flatMap((commit) =>
              commit.events.map((event) => ({ version: commit.version, at: new Date(commit.at).toISOString(), type: event.type, line: progress.line(event) ?? null, event: redact(event) })),
            ),
          });
        }
        await deps.feed.wait(stack, Math.min(1000, deadline - clock()), c.req.raw.signal);
        if (c.req.raw.signal.aborted) return c.body(null, 204);
        if (deps.feed.closed) return c.json({ error: "unavailable", message: "the server is stopping" }, 503);
      }
    } finally {
      release();
    }
  });

  /**
   * Server-sent events: the event log of one stack, or of every stack the
   * caller may see, as progress lines; with follow=1 it stays open and sends
   * what comes. since: epoch ms or an ISO time.
   */
  routes.get("/events", query({ stack: stackNameParam.optional(), since: timeParam.optional(), follow: flagParam.optional() }), async (c) => {
    const p = c.get("principal");
    const { stack: only, since = 0, follow = false } = c.req.valid("query");
    if (only) await existing(only, p);
    const release = follow ? follows.enter(p.scope) : () => {};
    return streamSSE(c, async (stream) => {
      try {
        const cursor = new Map<string, number>();
        const progress = new Map<string, Progress>(); // each stack's log is read from its start: its lines follow as they came
        let aborted = false;
        stream.onAbort(() => void (aborted = true));
        const emitNew = async () => {
          const names = only ? [only] : (await existingStacks(p)).map((s) => s.name);
          const out: Array<{ at: number; stack: string; version: number; type: string; line: string | null; event: StackEvent }> = [];
          for (const name of names) {
            const known = progress.get(name) ?? new Progress(name);
            progress.set(name, known);
            for (;;) {
              const commits = await deps.store.commits(name, cursor.get(name) ?? 0, 200);
              for (const commit of commits) {
                for (const event of commit.events) {
                  const line = known.line(event) ?? null;
                  if (commit.at >= since) out.push({ at: commit.at, stack: name, version: commit.version, type: event.type, line, event: redact(event) });
                }
                cursor.set(name, commit.version);
              }
              if (commits.length < 200) break;
            }
          }
          out.sort((a, b) => a.at - b.at);
          for (const e of out) await stream.writeSSE({ id: `${e.stack}:${e.version}`, event: e.type, data: JSON.stringify({ ...e, at: new Date(e.at).toISOString() }) });
        };
        await emitNew();
        const until = deps.maxFollowMs === undefined ? Infinity : clock() + deps.maxFollowMs;
        while (follow && !aborted && !deps.feed.closed && clock() < until) {
          await deps.feed.wait(only ?? "*", Math.min(15_000, until - clock()), c.req.raw.signal);
          if (aborted || deps.feed.closed) break;
          await emitNew();
          await stream.write(": alive\n\n"); // a comment: keeps proxies from closing an idle stream
        }
      } finally {
        release();
      }
    });
  });

  /**
   * A secret's value, for the host that is creating a container mounting it:
   * only with that host's token, only for a create step planned on that host
   * and not yet done, only the version the step names.
   */
  routes.get("/hosts/:id/secrets/:name", query({ stack: stackNameParam, step: textParam(500), version: intParam(1, Number.MAX_SAFE_INTEGER) }), async (c) => {
    const id = c.req.param("id");
    const name = c.req.param("name");
    const q = c.req.valid("query");
    const state = await deps.store.load(q.stack);
    const record = state.steps[q.step];
    const mounts = record?.step.action === "create" && record.step.host === id && record.status === "planned" ? (record.step.secrets ?? []) : [];
    if (!mounts.some((m) => m.name === name && m.version === q.version)) throw notFound(`no container being created on ${id} mounts secret ${name} version ${q.version}`);
    const value = await deps.secrets.reveal(name, q.version);
    if (!value) throw notFound(`secret ${name} version ${q.version} not found`);
    return c.json({ name, version: q.version, value: value.toString("base64") });
  });

  routes.post("/secrets/:name", async (c) => {
    const name = c.req.param("name");
    const stack = secretStack(name);
    const body = secretBody.parse(await c.req.json().catch(() => ({})));
    const principal = c.get("principal");
    const holder = await holderOf(stack);
    if (!mayName(principal, holder)) throw notFound(`stack ${stack} not found (a secret SERVICE.${stack}.FILE is its owner's)`);
    const current = await deps.secrets.info(name);
    if (current && !mayUse(principal, current, holder)) {
      if (belongsToStack(current, holder)) throw notFound(`secret ${name} not found`);
      await deps.secrets.remove(name); // made before the stack was owned, by someone outside it: the stack's owner takes the name
    }
    const outcome = await deps.secrets.put(name, Buffer.from(body.value, "base64"), principal.name, holder.group ?? primaryGroup(principal));
    return c.json({ name, ...outcome }, outcome.kind === "unchanged" ? 200 : 201);
  });

  routes.get("/secrets", async (c) => {
    const p = c.get("principal");
    const all = await deps.secrets.list();
    const holders = await holdersOf(all.map((s) => s.name.split(".")[1] ?? ""));
    return c.json(all.filter((s) => mayUse(p, s, holders.get(s.name.split(".")[1] ?? "") ?? {})));
  });

  routes.delete("/secrets/:name", async (c) => {
    const name = c.req.param("name");
    const info = await deps.secrets.info(name);
    const holder = info ? await holderOf(name.split(".")[1] ?? "") : {};
    // the stack's owner may also clear a stale record made before the stack was owned
    if (!info || !(mayUse(c.get("principal"), info, holder) || (!belongsToStack(info, holder) && mayName(c.get("principal"), holder)))) throw notFound(`secret ${name} not found`);
    const users: string[] = [];
    for (const s of await existingStacks()) {
      for (const [service, { spec }] of Object.entries(s.services)) {
        const mounts = (spec.secrets ?? []).some((m) => (s.secrets[m.source]?.name ?? m.source) === name);
        if (!mounts) continue;
        users.push(...Object.values(s.containers).filter((k) => k.service === service && k.state === "running").map((k) => displayName(k.name)));
      }
    }
    if (users.length > 0) throw conflict(`secret ${name} is used by running containers: ${users.join(", ")}`);
    await deps.secrets.remove(name);
    return c.json({ name, removed: true });
  });

  routes.route("/registries", registryRoutes(deps));
  const serviceDeps: ServiceRouteDeps = {
    up,
    scale,
    existing,
    touchable: async (stack, p) => {
      await mayTouch(stackParam(stack), p);
      return deps.store.load(stackParam(stack));
    },
    commits: (stack) => deps.store.commits(stack),
    volumeExists: async (name) => (await deps.volumes.get(name)) !== undefined,
    clock,
  };
  routes.route("/", serviceRoutes(serviceDeps));
  if (hooks) routes.route("/", hooks.admin);
  if (chat) routes.route("/", chat.admin);
  routes.route("/hosts", hostRegistryRoute(deps));
  if (deps.overlay) {
    const { subnets, vteps } = deps.overlay;
    routes.route("/hosts", overlayRoutes({ hosts: deps.hosts, liveHosts, subnets, vteps, stacks: () => existingStacks(), load: (n) => deps.store.load(n), clock }));
  }

  const volumeBody = z.object({
    name: z.string().max(128).regex(volumeNamePattern, "a volume is named SERVICE.STACK"),
    driver: z.enum(["local", "nfs"]).default("local"),
    opts: z.record(z.string().max(256), z.string().max(4096)).default({}),
  });

  /** Containers (of stacks the caller may see, or all) that mount a named volume. */
  async function volumeUsers(name: string, p?: Principal): Promise<Array<{ name: string; running: boolean }>> {
    const out: Array<{ name: string; running: boolean }> = [];
    for (const s of await existingStacks(p)) {
      for (const c of Object.values(s.containers)) {
        const spec = s.services[c.service]?.spec;
        const mounts = (spec?.volumes ?? []).some((m) => m.type === "volume" && m.source && (s.volumes[m.source]?.name ?? m.source) === name);
        if (mounts) out.push({ name: c.name, running: c.state === "running" });
      }
    }
    return out;
  }

  routes.post("/volumes", async (c) => {
    const body = volumeBody.parse(await c.req.json().catch(() => ({})));
    const p = c.get("principal");
    let opts = body.opts;
    if (body.driver === "nfs") {
      // Docker's local driver mounts NFS itself, as `docker service create --mount type=volume,volume-opt=type=nfs,...` does
      if (!opts.addr || !opts.device) throw invalid("an nfs volume needs --opt addr=HOST and --opt device=:/path", "opts");
      const { addr, device, o, ...rest } = opts;
      opts = { ...rest, type: "nfs", o: [`addr=${addr}`, o].filter(Boolean).join(","), device };
    }
    // the site's rules, as for a compose file's volumes: local takes no options but NFS to a server the site names
    const problems = volumeProblems("local", opts, policy).map((x) => ({ key: x.key.replace(/^driver_opts/, "opts"), reason: x.reason }));
    if (problems.length > 0) throw invalid(`volume ${body.name}: ${problems.map((x) => `${x.key}: ${x.reason}`).join("; ")}`, problems[0]!.key);
    const holder = await holderOf(volumeStack(body.name));
    if (!mayName(p, holder)) throw notFound(`stack ${volumeStack(body.name)} not found (a volume SERVICE.${volumeStack(body.name)} is its owner's)`);
    const current = await deps.volumes.get(body.name);
    if (current && !mayUse(p, current, holder) && !belongsToStack(current, holder)) await deps.volumes.remove(body.name); // stale: the stack's owner takes the name
    const created = await deps.volumes.create({ name: body.name, driver: "local", opts, kind: body.driver, owner: p.name, group: holder.group ?? primaryGroup(p) });
    if (!created) throw conflict(`volume ${body.name} exists`);
    return c.json({ name: body.name, driver: body.driver }, 201);
  });

  routes.get("/volumes", async (c) => {
    const p = c.get("principal");
    const rows = [];
    const all = await deps.volumes.list();
    const holders = await holdersOf(all.map((v) => volumeStack(v.name)));
    for (const v of all.filter((x) => mayUse(p, x, holders.get(volumeStack(x.name)) ?? {}))) {
      const users = await volumeUsers(v.name);
      const running = users.filter((u) => u.running).map((u) => displayName(u.name));
      rows.push({ id: `1v${v.name}`, name: v.name, state: running.length > 0 ? "active" : "inactive", driver: v.kind, detail: running.length ? `used by ${running.join(", ")}` : "", owner: v.owner, group: v.group });
    }
    return c.json(rows);
  });

  routes.delete("/volumes/:name", async (c) => {
    const name = c.req.param("name");
    const p = c.get("principal");
    const v = volumeNamePattern.test(name) ? await deps.volumes.get(name) : undefined;
    const holder = v ? await holderOf(volumeStack(name)) : {};
    if (!v || !(mayUse(p, v, holder) || (!belongsToStack(v, holder) && mayName(p, holder)))) throw notFound(`volume ${name} not found`);
    const users = await volumeUsers(name);
    if (users.length > 0) throw conflict(`volume ${name} is in use by ${users.map((u) => displayName(u.name)).join(", ")}`);
    await deps.volumes.remove(name);
    // every host drops its copy (a volume is made where a container landed)
    const hosts = await deps.hosts.list();
    const at = clock();
    for (const h of hosts) {
      const step = { id: `volume-rm.${name}.${at}`, op: `volume-rm-${at}`, stack: "_volumes", service: name, revision: 0, action: "remove-volume" as const, host: h.id, image: "", after: [] };
      await deps.sender.send(h.queueUrl, [{ body: { kind: "step", step, attempt: 1 }, group: `_volumes/${name}`, dedupId: `${step.id}#${h.id}`, to: h.id }]);
    }
    return c.json({ name, removed: true, hosts: hosts.length });
  });

  const userBody = z.object({ name: z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, "lower-case letters, digits, '_' and '-', starting with a letter"), groups: z.array(z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/)).default([]) });
  const newUserToken = (name: string) => `user.${name}.${randomBytes(24).toString("base64url")}`;

  routes.post("/users", async (c) => {
    const body = userBody.parse(await c.req.json().catch(() => ({})));
    if (body.name === "admin") throw conflict("the name admin is taken");
    const groups = body.groups.length > 0 ? body.groups : [body.name];
    await mayNameUser(body.name, groups);
    const token = newUserToken(body.name);
    if (!(await deps.users.create(body.name, groups, hashToken(token)))) throw conflict(`user ${body.name} exists; 'corral user token ${body.name}' gives a new token`);
    holdsCredential(c);
    return c.json({ name: body.name, groups, token }, 201);
  });
  /**
   * Ownership is by name (a stack's owner and group, a secret's, a volume's):
   * a new user must not inherit what a removed one left, nor join a
   * personal group. So a name that still owns something (stacks, removed
   * ones too: their history stays) is not given again, a group may not be
   * named like a user (live or removed) or the admin, and a user's own
   * group may not be one that others already hold.
   */
  async function mayNameUser(name: string, groups: string[]): Promise<void> {
    const owners = new Map<string, string[]>();
    const groupsHeld = new Map<string, string[]>();
    const note = (map: Map<string, string[]>, key: string | undefined, what: string) => key && map.set(key, [...(map.get(key) ?? []), what]);
    const states = await Promise.all((await deps.store.stackNames()).map((n) => deps.store.load(n)));
    for (const s of states) {
      note(owners, s.owner, `stack ${s.name}${s.exists ? "" : " (removed)"}`);
      if (s.group !== s.owner) note(groupsHeld, s.group, `stack ${s.name}`);
    }
    for (const x of await deps.secrets.list()) {
      note(owners, x.owner, `secret ${x.name}`);
      if (x.group !== x.owner) note(groupsHeld, x.group, `secret ${x.name}`);
    }
    for (const x of await deps.volumes.list()) {
      note(owners, x.owner, `volume ${x.name}`);
      if (x.group !== x.owner) note(groupsHeld, x.group, `volume ${x.name}`);
    }
    for (const x of await deps.registries.list()) {
      note(owners, x.owner, `a login for registry ${x.server}`);
      if (x.group !== x.owner) note(groupsHeld, x.group, `a login for registry ${x.server}`);
    }
    const users = await deps.users.list();
    for (const u of users) for (const g of u.groups) if (g !== u.name) note(groupsHeld, g, `user ${u.name}`);
    const some = (list: string[]) => `${list.slice(0, 5).join(", ")}${list.length > 5 ? `, and ${list.length - 5} more` : ""}`;
    const held = owners.get(name);
    if (held) throw conflict(`the name ${name} still owns ${some(held)}, left by a removed user: a new user ${name} would inherit them; choose another name`);
    for (const g of groups) {
      if (g === name) continue;
      const whose = g === "admin" ? "the admin" : users.some((u) => u.name === g) ? `user ${g}` : owners.has(g) ? `a removed user who still owns ${some(owners.get(g)!)}` : undefined;
      if (whose) throw conflict(`group ${g} is the name of ${whose}: a group may not be named like a user, its members would share that user's own stacks`);
    }
    if (groups.includes(name) && groupsHeld.has(name)) throw conflict(`${name} is already a group (of ${some(groupsHeld.get(name)!)}): a user ${name} would join it; choose another name, or give the groups with --group`);
  }

  routes.get("/users", async (c) => c.json(await deps.users.list()));
  routes.delete("/users/:name", async (c) => {
    const name = c.req.param("name");
    if (!(await deps.users.get(name))) throw notFound(`user ${name} not found`);
    await deps.users.remove(name);
    return c.json({ name, removed: true });
  });
  routes.post("/users/:name/token", async (c) => {
    const name = c.req.param("name");
    const token = newUserToken(name);
    if (!(await deps.users.setToken(name, hashToken(token)))) throw notFound(`user ${name} not found`);
    holdsCredential(c);
    return c.json({ name, token });
  });

  routes.route(
    "/hosts",
    hostRoutes({
      hosts: deps.hosts,
      containersByHost: async () => {
        const counts = new Map<string, number>();
        for (const s of await existingStacks()) for (const ct of Object.values(s.containers)) counts.set(ct.host, (counts.get(ct.host) ?? 0) + 1);
        return counts;
      },
      ...(deps.removeHostQueue ? { removeHostQueue: deps.removeHostQueue } : {}),
      stackStates: () => existingStacks(),
      hostStaleMs: staleMs,
      ...(deps.heardSince !== undefined ? { heardSince: deps.heardSince } : {}),
      joinTokenMs: JOIN_TOKEN_MS,
      clock,
    }),
  );

  v1.route("/", routes);
  app.route("/v1", v1);
  /** The routes as a given principal (a chat command's mapped user): the same checks, the same answers, no token. */
  const asPrincipal = new Hono<Env>();
  asPrincipal.onError(onError(deps.log));
  asPrincipal.use("*", async function principal(c, next) {
    c.set("principal", (c.env as { principal: Principal }).principal);
    await next();
  });
  asPrincipal.use("*", scope);
  asPrincipal.use("*", bodyLimits({ ...defaultBodyLimits, ...deps.limits?.body }));
  asPrincipal.route("/v1", routes);
  const drainHooks = async () => {
    await hooks?.drain();
  };
  return { app, drainHooks };
}

/** Events as the API shows them: the service spec of a step is not repeated in every line. */
function redact(event: StackEvent): StackEvent {
  if (event.type === "StepPlanned" && event.step.spec) {
    const { spec: _spec, ...step } = event.step;
    return { ...event, step };
  }
  return event;
}
