import { DeleteItemCommand, GetItemCommand, QueryCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { putIfAbsent } from "./conditional.js";

export interface VolumeRecord {
  name: string;
  /** Docker's volume driver and its options, as the agent creates it on the host where a container lands. */
  driver: string;
  opts: Record<string, string>;
  /** What the user asked for (`nfs` is Docker's local driver with NFS options). */
  kind: string;
  owner: string;
  group: string;
  created: string;
}

const VOLUMES = "VOLUMES";

/** Named volumes made with `corral volume create`: who owns them and how to create them on a host. */
export class VolumeStore {
  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
    private readonly clock: () => number = Date.now,
  ) {}

  async create(v: Omit<VolumeRecord, "created">): Promise<boolean> {
    return putIfAbsent(this.db, this.table, {
      pk: { S: VOLUMES },
      sk: { S: v.name },
      driver: { S: v.driver },
      opts: { S: JSON.stringify(v.opts) },
      kind: { S: v.kind },
      owner: { S: v.owner },
      group: { S: v.group },
      created: { N: String(this.clock()) },
    });
  }

  #record(name: string, i: Record<string, { S?: string; N?: string }>): VolumeRecord {
    return {
      name,
      driver: i.driver?.S ?? "local",
      opts: JSON.parse(i.opts?.S ?? "{}") as Record<string, string>,
      kind: i.kind?.S ?? "local",
      owner: i.owner?.S ?? "",
      group: i.group?.S ?? "",
      created: new Date(Number(i.created?.N ?? 0)).toISOString(),
    };
  }

  async get(name: string): Promise<VolumeRecord | undefined> {
    const item = (await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: { S: VOLUMES }, sk: { S: name } }, ConsistentRead: true }))).Item;
    return item ? this.#record(name, item as never) : undefined;
  }

  async list(): Promise<VolumeRecord[]> {
    const page = await this.db.send(new QueryCommand({ TableName: this.table, KeyConditionExpression: "pk = :pk", ExpressionAttributeValues: { ":pk": { S: VOLUMES } }, ConsistentRead: true }));
    return (page.Items ?? []).map((i) => this.#record(i.sk?.S ?? "", i as never));
  }

  async remove(name: string): Promise<void> {
    await this.db.send(new DeleteItemCommand({ TableName: this.table, Key: { pk: { S: VOLUMES }, sk: { S: name } } }));
  }
}
