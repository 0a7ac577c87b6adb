import {
  ConditionalCheckFailedException,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
  type DynamoDBClient,
} from "@aws-sdk/client-dynamodb";

export interface StoredResponse {
  status: number;
  body: string;
}

/**
 * `withheld`: the first request was answered, but its answer held a
 * credential (a token, a secret), which is never stored: only its status is.
 */
export type Claim = { kind: "claimed" } | { kind: "done"; response: StoredResponse } | { kind: "withheld"; status: number } | { kind: "pending"; retryAfterMs: number };

const keyIsFree = "attribute_not_exists(pk)";
const DAY = 24 * 60 * 60 * 1000;
/**
 * How long a claim with no answer holds its key: longer than a request takes. Past it, the request is taken
 * to have died with its server, and a repeat takes the key over (what it did, if anything, the repeat finds:
 * its operation ids come from the key, and the decider decides an operation once).
 */
export const CLAIM_LEASE_MS = 30_000;

/**
 * Idempotency keys: the first request with a key claims it; its answer is kept
 * and returned to every repeat. Items carry `expiresAt` (AWS TTL deletes
 * them; reads ignore expired ones, since dynalite has no TTL). The
 * fingerprint is the caller's keyed MAC of the request, never its text.
 */
export class IdempotencyStore {
  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
    private readonly clock: () => number = Date.now,
    private readonly leaseMs = CLAIM_LEASE_MS,
    /**
     * This process is the only one answering requests, since this time (the embedded server, which holds its
     * data folder alone): a claim made before it was made by a process that is gone, and is taken over at once.
     */
    private readonly soleSince?: number,
  ) {}

  #key(scope: string, key: string) {
    return { pk: { S: `IDEM#${scope}` }, sk: { S: key } };
  }

  async claim(scope: string, key: string, fingerprint: string): Promise<Claim | { kind: "mismatch" }> {
    const now = this.clock();
    try {
      await this.db.send(
        new PutItemCommand({
          TableName: this.table,
          Item: this.#claimItem(scope, key, fingerprint, now),
          ConditionExpression: `${keyIsFree} OR expiresAt < :now`,
          ExpressionAttributeValues: { ":now": { N: String(Math.floor(now / 1000)) } },
        }),
      );
      return { kind: "claimed" };
    } catch (e) {
      if (!(e instanceof ConditionalCheckFailedException)) throw e;
    }
    const item = (await this.db.send(new GetItemCommand({ TableName: this.table, Key: this.#key(scope, key), ConsistentRead: true }))).Item;
    if (item?.fingerprint?.S !== fingerprint) return { kind: "mismatch" };
    if (!item?.status?.N) {
      const claimedAt = Number(item.claimedAt?.N ?? 0);
      const left = claimedAt + this.leaseMs - now;
      const orphaned = this.soleSince !== undefined && claimedAt < this.soleSince;
      if (left > 0 && !orphaned) return { kind: "pending", retryAfterMs: left };
      return (await this.#takeOver(scope, key, fingerprint, item.claimedAt?.N, now)) ? { kind: "claimed" } : { kind: "pending", retryAfterMs: this.leaseMs };
    }
    if (item.withheld?.BOOL) return { kind: "withheld", status: Number(item.status.N) };
    return { kind: "done", response: { status: Number(item.status.N), body: item.body?.S ?? "" } };
  }

  #claimItem(scope: string, key: string, fingerprint: string, now: number) {
    return { ...this.#key(scope, key), fingerprint: { S: fingerprint }, claimedAt: { N: String(now) }, expiresAt: { N: String(Math.floor((now + DAY) / 1000)) } };
  }

  /** A claim past its lease, still unanswered, is taken over by one repeat (the claim it saw, conditionally): true if this one. */
  async #takeOver(scope: string, key: string, fingerprint: string, seen: string | undefined, now: number): Promise<boolean> {
    try {
      await this.db.send(
        new PutItemCommand({
          TableName: this.table,
          Item: this.#claimItem(scope, key, fingerprint, now),
          ConditionExpression: `attribute_not_exists(#status) AND ${seen === undefined ? "attribute_not_exists(claimedAt)" : "claimedAt = :seen"}`,
          ExpressionAttributeNames: { "#status": "status" },
          ...(seen === undefined ? {} : { ExpressionAttributeValues: { ":seen": { N: seen } } }),
        }),
      );
      return true;
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException) return false;
      throw e;
    }
  }

  async complete(scope: string, key: string, response: StoredResponse): Promise<void> {
    await this.db.send(
      new UpdateItemCommand({
        TableName: this.table,
        Key: this.#key(scope, key),
        UpdateExpression: "SET #status = :status, body = :body",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: { ":status": { N: String(response.status) }, ":body": { S: response.body } },
      }),
    );
  }

  /** The first request was answered with a credential: keep that it was done (and its status), never the answer. */
  async completeWithheld(scope: string, key: string, status: number): Promise<void> {
    await this.db.send(
      new UpdateItemCommand({
        TableName: this.table,
        Key: this.#key(scope, key),
        UpdateExpression: "SET #status = :status, withheld = :yes REMOVE body",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: { ":status": { N: String(status) }, ":yes": { BOOL: true } },
      }),
    );
  }

  /** Let a failed first attempt be retried with the same key. */
  async release(scope: string, key: string): Promise<void> {
    await this.db.send(
      new PutItemCommand({
        TableName: this.table,
        Item: { ...this.#key(scope, key), fingerprint: { S: "" }, expiresAt: { N: "0" } },
      }),
    );
  }
}
