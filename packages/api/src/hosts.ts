import { randomBytes } from "node:crypto";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { z } from "zod";
import { invalid } from "@corral/core";
import { importPublicKey } from "@corral/queue";
import type { HostStore } from "@corral/store";
import { bearerToken, hashToken, hostTokenPattern, sameHash } from "./auth.js";
import { queryGuard } from "./query.js";

export const hostIdPattern = /^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$/;
/** One-time join tokens read `join.ID.RANDOM`. */
export const joinTokenPattern = /^join\.([a-zA-Z0-9][a-zA-Z0-9_-]{0,62})\.[A-Za-z0-9_-]+$/;
export const newJoinToken = (id: string) => `join.${id}.${randomBytes(24).toString("base64url")}`;

const registerBody = z
  .object({
    engine: z.string().max(100).default(""),
    containers: z.number().int().min(0).max(1_000_000).default(0),
    address: z.string().max(100).optional(),
    /** The Ed25519 public key (SPKI DER, base64) the host will sign its reports with; its private half never leaves the host. */
    publicKey: z.string().min(1).max(200),
  })
  .strict();

export interface RegistrationDeps {
  hosts: HostStore;
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
  clock?: () => number;
}

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
  const app = new Hono();
  app.post("/:id/register", queryGuard(), bodyLimit({ maxSize: 16 * 1024, onError: (c) => c.json({ error: "too_large", message: "a registration is at most 16 KiB" }, 413) }), async (c) => {
    const id = c.req.param("id");
    if (!hostIdPattern.test(id)) throw invalid(`invalid host id "${id}"`, "id");
    const token = bearerToken(c.req.header("authorization"));
    if (!token) throw new HTTPException(401, { message: "a bearer token is required: the admin's, a join token from 'corral host add', or the host's own" });
    const given = hashToken(token);
    const body = registerBody.parse(await c.req.json().catch(() => ({})));
    try {
      importPublicKey(body.publicKey);
    } catch {
      throw invalid("publicKey: not an Ed25519 public key (SPKI DER, base64)", "publicKey");
    }
    const allowed =
      sameHash(given, adminHash) ||
      (hostTokenPattern.exec(token)?.[1] === id && sameHash(given, (await deps.hosts.tokenHash(id)) ?? "")) ||
      (joinTokenPattern.exec(token)?.[1] === id && (await deps.hosts.consumeJoin(id, given, clock())));
    if (!allowed) throw new HTTPException(403, { message: `this token may not register host ${id}` });
    const queueUrl = await deps.hostQueue(id);
    const hostToken = `host.${id}.${randomBytes(24).toString("base64url")}`;
    await deps.hosts.register(
      { id, queueUrl, lastSeen: clock(), engine: body.engine, containers: body.containers, ...(body.address ? { address: body.address } : {}) },
      hashToken(hostToken),
      body.publicKey,
    );
    return c.json({ queueUrl, controlQueueUrl: deps.controlQueueUrl, sqs: deps.sqs, visibilitySeconds: deps.visibilitySeconds, hostToken, controlKey: deps.controlKey, bindRoots: deps.bindRoots, portRange: deps.portRange });
  });
  return app;
}
