import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import type { Context } from "hono";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { z } from "zod";
import {
  DomainError,
  hookKinds,
  inSubnet,
  invalid,
  notFound,
  parseDuration,
  pushTargets,
  readDelivery,
  serviceNamePattern,
  tagMatches,
  type Delivery,
  type Logger,
  type StackState,
} from "@corral/core";
import type { HookRecord, HookStore, QueuedDeploy } from "@corral/store";
import { canSee, primaryGroup, type Principal } from "../auth.js";
import type { Env } from "../env.js";
import { RateLimited } from "../limits.js";
import { body } from "../validate.js";
import type { ServiceUpdate } from "./services.js";
import { namingOps } from "../ops/op-ids.js";

/**
 * Webhooks: deploys on push. A hook belongs to a stack (and optionally some
 * of its services) and acts with its creator's rights. A delivery is
 * verified before anything is read (an HMAC-SHA256 of the raw body with the
 * hook's secret, GitHub's `X-Hub-Signature-256`; for senders that cannot
 * sign, the registry and Docker Hub, the secret in the URL and an optional
 * list of source addresses), claimed once by its delivery id, and turned
 * into deploys that wait in their stack's queue, in the order they came,
 * until the stack is free: a deploy running, or an upgrade awaiting a
 * person, holds the next one back, never drops it.
 */
export interface HookDeps {
  hooks: HookStore;
  load(stack: string): Promise<StackState>;
  /** The user a hook acts as, with their groups now (none: the user is gone, and so are the hook's rights). */
  principalOf(name: string): Promise<Principal | undefined>;
  update(state: StackState, service: string, u: ServiceUpdate, principal: Principal, from: "webhook"): Promise<{ status: number; body: Record<string, unknown> }>;
  clock(): number;
  /** The key a queued deploy's operations are named under (see namingOps): the server's idempotency key. */
  opKey: Buffer;
  /** Counts deliveries per hook before any key is unwrapped (an unauthenticated URL must not cost a KMS call each); past the limit, 429. */
  take?: (key: string) => Promise<{ ok: true } | { ok: false; retryAfterMs: number }>;
  log?: Logger;
}

/** A signed body seen again within this long under a new delivery id is a replay. */
export const REPLAY_WINDOW_S = 10 * 60;

/** Deliveries a hook takes a minute (a registry notifies once per blob and manifest: a push is a handful). */
export const HOOK_DELIVERIES_PER_MINUTE = 120;

/** The largest delivery read (GitHub's package events are a few KiB; a registry's envelope holds at most a few events). */
export const HOOK_BODY_LIMIT = 256 * 1024;
const SIGNED: ReadonlySet<HookRecord["kind"]> = new Set(["github", "generic"]);

const createBody = z
  .object({
    stack: z.string().min(1).max(63),
    services: z.array(z.string().regex(serviceNamePattern, "a service name")).max(64).default([]),
    kind: z.enum(hookKinds).default("registry"),
    tag: z.string().regex(/^[A-Za-z0-9_.*?-]{1,128}$/, "a glob of a tag: letters, digits, _ . - and * ?").optional(),
    confirmAfter: z.string().max(32).optional(),
    allow: z.array(z.string().max(64)).max(32).default([]),
  })
  .strict();

/** The client's address: the socket's (corral server) or the function URL's (Lambda). */
export function clientAddress(c: Context): string {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } }; event?: { requestContext?: { http?: { sourceIp?: string } } } } | undefined;
  const raw = env?.incoming?.socket?.remoteAddress ?? env?.event?.requestContext?.http?.sourceIp ?? "";
  return raw.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, "$1");
}

const allowed = (hook: HookRecord, address: string) =>
  hook.allow.length === 0 || hook.allow.some((cidr) => (cidr.includes("/") && isIP(address) === 4 ? inSubnet(address, cidr) : cidr === address));

const sameBytes = (a: Buffer, b: Buffer) => a.length === b.length && timingSafeEqual(a, b);
const digest = (s: string | Buffer) => createHash("sha256").update(s).digest();

/** GitHub's signature (`sha256=HEX` of the body's HMAC-SHA256 under the secret), compared in constant time. */
export function signatureValid(secret: string, body: Buffer, header: string | undefined): boolean {
  const m = /^sha256=([0-9a-f]{64})$/i.exec(header ?? "");
  if (!m) return false;
  return sameBytes(Buffer.from(m[1]!.toLowerCase(), "hex"), createHmac("sha256", secret).update(body).digest());
}

type Target = { service: string; image?: string; pull?: boolean };

/** The services a delivery deploys, of those the hook names (all, when it names none) that run in the stack, and to which image. */
function deployTargets(hook: HookRecord, read: Exclude<Delivery, { kind: "ignored" }>, state: StackState): Target[] {
  const services = Object.fromEntries(Object.entries(state.services).map(([n, r]) => [n, { image: r.spec.image }]));
  if (read.kind === "images") return read.pushes.flatMap((p) => pushTargets(services, hook.services, p, hook.tag));
  if (read.kind === "git") {
    const branch = read.ref.replace(/^refs\/(heads|tags)\//, "");
    if (!tagMatches(hook.tag, branch)) return [];
    return (hook.services.length ? hook.services : Object.keys(services)).filter((s) => services[s]).map((service) => ({ service, pull: true }));
  }
  if ((hook.services.length === 0 || hook.services.includes(read.service)) && services[read.service]) return [{ service: read.service, image: read.image }];
  return [];
}

const described = (targets: Target[]) => targets.map((t) => `${t.service} → ${t.image ?? "pulled again"}`).join(", ");

/** Docker Hub waits for an answer on its callback_url (on its own host only): the delivery was taken. */
function answerDockerHub(callback: string, targets: Target[], onError: (e: unknown) => void): void {
  const description = `corral: ${described(targets)}`.slice(0, 255);
  const payload = JSON.stringify({ state: "success", description, context: "corral" });
  void fetch(callback, { method: "POST", headers: { "content-type": "application/json" }, body: payload, signal: AbortSignal.timeout(5000), redirect: "error" }).catch(onError);
}

/** Take up each stack's oldest waiting deploy while the stack is free (only's alone, when given). */
function hookDrain(deps: HookDeps) {
  const log = deps.log;
  /** One waiting deploy, as its hook's owner: its verdict written, and it leaves the queue; false: the stack turned busy, it waits. */
  async function deploy(q: QueuedDeploy, state: StackState): Promise<boolean> {
    const hook = await deps.hooks.get(q.hook);
    const owner = hook ? await deps.principalOf(hook.owner) : undefined;
    const fail = async (why: string) => {
      await deps.hooks.verdict(q.hook, q.delivery, "failed", why);
      await deps.hooks.dequeue(q.key);
    };
    if (!hook || !owner) {
      await fail(hook ? `hook owner ${hook.owner} is gone` : "hook removed");
      return true;
    }
    if (!state.exists || !canSee(owner, state.owner, state.group) || !state.services[q.service]) {
      await fail(`stack ${state.name} has no service ${q.service}`);
      return true;
    }
    try {
      const u: ServiceUpdate = q.image ? { patch: { image: q.image } } : { patch: {}, force: true, pull: true };
      // --confirm-after: confirmed by itself once the new containers ran that long; else it waits for a person
      u.autoConfirmMs = q.confirmAfterMs ?? null;
      // its operations named after its place in the queue: taken again after a crash (before it left the queue), it starts nothing twice
      const answer = await namingOps(deps.opKey, `hook\n${q.key}`, () => deps.update(state, q.service, u, owner, "webhook"));
      const revision = typeof answer.body.revision === "number" ? answer.body.revision : undefined;
      await deps.hooks.verdict(q.hook, q.delivery, "deployed", `${q.service} → ${q.image ?? "pulled again"}${revision ? ` (revision ${revision})` : ""}`, revision);
      await deps.hooks.dequeue(q.key);
      log?.info("webhook deploy", { hook: q.hook, delivery: q.delivery, stack: state.name, service: q.service, image: q.image, revision });
    } catch (e) {
      // the stack turned busy meanwhile (another process's deploy): next time
      if (e instanceof DomainError && e.code === "conflict") return false;
      await fail(e instanceof Error ? e.message : String(e));
    }
    return false; // one deploy per stack per round: the next waits for this one to settle
  }

  return async function drain(only?: string): Promise<void> {
    const queued = await deps.hooks.queued();
    const byStack = new Map<string, QueuedDeploy[]>();
    for (const q of queued) if (!only || q.stack === only) byStack.set(q.stack, [...(byStack.get(q.stack) ?? []), q]);
    for (const [stack, items] of byStack) {
      for (const q of items) {
        const state = await deps.load(stack);
        // busy: an operation runs, or an upgrade waits for its verdict (a person's, or its --confirm-after): the queue waits
        if (state.op?.status === "running" || Object.keys(state.upgrades).length > 0) break;
        if (!(await deploy(q, state))) break;
      }
    }
  };
}

/** The management routes (bearer-authenticated, under /v1): `corral hook create | ls | rm | deliveries`. */
function hookAdminRoutes(deps: HookDeps) {
  const visible = (p: Principal, h: HookRecord) => canSee(p, h.owner, h.group);
  const view = (h: HookRecord, base: string, secret?: string) => ({
    ...h,
    // the registry and Docker Hub cannot sign: the secret is in the URL they call
    url: `${base}/hooks/${h.id}${secret && !SIGNED.has(h.kind) ? `/${secret}` : ""}`,
    ...(secret ? { secret } : {}),
  });
  const base = (c: Context) => new URL(c.req.url).origin;
  const mine = async (c: Context<Env>) => {
    const id = c.req.param("id") ?? "";
    const hook = /^h[A-Za-z0-9_-]{12}$/.test(id) ? await deps.hooks.get(id) : undefined;
    if (!hook || !visible(c.get("principal"), hook)) throw notFound(`no hook ${id.slice(0, 40)}`);
    return hook;
  };

  return new Hono<Env>()
    .post("/hooks", body(createBody), async (c) => {
      const given = c.req.valid("json");
      const p = c.get("principal");
      const state = await deps.load(given.stack);
      if (!state.exists || !canSee(p, state.owner, state.group)) throw notFound(`stack ${given.stack} not found`);
      for (const s of given.services) if (!state.services[s]) throw invalid(`services: stack ${given.stack} has no service ${s}`, "services");
      const cidr = (a: string) => /^\d+\.\d+\.\d+\.\d+\/\d{1,2}$/.test(a) && Number(a.split("/")[1]) <= 32;
      for (const a of given.allow) if (!(isIP(a) || cidr(a))) throw invalid(`allow: "${a.slice(0, 64)}" is not an address or an IPv4 CIDR`, "allow");
      let confirmAfterMs: number | undefined;
      if (given.confirmAfter !== undefined) {
        confirmAfterMs = parseDuration(given.confirmAfter);
        if (confirmAfterMs === undefined || confirmAfterMs <= 0 || confirmAfterMs > 86_400_000) throw invalid(`confirmAfter: "${given.confirmAfter}" is not a duration from 1s to 24h`, "confirmAfter");
      }
      const { record, secret } = await deps.hooks.create({
        stack: given.stack,
        services: given.services,
        kind: given.kind,
        ...(given.tag ? { tag: given.tag } : {}),
        ...(confirmAfterMs ? { confirmAfterMs } : {}),
        allow: given.allow,
        owner: p.name,
        // the stack's group: those who may see the stack see its hooks
        group: state.group ?? primaryGroup(p),
      });
      return c.json(view(record, base(c), secret), 201);
    })
    .get("/hooks", async (c) => c.json((await deps.hooks.list()).filter((h) => visible(c.get("principal"), h)).map((h) => view(h, base(c)))))
    .delete("/hooks/:id", async (c) => {
      const hook = await mine(c);
      await deps.hooks.remove(hook.id);
      return c.json({ id: hook.id, removed: true });
    })
    .get("/hooks/:id/deliveries", async (c) => {
      const hook = await mine(c);
      return c.json(await deps.hooks.deliveries(hook.id));
    });
}

/** Where senders deliver: no bearer token; the signature (or the URL's secret) is the credential. */
function hookReceiveRoutes(deps: HookDeps, drain: (only?: string) => Promise<void>) {
  const log = deps.log;
  /**
   * Hooks with their secrets, kept a minute in this process: checking a
   * forged delivery costs no key unwrap (a KMS call on AWS). A removed hook
   * may take deliveries for that minute more; its queue items then fail
   * ("hook removed") when drained.
   */
  const cache = new Map<string, { until: number; found: { record: HookRecord; secret: string } | undefined }>();
  const revealed = async (id: string) => {
    const now = deps.clock();
    const hit = cache.get(id);
    if (hit && hit.until > now) return hit.found;
    const found = await deps.hooks.reveal(id);
    if (cache.size > 1000) cache.clear();
    cache.set(id, { until: now + 60_000, found });
    return found;
  };

  const refuse = () => new HTTPException(401, { message: "bad or missing signature" });
  /** The hook a delivery is for, when its signature (or the URL's secret) and its source are good; and its raw body. */
  const verified = async (c: Context, urlSecret: string | undefined) => {
    const id = c.req.param("id") ?? "";
    if (!/^h[A-Za-z0-9_-]{12}$/.test(id)) throw refuse();
    const found = await revealed(id);
    // an unknown hook answers as a bad signature does: a sender learns nothing of which hooks exist
    if (!found) throw refuse();
    const { record: hook, secret } = found;
    const raw = Buffer.from(await c.req.arrayBuffer());
    const from = clientAddress(c);
    const header = c.req.header("x-hub-signature-256") ?? c.req.header("x-corral-signature-256");
    const signed = SIGNED.has(hook.kind) ? signatureValid(secret, raw, header) : urlSecret !== undefined && sameBytes(digest(urlSecret), digest(secret));
    if (!signed || !allowed(hook, from)) {
      log?.info("webhook refused", { hook: hook.id, from, why: signed ? "source address not allowed" : "bad or missing signature" });
      throw refuse();
    }
    // counted once verified: a stream of forged requests does not use up a hook's deliveries
    const taken = deps.take ? await deps.take(`hook:${id}`) : { ok: true as const };
    if (!taken.ok) throw new RateLimited(`too many deliveries to this hook: try again in ${Math.ceil(taken.retryAfterMs / 1000)} s`, Math.max(1, Math.ceil(taken.retryAfterMs / 1000)));
    return { hook, raw, from };
  };

  const deliver = async (c: Context, urlSecret: string | undefined) => {
    const { hook, raw, from } = await verified(c, urlSecret);
    let payload: unknown;
    try {
      payload = JSON.parse(raw.toString("utf8"));
    } catch {
      throw invalid("body: not JSON", "body");
    }
    const event = c.req.header("x-github-event");
    const deliveryId = (c.req.header("x-github-delivery") ?? c.req.header("x-corral-delivery") ?? "").slice(0, 128) || digest(raw).toString("hex");
    if (!/^[A-Za-z0-9._:-]{1,128}$/.test(deliveryId)) throw invalid("x-github-delivery: not a delivery id", "x-github-delivery");
    const claim = await deps.hooks.claim(hook.id, deliveryId, from);
    if (claim.settled) return c.json({ delivery: deliveryId, duplicate: true }, 200);
    // the same signed body again under another delivery id, within the window: a replay (a redelivery keeps its id)
    if (claim.first && !(await deps.hooks.firstBody(hook.id, digest(raw).toString("hex"), REPLAY_WINDOW_S))) {
      await deps.hooks.verdict(hook.id, deliveryId, "ignored", `the same body came within ${REPLAY_WINDOW_S / 60} minutes under another delivery id: a replay`);
      return c.json({ delivery: deliveryId, duplicate: true }, 200);
    }
    const read = readDelivery(hook.kind, event, payload, Math.floor(deps.clock() / 1000));
    if ("error" in read) {
      await deps.hooks.verdict(hook.id, deliveryId, "failed", read.error);
      throw invalid(read.error, "body");
    }
    if (read.kind === "ignored") {
      await deps.hooks.verdict(hook.id, deliveryId, "ignored", read.why);
      return c.json({ delivery: deliveryId, verdict: "ignored", why: read.why }, 200);
    }
    const targets = deployTargets(hook, read, await deps.load(hook.stack));
    if (targets.length === 0) {
      const why = read.kind === "generic" ? `this hook deploys no service ${read.service}` : "no service of the hook runs the pushed image (or the tag does not match)";
      await deps.hooks.verdict(hook.id, deliveryId, "ignored", why);
      return c.json({ delivery: deliveryId, verdict: "ignored", why }, 200);
    }
    // the verdict first: a drain in another process may deploy (and say so) as soon as the deploy is queued
    await deps.hooks.verdict(hook.id, deliveryId, "queued", described(targets));
    for (const t of targets) {
      const extra = { ...(t.image ? { image: t.image } : {}), ...(t.pull ? { pull: true } : {}), ...(hook.confirmAfterMs ? { confirmAfterMs: hook.confirmAfterMs } : {}) };
      await deps.hooks.enqueue({ stack: hook.stack, hook: hook.id, delivery: deliveryId, at: claim.at, service: t.service, ...extra });
    }
    if (read.kind === "images" && read.callback) answerDockerHub(read.callback, targets, (e) => log?.info("docker hub callback", { hook: hook.id, error: String(e) }));
    log?.info("webhook delivery", { hook: hook.id, delivery: deliveryId, from, stack: hook.stack, targets: targets.length });
    // at once when the stack is free; else the reconcile tick takes it up once the stack is
    await drain(hook.stack).catch((e: unknown) => log?.error("webhook deploy", { hook: hook.id, error: String(e) }));
    return c.json({ delivery: deliveryId, verdict: "queued", deploys: targets }, 202);
  };

  const limit = bodyLimit({ maxSize: HOOK_BODY_LIMIT, onError: (c) => c.json({ error: "too_large", message: `a delivery is at most ${HOOK_BODY_LIMIT} bytes` }, 413) });
  return new Hono()
    .post("/:id", limit, (c) => deliver(c, undefined))
    .post("/:id/:secret", limit, (c) => deliver(c, c.req.param("secret")));
}

/** A webhook's routes: its management under /v1 (admin), where its sender delivers (receive), and the drain of its stacks' waiting deploys. */
export function hookRoutes(deps: HookDeps) {
  const drain = hookDrain(deps);
  return { admin: hookAdminRoutes(deps), receive: hookReceiveRoutes(deps, drain), drain };
}
