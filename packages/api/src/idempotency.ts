import { createHmac } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import type { IdempotencyStore } from "@corral/store";
import type { Principal } from "./auth.js";
import { errorBody } from "./errors.js";
import { namingOps } from "./ops/op-ids.js";

type Env = { Variables: { principal: Principal; credential?: boolean } };

/** A route whose answer holds a token or a secret calls this: its answer is never stored, so never replayed. */
export const holdsCredential = (c: Context<Env>) => c.set("credential", true);

/** Key names that carry a credential in an answer: a safety net for routes that did not say so. */
const credentialKey = /token|secret|password|privatekey|^value$/i;

function namesCredential(json: unknown): boolean {
  if (Array.isArray(json)) return json.some(namesCredential);
  if (json === null || typeof json !== "object") return false;
  return Object.entries(json).some(([k, v]) => credentialKey.test(k) || namesCredential(v));
}

const looksLikeCredential = (text: string) => {
  try {
    return namesCredential(JSON.parse(text));
  } catch {
    return false;
  }
};

/**
 * `Idempotency-Key` on POST and DELETE: the first answer is kept and given
 * again for a repeated key (a CI job or chatops bot retrying after a timeout).
 *
 * A request is known by an HMAC-SHA256 of its method, path and body under a
 * server key (`key`), so the table holds nothing guessable of a body (a
 * secret's value, a password). An answer that holds a credential (a route
 * called `holdsCredential`, or the answer has a key such as `token`) is not
 * kept: a repeat gets 409 `not_replayable` saying the request was done, and
 * the caller asks for a new credential (e.g. `corral user token NAME`).
 * Handing the same token out twice would mean storing it; re-deriving it
 * would mean tokens that can be computed from the table and a key.
 */
export const idempotency = ({ store, key }: { store: IdempotencyStore; key: Buffer }): MiddlewareHandler<Env> =>
  async function idempotency(c, next) {
    const header = c.req.header("idempotency-key");
    if (!header || (c.req.method !== "POST" && c.req.method !== "DELETE")) return next();
    if (header.length > 200) return c.json(errorBody("invalid_request", "Idempotency-Key is at most 200 characters"), 400);
    const scope = c.get("principal").scope;
    const body = await c.req.raw.clone().arrayBuffer();
    const fingerprint = createHmac("sha256", key).update(`${c.req.method} ${c.req.path}\n`).update(Buffer.from(body)).digest("hex");
    const claim = await store.claim(scope, header, fingerprint);
    if (claim.kind === "done") {
      return c.body(claim.response.body, claim.response.status as 200, { "content-type": "application/json", "idempotent-replayed": "true" });
    }
    if (claim.kind === "withheld") {
      const message =
        `a request with this Idempotency-Key was done (it answered ${claim.status}); ` +
        "its answer held a token or a secret, which corral does not keep, so it cannot be given again: ask for a new one";
      return c.json(errorBody("not_replayable", message), 409);
    }
    if (claim.kind === "pending") {
      const seconds = Math.max(1, Math.ceil(claim.retryAfterMs / 1000));
      c.header("retry-after", String(seconds));
      return c.json(errorBody("conflict", `a request with this Idempotency-Key is still in progress: ask again in ${seconds} s`), 409);
    }
    if (claim.kind === "mismatch") return c.json(errorBody("invalid_request", "this Idempotency-Key was used for a different request"), 422);
    // the operations this request starts are named after its key: a repeat of it (its server died before answering) names them alike
    await namingOps(key, `${scope}\n${header}`, next);
    if (c.res.status >= 500) {
      await store.release(scope, header);
      return;
    }
    const text = await c.res.clone().text();
    if (c.get("credential") || looksLikeCredential(text)) await store.completeWithheld(scope, header, c.res.status);
    else await store.complete(scope, header, { status: c.res.status, body: text });
  };
