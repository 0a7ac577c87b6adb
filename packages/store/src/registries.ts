import { randomBytes } from "node:crypto";
import { DeleteItemCommand, GetItemCommand, PutItemCommand, type AttributeValue, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { queryPartition } from "./client.js";
import { open, seal, type MasterKey } from "./secrets.js";

/** What anyone allowed to see a registry login sees: never its password. */
export interface RegistryRecord {
  server: string;
  username: string;
  owner: string;
  group: string;
  created: string;
  updated: string;
}

export interface RegistryLogin {
  server: string;
  username: string;
  password: string;
  owner: string;
  group: string;
}

/** Bounds the store keeps whoever calls it (the API checks the same, and says so in its words). */
export const REGISTRY_LIMITS = { username: 256, passwordBytes: 16 * 1024, server: 259 } as const;

const REGISTRIES = "REGISTRIES";
const keyOf = (owner: string, server: string) => ({ pk: { S: REGISTRIES }, sk: { S: `${owner}#${server}` } });
/** The sealed password is bound to its owner, server and username: moved to another item, it does not open. */
const aadOf = (owner: string, server: string, username: string) => Buffer.from(JSON.stringify(["registry", owner, server, username]));

function check(login: RegistryLogin): void {
  const bad = (why: string) => new Error(`registry login: ${why}`);
  if (!login.server || login.server.length > REGISTRY_LIMITS.server || /[#\s/]/.test(login.server)) throw bad("a server is host[:port]");
  if (!login.owner || login.owner.includes("#")) throw bad("an owner is a user name");
  if (login.username.length === 0 || login.username.length > REGISTRY_LIMITS.username) throw bad(`a username is 1-${REGISTRY_LIMITS.username} characters`);
  const bytes = Buffer.byteLength(login.password, "utf8");
  if (bytes === 0 || bytes > REGISTRY_LIMITS.passwordBytes) throw bad(`a password is 1-${REGISTRY_LIMITS.passwordBytes} bytes`);
}

/**
 * Registry logins, one per owner and server: the password sealed as a
 * secret's value is (its own data key, AES-256-GCM, wrapped by the master
 * key). The password leaves this class only through `reveal`, which the API
 * calls for an agent pulling an image of a stack of the login's owner.
 */
export class RegistryStore {
  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
    private readonly key: MasterKey,
    private readonly clock: () => number = Date.now,
  ) {}

  #record(item: Record<string, AttributeValue>): RegistryRecord {
    return {
      server: item.server?.S ?? "",
      username: item.username?.S ?? "",
      owner: item.owner?.S ?? "",
      group: item.group?.S ?? "",
      created: new Date(Number(item.created?.N ?? 0)).toISOString(),
      updated: new Date(Number(item.updated?.N ?? 0)).toISOString(),
    };
  }

  async #item(owner: string, server: string): Promise<Record<string, AttributeValue> | undefined> {
    return (await this.db.send(new GetItemCommand({ TableName: this.table, Key: keyOf(owner, server), ConsistentRead: true }))).Item;
  }

  /** Store (or replace) the owner's login for a server. */
  async put(login: RegistryLogin): Promise<{ kind: "created" | "updated"; record: RegistryRecord }> {
    check(login);
    const before = await this.#item(login.owner, login.server);
    const now = this.clock();
    const dataKey = randomBytes(32);
    const item: Record<string, AttributeValue> = {
      ...keyOf(login.owner, login.server),
      server: { S: login.server },
      username: { S: login.username },
      owner: { S: login.owner },
      group: { S: login.group },
      sealed: { S: seal(dataKey, Buffer.from(login.password, "utf8"), aadOf(login.owner, login.server, login.username)) },
      wrappedKey: { S: await this.key.wrap(dataKey) },
      keyId: { S: this.key.id },
      created: { N: before?.created?.N ?? String(now) },
      updated: { N: String(now) },
    };
    await this.db.send(new PutItemCommand({ TableName: this.table, Item: item }));
    return { kind: before ? "updated" : "created", record: this.#record(item) };
  }

  async get(owner: string, server: string): Promise<RegistryRecord | undefined> {
    const item = await this.#item(owner, server);
    return item ? this.#record(item) : undefined;
  }

  async list(): Promise<RegistryRecord[]> {
    return (await queryPartition(this.db, this.table, REGISTRIES)).map((item) => this.#record(item));
  }

  /** The login with its password. Only for an agent pulling an image of the owner's stack. */
  async reveal(owner: string, server: string): Promise<RegistryLogin | undefined> {
    const item = await this.#item(owner, server);
    if (!item?.sealed?.S || !item.wrappedKey?.S) return undefined;
    const record = this.#record(item);
    const dataKey = await this.key.unwrap(item.wrappedKey.S);
    const password = open(dataKey, item.sealed.S, aadOf(record.owner, record.server, record.username)).toString("utf8");
    return { server: record.server, username: record.username, password, owner: record.owner, group: record.group };
  }

  /** Remove the owner's login for a server; false when there was none. */
  async remove(owner: string, server: string): Promise<boolean> {
    const old = await this.db.send(new DeleteItemCommand({ TableName: this.table, Key: keyOf(owner, server), ReturnValues: "ALL_OLD" }));
    return old.Attributes !== undefined;
  }
}
