import { ConditionalCheckFailedException, DeleteItemCommand, GetItemCommand, QueryCommand, UpdateItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { putIfAbsent } from "./conditional.js";

export interface UserRecord {
  name: string;
  groups: string[];
  created: string;
}

const USERS = "USERS";

/** Users, their groups, and the hash of each one's token (the token itself is shown once, at creation). */
export class UserStore {
  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Create a user; false when the name is taken. */
  async create(name: string, groups: string[], tokenHash: string): Promise<boolean> {
    return putIfAbsent(this.db, this.table, {
      pk: { S: USERS },
      sk: { S: name },
      groups: { S: JSON.stringify(groups) },
      tokenHash: { S: tokenHash },
      created: { N: String(this.clock()) },
    });
  }

  async get(name: string): Promise<(UserRecord & { tokenHash: string }) | undefined> {
    const item = (await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: { S: USERS }, sk: { S: name } }, ConsistentRead: true }))).Item;
    if (!item) return undefined;
    return {
      name,
      groups: JSON.parse(item.groups?.S ?? "[]") as string[],
      created: new Date(Number(item.created?.N ?? 0)).toISOString(),
      tokenHash: item.tokenHash?.S ?? "",
    };
  }

  async list(): Promise<UserRecord[]> {
    const page = await this.db.send(new QueryCommand({ TableName: this.table, KeyConditionExpression: "pk = :pk", ExpressionAttributeValues: { ":pk": { S: USERS } }, ConsistentRead: true }));
    return (page.Items ?? []).map((i) => ({ name: i.sk?.S ?? "", groups: JSON.parse(i.groups?.S ?? "[]") as string[], created: new Date(Number(i.created?.N ?? 0)).toISOString() }));
  }

  /** A new token for an existing user; false when there is no such user. */
  async setToken(name: string, tokenHash: string): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { pk: { S: USERS }, sk: { S: name } },
          UpdateExpression: "SET tokenHash = :t",
          ConditionExpression: "attribute_exists(pk)",
          ExpressionAttributeValues: { ":t": { S: tokenHash } },
        }),
      );
      return true;
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException) return false;
      throw e;
    }
  }

  async remove(name: string): Promise<void> {
    await this.db.send(new DeleteItemCommand({ TableName: this.table, Key: { pk: { S: USERS }, sk: { S: name } } }));
  }
}
