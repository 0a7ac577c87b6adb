import { Hono, type MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { defaultPolicy, type SitePolicy } from "@corral/core";
import { accessLog } from "./access-log.js";
import { bearerAuth, type Principal } from "./auth.js";
import type { ApiDeps } from "./deps.js";
import type { Env } from "./env.js";
import { onError } from "./errors.js";
import { idempotency } from "./idempotency.js";
import { bodyLimits, DEFAULT_MUTATIONS_PER_MINUTE, defaultBodyLimits, followLimiter, mutationLimit } from "./limits.js";
import { openapiFor } from "./openapi.js";
import { stackOps, type StackOps } from "./ops/index.js";
import { queryGuard } from "./query.js";
import { CHAT_COMMANDS_PER_MINUTE, chatRoutes } from "./routes/chat.js";
import { eventRoutes } from "./routes/events.js";
import { DEFAULT_HOST_STALE_MS, hostRoutes, registrationRoutes } from "./routes/hosts.js";
import { overlayRoutes } from "./routes/overlay.js";
import { readRoutes } from "./routes/reads.js";
import { hostRegistryRoute, registryRoutes } from "./routes/registries.js";
import { hostSecretRoutes, secretRoutes } from "./routes/secrets.js";
import { serviceActions, serviceRoutes, type ServiceRouteDeps } from "./routes/services.js";
import { hostSessionRoutes, sessionRoutes } from "./routes/sessions.js";
import { containerRoutes, stackRoutes } from "./routes/stacks.js";
import { userRoutes } from "./routes/users.js";
import { volumeRoutes } from "./routes/volumes.js";
import { HOOK_DELIVERIES_PER_MINUTE, hookRoutes } from "./routes/webhooks.js";
import { stackParam } from "./validate.js";

export type { ApiDeps } from "./deps.js";

/**
 * How old the states an agent's reconcile is answered from may be (GET
 * /v1/hosts/ID/wanted): every host asks every reconcileMs, and each answer
 * reads every stack, so that the reads would grow as hosts × stacks; states
 * read this recently are used as they are instead. An agent removes a
 * container only once it stayed unwanted for its orphan grace (a minute by
 * default): a quarter of it, at most 15 s.
 */
// (60 s: the agents' own default grace, DEFAULT_ORPHAN_GRACE_MS in @corral/agent, for a site that sets none)
export const wantedMaxAgeMs = (orphanGraceMs = 60_000) => Math.min(15_000, Math.floor(orphanGraceMs / 4));

/** How long a join token stays good. */
const JOIN_TOKEN_MS = 60 * 60_000;

/** What the routes share, made once per API: the resolved defaults, the follow limiter, and the stack operations. */
interface Shared {
  clock: () => number;
  staleMs: number;
  policy: SitePolicy;
  follows: ReturnType<typeof followLimiter>;
  ops: StackOps;
}

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

/** What the service verbs (and webhooks, which change a service the same way) do with stacks. */
function serviceDeps(deps: ApiDeps, { ops, clock }: Shared): ServiceRouteDeps {
  return {
    up: ops.up,
    scale: ops.scale,
    existing: ops.existing,
    touchable: async (stack, p) => {
      await ops.mayTouch(stackParam(stack), p);
      return deps.store.load(stackParam(stack));
    },
    commits: (stack) => deps.store.commits(stack),
    volumeExists: async (name) => (await deps.volumes.get(name)) !== undefined,
    clock,
  };
}

/** The user a hook or a chat account acts as, with their groups now; none: the user is gone. */
const principals =
  (deps: ApiDeps) =>
  async (name: string): Promise<Principal | undefined> => {
    if (name === "admin") return { name, admin: true, groups: [], scope: "as:admin" };
    const u = await deps.users.get(name);
    return u ? { name, admin: false, groups: u.groups, scope: `as:${name}` } : undefined;
  };

type HookAdmin = ReturnType<typeof hookRoutes>["admin"];
type ChatAdmin = ReturnType<typeof chatRoutes>["admin"];

/** A part this API may be made without (webhooks, chat, the overlay): typed as if mounted; mounted, it adds no route, so its paths answer 404 no_route. */
const absent = <T>() => new Hono<Env>() as unknown as T;

/** The routes, apart from how a caller authenticates: /v1 (bearer tokens) and chat commands (a mapped chat user) both reach them. */
function resourceRoutes(deps: ApiDeps, shared: Shared, extra: { hooks?: HookAdmin; chat?: ChatAdmin }) {
  const { ops, clock, follows, policy, staleMs } = shared;
  const sessions = { sessions: deps.sessions, hosts: deps.hosts, feed: deps.feed, sender: deps.sender, follows, clock };
  // every host asks for the overlay every 2 s, and each answer reads every stack: states read within the last second do
  const stacks = () => ops.existingStacks(undefined, { maxAgeMs: 1_000 });
  const overlay = deps.overlay
    ? overlayRoutes({ hosts: deps.hosts, liveHosts: ops.liveHosts, subnets: deps.overlay.subnets, vteps: deps.overlay.vteps, stacks, load: (n) => deps.store.load(n), clock })
    : absent<ReturnType<typeof overlayRoutes>>();
  const containersByHost = async () => {
    const counts = new Map<string, number>();
    for (const s of await ops.existingStacks()) for (const ct of Object.values(s.containers)) counts.set(ct.host, (counts.get(ct.host) ?? 0) + 1);
    return counts;
  };
  const wantedStates = () => ops.existingStacks(undefined, { maxAgeMs: wantedMaxAgeMs(deps.agentOrphanGraceMs) });
  const optional = { ...(deps.removeHostQueue ? { removeHostQueue: deps.removeHostQueue } : {}), ...(deps.heardSince !== undefined ? { heardSince: deps.heardSince } : {}) };
  return new Hono<Env>()
    .route("/stacks", stackRoutes(ops, clock))
    .route("/", readRoutes(ops, { store: deps.store, hosts: deps.hosts, policy }))
    .route("/", eventRoutes(ops, { store: deps.store, feed: deps.feed, follows, clock, ...(deps.maxFollowMs !== undefined ? { maxFollowMs: deps.maxFollowMs } : {}) }))
    .route("/containers", containerRoutes(ops))
    .route("/sessions", sessionRoutes(ops, sessions))
    .route("/hosts", hostSessionRoutes(sessions))
    .route("/hosts", hostSecretRoutes(deps))
    .route("/secrets", secretRoutes(ops, deps))
    .route("/registries", registryRoutes(deps))
    .route("/", serviceRoutes(serviceDeps(deps, shared)))
    .route("/", extra.hooks ?? absent<HookAdmin>())
    .route("/", extra.chat ?? absent<ChatAdmin>())
    .route("/hosts", hostRegistryRoute(deps))
    .route("/hosts", overlay)
    .route("/volumes", volumeRoutes(ops, { ...deps, policy, clock }))
    .route("/users", userRoutes(deps))
    .route("/hosts", hostRoutes({ hosts: deps.hosts, containersByHost, stackStates: wantedStates, hostStaleMs: staleMs, joinTokenMs: JOIN_TOKEN_MS, clock, ...optional }));
}

/**
 * /v1: a bearer token, its scope, the limits and idempotency, then the routes. Its type carries every
 * route's path, input and JSON output (ApiRoutes): the CLI's client is typed from it.
 */
function v1App(deps: ApiDeps, routes: ReturnType<typeof resourceRoutes>) {
  const v1 = new Hono<Env>().basePath("/v1");
  v1.use("*", bearerAuth({ adminToken: deps.adminToken, hostTokenHash: (id, fresh) => deps.hosts.tokenHash(id, fresh), user: (name) => deps.users.get(name) }));
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
  return v1.route("/", routes);
}

/** The API's routes under /v1, as a type: each one's path, method, input (json, query, param) and JSON output. */
export type ApiRoutes = ReturnType<typeof v1App>;

/** Webhooks: their deliveries authenticate with the hook's signature (or the URL's secret), not a bearer token. */
function webhooks(deps: ApiDeps, shared: Shared) {
  if (!deps.hooks) return undefined;
  const actions = serviceActions(serviceDeps(deps, shared));
  return hookRoutes({
    hooks: deps.hooks,
    load: (stack) => deps.store.load(stackParam(stack)),
    principalOf: principals(deps),
    update: (state, service, u, p, from) => actions.update(state, service, u, p, from),
    clock: shared.clock,
    opKey: deps.idempotencyKey,
    ...(deps.rates ? { take: (key: string) => deps.rates!.take(key, HOOK_DELIVERIES_PER_MINUTE, 60_000) } : {}),
    ...(deps.log ? { log: deps.log } : {}),
  });
}

/** Chat commands: Slack's signature; then the routes as the mapped user (`asPrincipal`, made once the routes are). */
function chatops(deps: ApiDeps, { clock }: Shared, asPrincipal: () => Hono<Env>) {
  if (!deps.chat) return undefined;
  if (!deps.chatJobs) throw new Error("createApp: chat needs chatJobs (where a command's work waits until it has run)");
  return chatRoutes({
    chat: deps.chat,
    jobs: deps.chatJobs,
    opKey: deps.idempotencyKey,
    ...(deps.dispatchChat ? { dispatch: deps.dispatchChat } : {}),
    principalOf: principals(deps),
    call: async (principal, method, path, body) => {
      const init = { method, ...(body !== undefined ? { body: JSON.stringify(body), headers: { "content-type": "application/json" } } : {}) };
      const res = await asPrincipal().request(path, init, { principal });
      return { status: res.status, body: (await res.json().catch(() => ({}))) as unknown };
    },
    clock,
    ...(deps.rates ? { take: (key: string) => deps.rates!.take(key, CHAT_COMMANDS_PER_MINUTE, 60_000) } : {}),
    ...(deps.log ? { log: deps.log } : {}),
  });
}

/** The routes as a given principal (a chat command's mapped user): the same checks, the same answers, no token. */
function asPrincipalApp(deps: ApiDeps, routes: Hono<Env>): Hono<Env> {
  const asPrincipal = new Hono<Env>();
  asPrincipal.onError(onError(deps.log));
  asPrincipal.use("*", async function principal(c, next) {
    c.set("principal", (c.env as { principal: Principal }).principal);
    await next();
  });
  asPrincipal.use("*", scope);
  asPrincipal.use("*", bodyLimits({ ...defaultBodyLimits, ...deps.limits?.body }));
  asPrincipal.route("/v1", routes);
  return asPrincipal;
}

export function createApp(deps: ApiDeps) {
  return createApi(deps).app;
}

/**
 * The API's app, and what a control loop runs beside it: `drainHooks` takes up the webhooks' waiting deploys once
 * their stacks are free, and sends again the chat commands whose message was lost; `runChatJob` runs a stored chat
 * command (what the chat queue's function calls on AWS).
 */
export function createApi(deps: ApiDeps): { app: Hono<Env>; drainHooks: () => Promise<void>; runChatJob: (id: string) => Promise<void> } {
  const clock = deps.clock ?? Date.now;
  const staleMs = deps.hostStaleMs ?? DEFAULT_HOST_STALE_MS;
  const policy = deps.policy ?? defaultPolicy;
  const follows = followLimiter(deps.limits?.followsPerToken ?? 8);
  if (deps.idempotencyKey.length < 32) throw new Error("createApp: idempotencyKey must be at least 32 bytes");
  const ops = stackOps({ ...deps, policy, clock, hostStaleMs: staleMs });
  const shared: Shared = { clock, staleMs, policy, follows, ops };

  const app = new Hono<Env>();
  app.onError(onError(deps.log));
  if (deps.log) {
    const log = deps.log;
    app.use(accessLog(log));
  }
  // a path no route answers: for an API client, which request it was (the CLI never sends one, and says so in its words)
  app.notFound((c) => c.json({ error: "no_route", message: `corral's API has no ${c.req.method} ${c.req.path} (GET /openapi.json lists the routes)` }, 404));

  app.get("/healthz", (c) => (deps.ready && !deps.ready() ? c.json({ ok: false, reason: "starting" }, 503) : c.json({ ok: true })));
  // made from the routes mounted below, at the first request (when every one is)
  let document: ReturnType<typeof openapiFor> | undefined;
  app.get("/openapi.json", (c) => c.json((document ??= openapiFor(app.routes))));

  // registration authenticates on its own terms (the admin, a join token, the host's current token)
  app.route("/v1/hosts", registrationRoutes({ ...deps, hostStaleMs: staleMs, clock, bindRoots: policy.bindRoots, portRange: policy.portRange }));
  const hooks = webhooks(deps, shared);
  if (hooks) app.route("/hooks", hooks.receive);
  const chat = chatops(deps, shared, () => asPrincipal);
  if (chat) app.route("/chat", chat.receive);

  const routes = resourceRoutes(deps, shared, { ...(hooks ? { hooks: hooks.admin } : {}), ...(chat ? { chat: chat.admin } : {}) });
  app.route("/", v1App(deps, routes));
  const asPrincipal = asPrincipalApp(deps, routes);
  const drainHooks = async () => {
    await hooks?.drain();
    await chat?.redrive();
  };
  return { app, drainHooks, runChatJob: async (id) => chat?.runJob(id) };
}
