import { randomBytes } from "node:crypto";
import { ConditionalCheckFailedException, DeleteItemCommand, GetItemCommand, PutItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { queryPartition } from "./client.js";
import { open, seal, type MasterKey } from "./secrets.js";

/** The chat app's settings: where follow-ups may go. The signing secret is kept apart, sealed. */
export interface ChatConfig {
  /** Hosts a `response_url` may name (Slack's: hooks.slack.com). */
  responseHosts: string[];
  updated: string;
}

const CHAT = "CHAT";
const aad = Buffer.from(JSON.stringify(["chat", "signing-secret"]));

/**
 * Chatops: the Slack app's signing secret (sealed as secrets' values are),
 * which chat users act as which corral users, and the signatures of requests
 * seen in the last minutes (a replay of one is refused).
 */
export class ChatStore {
  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
    private readonly key: MasterKey,
    private readonly clock: () => number = Date.now,
  ) {}

  async configure(signingSecret: string, responseHosts: string[]): Promise<ChatConfig> {
    const dataKey = randomBytes(32);
    const now = this.clock();
    await this.db.send(
      new PutItemCommand({
        TableName: this.table,
        Item: {
          pk: { S: CHAT },
          sk: { S: "config" },
          sealed: { S: seal(dataKey, Buffer.from(signingSecret, "utf8"), aad) },
          wrappedKey: { S: await this.key.wrap(dataKey) },
          keyId: { S: this.key.id },
          responseHosts: { L: responseHosts.map((h) => ({ S: h })) },
          updated: { N: String(now) },
        },
      }),
    );
    return { responseHosts, updated: new Date(now).toISOString() };
  }

  /** The settings and the signing secret; none: chat is not set up. */
  async config(): Promise<(ChatConfig & { signingSecret: string }) | undefined> {
    const item = (await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: { S: CHAT }, sk: { S: "config" } }, ConsistentRead: true }))).Item;
    if (!item?.sealed?.S || !item.wrappedKey?.S) return undefined;
    const signingSecret = open(await this.key.unwrap(item.wrappedKey.S), item.sealed.S, aad).toString("utf8");
    return { signingSecret, responseHosts: item.responseHosts?.L?.map((v) => v.S ?? "") ?? [], updated: new Date(Number(item.updated?.N ?? 0)).toISOString() };
  }

  async map(chatUser: string, user: string): Promise<void> {
    await this.db.send(new PutItemCommand({ TableName: this.table, Item: { pk: { S: CHAT }, sk: { S: `map#${chatUser}` }, user: { S: user }, updated: { N: String(this.clock()) } } }));
  }

  async unmap(chatUser: string): Promise<boolean> {
    const old = await this.db.send(new DeleteItemCommand({ TableName: this.table, Key: { pk: { S: CHAT }, sk: { S: `map#${chatUser}` } }, ReturnValues: "ALL_OLD" }));
    return old.Attributes !== undefined;
  }

  async userOf(chatUser: string): Promise<string | undefined> {
    const item = (await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: { S: CHAT }, sk: { S: `map#${chatUser}` } }, ConsistentRead: true }))).Item;
    return item?.user?.S;
  }

  async mappings(): Promise<Array<{ chatUser: string; user: string }>> {
    return (await queryPartition(this.db, this.table, CHAT, "map#")).map((i) => ({ chatUser: (i.sk?.S ?? "").slice(4), user: i.user?.S ?? "" }));
  }

  /** A request's signature seen for the first time (true), or again: a replay (false). Kept past the timestamps' window. */
  async firstSeen(signature: string, keepSeconds: number): Promise<boolean> {
    const now = this.clock();
    try {
      await this.db.send(
        new PutItemCommand({
          TableName: this.table,
          Item: { pk: { S: "CHATSEEN" }, sk: { S: signature }, at: { N: String(now) }, expiresAt: { N: String(Math.floor(now / 1000) + keepSeconds) } },
          ConditionExpression: "attribute_not_exists(pk) OR expiresAt < :now",
          ExpressionAttributeValues: { ":now": { N: String(Math.floor(now / 1000)) } },
        }),
      );
      return true;
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException) return false;
      throw e;
    }
  }
}
