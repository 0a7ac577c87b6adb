import { randomBytes } from "node:crypto";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { createFactory, createMiddleware } from "hono/factory";
import { HTTPException } from "hono/http-exception";
import { z } from "zod";
import { isIP } from "node:net";
import { conflict, type Logger, hostLabelProblem, hostState, invalid, lastHeard, MAX_HOST_LABELS, MAX_WANTED, notFound, wantedOnHost, type StackState, type WantedAnswer } from "@corral/core";
import { CONTROL, importPublicKey, type QueueSender } from "@corral/queue";
import type { EventStore, HostAdminState, HostRecord, HostStore } from "@corral/store";
import { adminOnly, bearerToken, hashToken, hostTokenPattern, sameHash } from "../auth.js";
import type { Env } from "../env.js";
import { holdsCredential } from "../idempotency.js";
import { flagParam, query, queryGuard } from "../query.js";
import { body, params } from "../validate.js";

export const hostIdPattern = /^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$/;
/** One-time join tokens read `join.ID.RANDOM`. */
export const joinTokenPattern = /^join\.([a-zA-Z0-9][a-zA-Z0-9_-]{0,62})\.[A-Za-z0-9_-]+$/;
export const newJoinToken = (id: string) => `join.${id}.${randomBytes(24).toString("base64url")}`;

const registerBody = z
  .object({
    engine: z.string().max(100).default(""),
    containers: z.number().int().min(0).max(1_000_000).default(0),
    /** Where users reach the host's published ports: an IPv4 or IPv6 address. */
    address: z
      .string()
      .max(45)
      .refine((a) => isIP(a) !== 0, "address: not an IP address (the address users reach the host's published ports on)")
      .optional(),
    /** The Ed25519 public key (SPKI DER, base64) the host will sign its reports with; its private half never leaves the host. */
    publicKey: z.string().min(1).max(200),
  })
  .strict();

export interface RegistrationDeps {
  hosts: HostStore;
  /** The stacks, to find the steps a host's agent, started again, may have lost; and the control queue, to have them re-sent. */
  store: Pick<EventStore, "stackNames" | "load">;
  sender: Pick<QueueSender, "send">;
  log?: Logger;
  adminToken: string;
  /** Creates (idempotently) the queue of a host and returns its URL. */
  hostQueue: (hostId: string) => Promise<string>;
  controlQueueUrl: string;
  sqs: { endpoint?: string; region: string; socketPath?: string };
  visibilitySeconds: number;
  /** The control plane's public key (SPKI DER, base64): what the agent checks every message on its queue against. */
  controlKey: string;
  /** The site's bind roots: the agent checks a bind's real path (symlinks resolved) against them on its host, where the API cannot. */
  bindRoots: string[];
  /** The site's port range: the agent reserves it against the kernel's ephemeral ports (ip_local_reserved_ports). */
  portRange: [number, number];
  /** A host not heard from for this long is disconnected (default 30 s); agents heartbeat three times as often. */
  hostStaleMs?: number;
  /** How often agents reconcile their host against what the control plane wants (unset: the agent's default, 30 s). */
  agentReconcileMs?: number;
  /** How long a corral container nobody wants stays before an agent removes it (unset: the agent's default, 60 s). */
  agentOrphanGraceMs?: number;
  clock?: () => number;
}

export const DEFAULT_HOST_STALE_MS = 30_000;
/** How often an agent heartbeats: three beats to a timeout, so that one lost beat does not disconnect it; at most every 10 s. */
export const heartbeatEvery = (staleMs = DEFAULT_HOST_STALE_MS) => Math.max(100, Math.min(10_000, Math.floor(staleMs / 3)));

/**
 * `POST /v1/hosts/:id/register`, with its own authentication: the admin, a
 * one-time join token made for this host id (used up here), or the host's
 * current token (an agent re-registering). Anyone else, another host's token
 * included, cannot take over a host id. The answer carries the host's new
 * token, its queue and the control plane's public key.
 */
export function registrationRoutes(deps: RegistrationDeps) {
  const clock = deps.clock ?? Date.now;
  const adminHash = hashToken(deps.adminToken);
  const limit = bodyLimit({ maxSize: 16 * 1024, onError: (c) => c.json({ error: "too_large", message: "a registration is at most 16 KiB" }, 413) });
  /** A host id, and a bearer token of some kind (which one may register it is checked once the body is). */
  const registrant = createMiddleware<{ Variables: { token: string } }>(async (c, next) => {
    const id = c.req.param("id") ?? "";
    if (!hostIdPattern.test(id)) throw invalid(`invalid host id "${id}"`, "id");
    const token = bearerToken(c.req.header("authorization"));
    if (!token) throw new HTTPException(401, { message: "a bearer token is required: the admin's, a join token from 'corral host add', or the host's own" });
    c.set("token", token);
    await next();
  });
  return new Hono()
    .post("/:id/register", queryGuard(), limit, registrant, body(registerBody), async (c) => {
      const id = c.req.param("id");
      const token = c.get("token");
      const given = hashToken(token);
      const registration = c.req.valid("json");
      try {
        importPublicKey(registration.publicKey);
      } catch {
        throw invalid("publicKey: not an Ed25519 public key (SPKI DER, base64)", "publicKey");
      }
      const join = joinTokenPattern.exec(token)?.[1] === id ? await deps.hosts.consumeJoin(id, given, clock()) : undefined;
      const allowed = sameHash(given, adminHash) || (hostTokenPattern.exec(token)?.[1] === id && sameHash(given, (await deps.hosts.tokenHash(id, true)) ?? "")) || join !== undefined;
      if (!allowed) throw new HTTPException(403, { message: `this token may not register host ${id}` });
      const queueUrl = await deps.hostQueue(id);
      const hostToken = `host.${id}.${randomBytes(24).toString("base64url")}`;
      await deps.hosts.register(
        { id, queueUrl, lastSeen: clock(), engine: registration.engine, containers: registration.containers, ...(registration.address ? { address: registration.address } : {}) },
        hashToken(hostToken),
        registration.publicKey,
        join ? { labels: join.labels } : {},
      );
      // an agent starting again may have died holding steps: they are re-sent now, not after the resend timeout
      await redrive(deps, id).catch((e: unknown) => deps.log?.error("steps of a host started again not re-sent", { host: id, error: String(e) }));
      return c.json({
        queueUrl,
        controlQueueUrl: deps.controlQueueUrl,
        sqs: deps.sqs,
        visibilitySeconds: deps.visibilitySeconds,
        hostToken,
        controlKey: deps.controlKey,
        bindRoots: deps.bindRoots,
        portRange: deps.portRange,
        heartbeatMs: heartbeatEvery(deps.hostStaleMs),
        ...(deps.agentReconcileMs !== undefined ? { reconcileMs: deps.agentReconcileMs } : {}),
        ...(deps.agentOrphanGraceMs !== undefined ? { orphanGraceMs: deps.agentOrphanGraceMs } : {}),
      });
    });
}


/**
 * Tell the controller, for each stack with steps planned on `host` and not
 * reported, that the host's agent started again: it re-sends them at once
 * (see hostStartedSchema). One read of every stack, at a registration.
 */
async function redrive(deps: RegistrationDeps, host: string): Promise<void> {
  const waiting: string[] = [];
  for (const stack of await deps.store.stackNames()) {
    const state = await deps.store.load(stack);
    if (state.op?.status === "running" && Object.values(state.steps).some((r) => r.status === "planned" && r.step.host === host)) waiting.push(stack);
  }
  const at = (deps.clock ?? Date.now)();
  if (waiting.length === 0) return;
  await deps.sender.send(
    deps.controlQueueUrl,
    waiting.map((stack) => ({ body: { kind: "host-started" as const, stack, host }, group: stack, dedupId: `host-started#${stack}#${host}#${at}`, to: CONTROL })),
  );
}

/** Host labels in a request: bounded in number, each key and value checked (corral's io.corral.* keys refused). */
const labelsSchema = z
  .record(z.string().max(100), z.string().max(100))
  .superRefine((labels, ctx) => {
    const keys = Object.keys(labels);
    if (keys.length > MAX_HOST_LABELS) ctx.addIssue({ code: "custom", message: `at most ${MAX_HOST_LABELS} labels` });
    for (const k of keys) {
      const problem = hostLabelProblem(k, labels[k]!);
      if (problem) ctx.addIssue({ code: "custom", message: problem, path: [k] });
    }
  });
const joinBody = z.object({ labels: labelsSchema.default({}) }).strict();
const labelBody = z
  .object({
    set: labelsSchema.default({}),
    remove: z
      .array(z.string().max(100))
      .max(MAX_HOST_LABELS)
      .default([])
      .superRefine((keys, ctx) => {
        for (const k of keys) {
          const problem = hostLabelProblem(k, "");
          if (problem) ctx.addIssue({ code: "custom", message: problem });
        }
      }),
  })
  .strict()
  .refine((b) => Object.keys(b.set).length + b.remove.length > 0, "set or remove at least one label")
  .refine((b) => !b.remove.some((k) => k in b.set), "a label is either set or removed, not both");
const heartbeatBody = z.object({ engine: z.string().max(100).default(""), containers: z.number().int().min(0).max(1_000_000).default(0) }).strict();

export interface HostRoutesDeps {
  hosts: HostStore;
  /** How many containers of any stack the control plane has on each host (by host id). */
  containersByHost: () => Promise<Map<string, number>>;
  /** Deletes a host's queue (and its dead-letter queue): what a removed host's agent read from stops existing. */
  removeHostQueue?: (queueUrl: string) => Promise<void>;
  /** Every stack's state (removed ones want nothing): what the control plane wants on a host. A load that fails fails the answer. */
  stackStates?: () => Promise<StackState[]>;
  hostStaleMs?: number;
  /** When this control plane started (see lastHeard). */
  heardSince?: number;
  /** How long a join token stays good. */
  joinTokenMs: number;
  clock: () => number;
}

/** A host as `corral host ls` shows it: the admin sees all of it, a user which hosts there are and their state. */
export function hostView(h: HostRecord, now: number, staleMs: number, containers: number, admin: boolean, heardSince?: number) {
  const state = hostState(h.state, lastHeard(h.lastSeen, heardSince), now, staleMs);
  if (!admin) return { id: h.id, name: h.name, state };
  return { id: h.id, name: h.name, state, address: h.address ?? "", labels: h.labels, containers, lastSeen: new Date(h.lastSeen).toISOString(), engine: h.engine };
}

/**
 * The hosts under `/v1/hosts` (behind bearer auth): join tokens, the list,
 * labels, drain / activate / deactivate and removal, all the admin's but the
 * list (users see ids, names and states) and a host's own heartbeat.
 */
export function hostRoutes(deps: HostRoutesDeps) {
  const staleMs = deps.hostStaleMs ?? DEFAULT_HOST_STALE_MS;

  /** The host `ref` names: by id, else by name. */
  async function find(ref: string): Promise<HostRecord> {
    if (!hostIdPattern.test(ref)) throw invalid(`invalid host name "${ref.slice(0, 80)}" (letters, digits, '_' and '-', at most 63)`, "id");
    const host = (await deps.hosts.get(ref)) ?? (await deps.hosts.list()).find((h) => h.name === ref);
    if (!host) throw notFound(`host ${ref} not found ('corral host ls' lists them)`);
    return host;
  }
  const newHostId = params((p) => {
    const id = p.id ?? "";
    if (!hostIdPattern.test(id)) throw invalid(`invalid host name "${id.slice(0, 80)}" (letters, digits, '_' and '-', at most 63, starting with a letter or digit)`, "id");
    return { id };
  });
  /** The host `:id` names (see find). */
  const found = createMiddleware<{ Variables: { host: HostRecord } }>(async (c, next) => {
    c.set("host", await find(c.req.param("id") ?? ""));
    await next();
  });
  /** drain, activate, deactivate: one handler, made for each state. */
  const setState = (state: HostAdminState) =>
    createFactory<Env>().createHandlers(async (c) => {
      const host = await find(c.req.param("id") ?? "");
      if (!(await deps.hosts.setState(host.id, state))) throw notFound(`host ${host.id} not found`);
      return c.json({ id: host.id, name: host.name, state: hostState(state, lastHeard(host.lastSeen, deps.heardSince), deps.clock(), staleMs) });
    });

  return new Hono<Env>()
    .get("/", async (c) => {
      const now = deps.clock();
      const admin = c.get("principal").admin;
      const counts = admin ? await deps.containersByHost() : new Map<string, number>();
      const list = (await deps.hosts.list()).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      return c.json(list.map((h) => hostView(h, now, staleMs, counts.get(h.id) ?? 0, admin, deps.heardSince)));
    })
    // a one-time token for a new host: 'corral host add NAME' prints it with the command to run on the node;
    // for a registered host, a token to join it again (a lost token, a new machine): its labels and state are kept
    .post("/:id/join", adminOnly(), newHostId, body(joinBody), async (c) => {
      const { id } = c.req.valid("param");
      const { labels } = c.req.valid("json");
      const existing = await deps.hosts.get(id);
      if (existing && Object.keys(labels).length > 0) throw conflict(`host ${id} is registered already: change its labels with 'corral host label ${id} KEY=VALUE'`);
      const token = newJoinToken(id);
      const expiresAt = deps.clock() + deps.joinTokenMs;
      await deps.hosts.createJoin(id, hashToken(token), expiresAt, labels);
      holdsCredential(c);
      return c.json({ id, token, expiresAt: new Date(expiresAt).toISOString(), rejoin: existing !== undefined }, 201);
    })
    .post("/:id/labels", adminOnly(), found, body(labelBody), async (c) => {
      const host = c.get("host");
      const { set, remove } = c.req.valid("json");
      const labels = await deps.hosts.updateLabels(host.id, set, remove, (l) => {
        if (Object.keys(l).length > MAX_HOST_LABELS) throw invalid(`host ${host.id} would carry ${Object.keys(l).length} labels: at most ${MAX_HOST_LABELS}`, "set");
      });
      if (!labels) throw notFound(`host ${host.id} not found`);
      return c.json({ id: host.id, name: host.name, labels });
    })
    .post("/:id/activate", adminOnly(), ...setState("active"))
    .post("/:id/drain", adminOnly(), ...setState("draining"))
    .post("/:id/deactivate", adminOnly(), ...setState("inactive"))
    /**
     * Remove a host: refused while any stack has a container on it, unless
     * `force` and the host is draining or inactive (what ran there is the
     * decider's to move or forget). Its token, signing key and queue go.
     */
    .delete("/:id", adminOnly(), query({ force: flagParam.optional() }), async (c) => {
      const host = await find(c.req.param("id"));
      const force = c.req.valid("query").force ?? false;
      const count = (await deps.containersByHost()).get(host.id) ?? 0;
      const containers = `${count} container${count > 1 ? "s" : ""}`;
      if (count > 0 && !force) {
        const how = `move them off ('corral host drain ${host.id}') or remove them first; '--force' removes a draining or inactive host anyway`;
        throw conflict(`host ${host.id} has ${containers} of corral's stacks: ${how}`);
      }
      if (count > 0 && host.state === "active") {
        throw conflict(`host ${host.id} is active and has ${containers}: drain it ('corral host drain ${host.id}') or deactivate it before 'host rm --force'`);
      }
      if (!(await deps.hosts.remove(host.id))) throw notFound(`host ${host.id} not found`);
      if (host.queueUrl) await deps.removeHostQueue?.(host.queueUrl);
      return c.json({ id: host.id, name: host.name, removed: true, containers: count });
    })
    /**
     * What the control plane wants on this host, for its agent's reconcile:
     * per stack, the containers it keeps there (see wantedOnHost). The host's
     * own token (the scope middleware lets no other host's through) or the
     * admin's. Cut at MAX_WANTED containers, and then said incomplete: an
     * agent removes nothing on a partial answer.
     */
    .get("/:id/wanted", async (c) => {
      const id = c.req.param("id");
      if (!hostIdPattern.test(id)) throw invalid(`invalid host id "${id.slice(0, 80)}" (letters, digits, '_' and '-', at most 63)`, "id");
      if (!deps.stackStates) throw new HTTPException(501, { message: "this control plane cannot say what it wants on a host" });
      if (!(await deps.hosts.get(id))) throw notFound(`host ${id} is not registered`);
      const answer: WantedAnswer = { host: id, complete: true, stacks: [] };
      let count = 0;
      for (const state of await deps.stackStates()) {
        const containers = wantedOnHost(state, id);
        if (containers.length === 0) continue;
        if (count + containers.length > MAX_WANTED) {
          answer.complete = false;
          break;
        }
        count += containers.length;
        answer.stacks.push({ stack: state.name, containers });
      }
      return c.json(answer);
    })
    .post("/:id/heartbeat", body(heartbeatBody), async (c) => {
      const id = c.req.param("id");
      const beat = c.req.valid("json");
      if (!(await deps.hosts.heartbeat(id, deps.clock(), beat.engine, beat.containers))) throw notFound(`host ${id} is not registered`);
      return c.json({ ok: true });
    });
}
