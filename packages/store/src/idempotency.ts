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
export type Claim = { kind: "claimed" } | { kind: "done"; response: StoredResponse } | { kind: "withheld"; status: number } | { kind: "pending" };

const keyIsFree = "attribute_not_exists(pk)";
const DAY = 24 * 60 * 60 * 1000;

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
          Item: { ...this.#key(scope, key), fingerprint: { S: fingerprint }, expiresAt: { N: String(Math.floor((now + DAY) / 1000)) } },
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
    if (!item?.status?.N) return { kind: "pending" };
    if (item.withheld?.BOOL) return { kind: "withheld", status: Number(item.status.N) };
    return { kind: "done", response: { status: Number(item.status.N), body: item.body?.S ?? "" } };
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
