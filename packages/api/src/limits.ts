import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { errorBody } from "./errors.js";

const KiB = 1024;
const MiB = 1024 * KiB;

/** Request-body limits in bytes, by route; anything not named gets `other`. */
export interface BodyLimits {
  /** `up` and `up --render`: compose and rancher-compose documents. */
  compose: number;
  /** A secret's value (base64, at most 512 KiB decoded). */
  secret: number;
  /** A batch of session output from an agent. */
  chunks: number;
  /** exec -i input. */
  input: number;
  other: number;
}

export const defaultBodyLimits: BodyLimits = { compose: 1 * MiB, secret: 1 * MiB, chunks: 8 * MiB, input: 512 * KiB, other: 64 * KiB };

const human = (n: number) => (n >= MiB ? `${n / MiB} MiB` : `${n / KiB} KiB`);

function limitFor(limits: BodyLimits, path: string): number {
  if (/^\/v1\/stacks\/[^/]+\/(up|render)$/.test(path)) return limits.compose;
  if (/^\/v1\/secrets\/[^/]+$/.test(path)) return limits.secret;
  if (/^\/v1\/hosts\/[^/]+\/sessions\/[^/]+\/chunks$/.test(path)) return limits.chunks;
  if (/^\/v1\/sessions\/[^/]+\/input$/.test(path)) return limits.input;
  return limits.other;
}

/**
 * Every request body is bounded (413 with a JSON error): by its
 * Content-Length before anything is read, or while it streams in. Runs before
 * anything reads the body (the idempotency fingerprint, the route).
 */
export const bodyLimits = (limits: BodyLimits = defaultBodyLimits): MiddlewareHandler => {
  const byLimit = new Map<number, MiddlewareHandler>();
  const middleware = (maxSize: number) => {
    let m = byLimit.get(maxSize);
    if (!m) {
      m = bodyLimit({
        maxSize,
        onError: (c) => c.json(errorBody("too_large", `the request body is larger than ${human(maxSize)}, the limit for ${c.req.method} ${c.req.path}`), 413),
      });
      byLimit.set(maxSize, m);
    }
    return m;
  };
  return async function bodyLimits(c, next) {
    return middleware(limitFor(limits, c.req.path))(c, next);
  };
};

/**
 * How many follows (long-polls, event streams) one token may hold at once.
 * `enter` answers a release function, or throws 429 when the token holds
 * `max` already. In-process: on AWS each function instance counts its own.
 */
export function followLimiter(max: number) {
  const held = new Map<string, number>();
  return {
    enter(scope: string): () => void {
      const n = held.get(scope) ?? 0;
      if (n >= max) throw new HTTPException(429, { message: `this token already holds ${max} follows (logs -f, events -f, long-polls): end one, or try again in a moment` });
      held.set(scope, n + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const left = (held.get(scope) ?? 1) - 1;
        if (left <= 0) held.delete(scope);
        else held.set(scope, left);
      };
    },
    /** Follows held now by a token (for tests and diagnostics). */
    held: (scope: string) => held.get(scope) ?? 0,
  };
}

/** A 429 that says when to come back (Retry-After, seconds). */
export class RateLimited extends HTTPException {
  constructor(
    message: string,
    readonly retryAfterS: number,
  ) {
    super(429, { message });
  }
}

/** The default: mutating requests one token may make per minute (every process counting together). */
export const DEFAULT_MUTATIONS_PER_MINUTE = 300;

/**
 * Rate limits per token on the mutating routes (POST, PUT, PATCH, DELETE):
 * at most `limit` per window, counted in the table by `take`; past it, 429
 * with Retry-After. Hosts' own traffic (heartbeats, session output) is not
 * counted: it is the agents', bounded by their own pace.
 */
type Take = (scope: string) => Promise<{ ok: true } | { ok: false; retryAfterMs: number }>;
export const mutationLimit = (take: Take): MiddlewareHandler<{ Variables: { principal: { scope: string; hostId?: string; name: string } } }> =>
  async function mutationLimit(c, next) {
    const p = c.get("principal");
    if (c.req.method === "GET" || c.req.method === "HEAD" || p.hostId) return next();
    const r = await take(p.scope);
    if (!r.ok) {
      const s = Math.max(1, Math.ceil(r.retryAfterMs / 1000));
      throw new RateLimited(`too many changes from this token: try again in ${s} s`, s);
    }
    await next();
  };
