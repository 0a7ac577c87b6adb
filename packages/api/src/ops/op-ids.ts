import { AsyncLocalStorage } from "node:async_hooks";
import { createHmac, randomBytes } from "node:crypto";

/**
 * A new operation's id: named after the request's Idempotency-Key when it has one (the same request again, after
 * its server died before answering, starts nothing twice: the decider knows the id), else made up.
 */
export const newOpId = () => opNames.getStore()?.() ?? `op-${Date.now().toString(36)}${randomBytes(3).toString("hex")}`;

const opNames = new AsyncLocalStorage<() => string>();

/**
 * Run `fn` with the operations it starts named after `seed` (a request's
 * Idempotency-Key under its caller, a queued webhook deploy's key): the
 * n-th one `op-` and an HMAC of the seed and n under `key`. Run again with
 * the same seed (after a crash), it names them alike, and the decider
 * starts none of them twice.
 */
export function namingOps<T>(key: Buffer, seed: string, fn: () => Promise<T>): Promise<T> {
  let n = 0;
  return opNames.run(() => `op-${createHmac("sha256", key).update(`op\n${seed}\n${n++}`).digest("hex").slice(0, 14)}`, fn);
}
