import { createHash } from "node:crypto";
import { GetItemCommand, PutItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { ReplayMemory } from "@corral/queue";

const key = (sig: string) => ({ pk: { S: `REPLAY#${createHash("sha256").update(sig).digest("base64url")}` }, sk: { S: "envelope" } });

/**
 * The control queue's handled envelopes, in the table until they expire:
 * every controller instance refuses a replay of what any of them handled,
 * as the embedded server's one opener does. Items carry `expiresAt` (epoch
 * seconds: AWS TTL deletes them; reads check it, as dynalite has no TTL).
 */
export class TableReplays implements ReplayMemory {
  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
    private readonly clock: () => number = Date.now,
  ) {}

  async seen(sig: string): Promise<boolean> {
    const item = (await this.db.send(new GetItemCommand({ TableName: this.table, Key: key(sig), ConsistentRead: true }))).Item;
    return item !== undefined && Number(item.expiresAt?.N ?? 0) * 1000 > this.clock();
  }

  async remember(sig: string, exp: number): Promise<void> {
    await this.db.send(new PutItemCommand({ TableName: this.table, Item: { ...key(sig), expiresAt: { N: String(Math.ceil(exp / 1000)) } } }));
  }
}
