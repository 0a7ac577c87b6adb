import { createHash } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import type { IdempotencyStore } from "@corral/store";
import type { Principal } from "./auth.js";
import { errorBody } from "./errors.js";

/**
 * `Idempotency-Key` on POST and DELETE: the first answer is kept and given
 * again for a repeated key (a CI job or chatops bot retrying after a timeout).
 */
export const idempotency = ({ store }: { store: IdempotencyStore }): MiddlewareHandler<{ Variables: { principal: Principal } }> =>
  async function idempotency(c, next) {
    const key = c.req.header("idempotency-key");
    if (!key || (c.req.method !== "POST" && c.req.method !== "DELETE")) return next();
    if (key.length > 200) return c.json(errorBody("invalid_request", "Idempotency-Key is at most 200 characters"), 400);
    const scope = c.get("principal").scope;
    const body = await c.req.raw.clone().text();
    const fingerprint = createHash("sha256").update(`${c.req.method} ${c.req.path}\n${body}`).digest("hex");
    const claim = await store.claim(scope, key, fingerprint);
    if (claim.kind === "done") {
      return c.body(claim.response.body, claim.response.status as 200, { "content-type": "application/json", "idempotent-replayed": "true" });
    }
    if (claim.kind === "pending") return c.json(errorBody("conflict", "a request with this Idempotency-Key is still in progress"), 409);
    if (claim.kind === "mismatch") return c.json(errorBody("invalid_request", "this Idempotency-Key was used for a different request"), 422);
    await next();
    if (c.res.status >= 500) {
      await store.release(scope, key);
      return;
    }
    const text = await c.res.clone().text();
    await store.complete(scope, key, { status: c.res.status, body: text });
  };
