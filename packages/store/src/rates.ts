import { ConditionalCheckFailedException, UpdateItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";

/**
 * Request counts per caller and fixed window, in the table, so that every
 * API process (every Lambda instance) counts the same: one conditional
 * update per request, refused once the window holds `limit`. Items expire
 * (TTL) a window after theirs ends.
 */
export class RateStore {
  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Count one request of `scope`; past `limit` in this window, not counted, with how long until the next window. */
  async take(scope: string, limit: number, windowMs: number): Promise<{ ok: true } | { ok: false; retryAfterMs: number }> {
    const now = this.clock();
    const window = Math.floor(now / windowMs);
    try {
      await this.db.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { pk: { S: `RATE#${scope}` }, sk: { S: String(window) } },
          UpdateExpression: "ADD n :one SET expiresAt = :expires",
          ConditionExpression: "attribute_not_exists(n) OR n < :limit",
          ExpressionAttributeValues: { ":one": { N: "1" }, ":limit": { N: String(limit) }, ":expires": { N: String(Math.ceil(((window + 2) * windowMs) / 1000)) } },
        }),
      );
      return { ok: true };
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException) return { ok: false, retryAfterMs: (window + 1) * windowMs - now };
      throw e;
    }
  }
}

/**
 * The same counts in this process's memory, for a control plane that is the
 * only one answering (the embedded server): no write per request. A restart
 * starts the window's count again.
 */
export class MemoryRates {
  /** scope → [window, count] */
  readonly #counts = new Map<string, [number, number]>();

  constructor(private readonly clock: () => number = Date.now) {}

  async take(scope: string, limit: number, windowMs: number): Promise<{ ok: true } | { ok: false; retryAfterMs: number }> {
    const now = this.clock();
    const window = Math.floor(now / windowMs);
    const key = `${windowMs}:${scope}`;
    const [at, n] = this.#counts.get(key) ?? [window, 0];
    const count = at === window ? n : 0;
    if (count >= limit) return { ok: false, retryAfterMs: (window + 1) * windowMs - now };
    if (this.#counts.size > 100_000) this.#prune(window); // (scopes are tokens and webhook ids: a few, unless something floods)
    this.#counts.set(key, [window, count + 1]);
    return { ok: true };
  }

  #prune(window: number) {
    for (const [k, [at]] of this.#counts) if (at < window) this.#counts.delete(k);
    if (this.#counts.size > 100_000) this.#counts.clear();
  }
}
