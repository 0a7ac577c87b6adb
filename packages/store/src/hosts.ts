import { ConditionalCheckFailedException, DeleteItemCommand, GetItemCommand, PutItemCommand, QueryCommand, UpdateItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";

export interface HostRecord {
  id: string;
  queueUrl: string;
  lastSeen: number;
  engine: string;
  containers: number;
  /** The address users reach the host's published ports on (publicEndpoints). */
  address?: string;
}

const HOSTS = "HOSTS";
const JOINS = "HOSTJOINS";
const joinIsLive = "attribute_exists(pk) AND tokenHash = :h AND expiresAt > :now";

/** Hosts, their heartbeats, the hash of each host's own token, and the public key its reports are signed with. */
export class HostStore {
  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
  ) {}

  /** (Re-)register a host: a new token hash and signing key replace the old ones (the API checks who may). */
  async register(host: HostRecord, tokenHash: string, publicKey: string): Promise<void> {
    await this.db.send(
      new PutItemCommand({
        TableName: this.table,
        Item: {
          pk: { S: HOSTS },
          sk: { S: host.id },
          queueUrl: { S: host.queueUrl },
          lastSeen: { N: String(host.lastSeen) },
          engine: { S: host.engine },
          containers: { N: String(host.containers) },
          tokenHash: { S: tokenHash },
          publicKey: { S: publicKey },
          ...(host.address ? { address: { S: host.address } } : {}),
        },
      }),
    );
  }

  async heartbeat(id: string, lastSeen: number, engine: string, containers: number): Promise<void> {
    await this.db.send(
      new UpdateItemCommand({
        TableName: this.table,
        Key: { pk: { S: HOSTS }, sk: { S: id } },
        UpdateExpression: "SET lastSeen = :t, engine = :e, containers = :c",
        ConditionExpression: "attribute_exists(pk)",
        ExpressionAttributeValues: { ":t": { N: String(lastSeen) }, ":e": { S: engine }, ":c": { N: String(containers) } },
      }),
    );
  }

  async #item(id: string) {
    return (await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: { S: HOSTS }, sk: { S: id } }, ConsistentRead: true }))).Item;
  }

  async tokenHash(id: string): Promise<string | undefined> {
    return (await this.#item(id))?.tokenHash?.S;
  }

  /** The Ed25519 public key (SPKI DER, base64) the host signs its messages with. */
  async publicKey(id: string): Promise<string | undefined> {
    return (await this.#item(id))?.publicKey?.S;
  }

  /** A one-time join token for host `id` (its hash), good until `expiresAt`; a new one replaces an unused one. */
  async createJoin(id: string, tokenHash: string, expiresAt: number): Promise<void> {
    await this.db.send(
      new PutItemCommand({
        TableName: this.table,
        Item: { pk: { S: JOINS }, sk: { S: id }, tokenHash: { S: tokenHash }, expiresAt: { N: String(expiresAt) } },
      }),
    );
  }

  /** Use up a join token: true once, for the live token of that host; false for anything else. */
  async consumeJoin(id: string, tokenHash: string, now: number): Promise<boolean> {
    try {
      await this.db.send(
        new DeleteItemCommand({
          TableName: this.table,
          Key: { pk: { S: JOINS }, sk: { S: id } },
          ConditionExpression: joinIsLive,
          ExpressionAttributeValues: { ":h": { S: tokenHash }, ":now": { N: String(now) } },
        }),
      );
      return true;
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException) return false;
      throw e;
    }
  }

  async list(): Promise<HostRecord[]> {
    const page = await this.db.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: "pk = :pk",
        ExpressionAttributeValues: { ":pk": { S: HOSTS } },
        ConsistentRead: true,
      }),
    );
    return (page.Items ?? []).map((i) => ({
      id: i.sk?.S ?? "",
      queueUrl: i.queueUrl?.S ?? "",
      lastSeen: Number(i.lastSeen?.N ?? 0),
      engine: i.engine?.S ?? "",
      containers: Number(i.containers?.N ?? 0),
      ...(i.address?.S ? { address: i.address.S } : {}),
    }));
  }

  async alive(now: number, staleMs: number): Promise<HostRecord[]> {
    return (await this.list()).filter((h) => now - h.lastSeen < staleMs);
  }
}
