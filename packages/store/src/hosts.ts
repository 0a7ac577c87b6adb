import { PutItemCommand, QueryCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";

export interface HostRecord {
  id: string;
  queueUrl: string;
  lastSeen: number;
  engine: string;
  containers: number;
}

const HOSTS = "HOSTS";

/** Hosts and their heartbeats. A host is alive while its last heartbeat is recent. */
export class HostStore {
  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
  ) {}

  async heartbeat(host: HostRecord): Promise<void> {
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
        },
      }),
    );
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
    }));
  }

  async alive(now: number, staleMs: number): Promise<HostRecord[]> {
    return (await this.list()).filter((h) => now - h.lastSeen < staleMs);
  }
}
