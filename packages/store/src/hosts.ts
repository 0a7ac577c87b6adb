import { GetItemCommand, PutItemCommand, QueryCommand, UpdateItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";

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

/** Hosts, their heartbeats and the hash of each host's own token. */
export class HostStore {
  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
  ) {}

  /** (Re-)register a host: a new token hash replaces the old one. */
  async register(host: HostRecord, tokenHash: string): Promise<void> {
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

  async tokenHash(id: string): Promise<string | undefined> {
    const item = (await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: { S: HOSTS }, sk: { S: id } }, ConsistentRead: true }))).Item;
    return item?.tokenHash?.S;
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
