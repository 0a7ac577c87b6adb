import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from "node:crypto";
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
  type AttributeValue,
  type DynamoDBClient,
} from "@aws-sdk/client-dynamodb";
import { privateFile } from "./private-file.js";

/**
 * The master key port: wraps data keys (envelope encryption) and keys the
 * content MACs. Locally a key file; on AWS a KMS key.
 */
export interface MasterKey {
  readonly id: string;
  wrap(dataKey: Buffer): Promise<string>;
  unwrap(wrapped: string): Promise<Buffer>;
  /** A keyed digest of a value: equal values compare equal without storing anything guessable. */
  mac(value: Buffer): Promise<string>;
  /** A 32-byte key for one purpose (e.g. "idempotency"), derived from the master key (HKDF-SHA256): the same on every server, unrelated to any MAC. */
  derive(purpose: string): Promise<Buffer>;
}

/** HKDF-SHA256 of key material for one purpose: a key that reveals nothing of the material, or of the other purposes' keys. */
export const deriveKey = (material: Buffer, purpose: string): Buffer => Buffer.from(hkdfSync("sha256", material, "corral", `corral:${purpose}`, 32));

/** AES-256-GCM under `key`; `aad`, when given, binds the result to what it belongs to (opened elsewhere, it fails). */
export function seal(key: Buffer, plain: Buffer, aad?: Buffer): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  if (aad) cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64");
}

export function open(key: Buffer, sealed: string, aad?: Buffer): Buffer {
  const raw = Buffer.from(sealed, "base64");
  const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12));
  if (aad) decipher.setAAD(aad);
  decipher.setAuthTag(raw.subarray(12, 28));
  return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]);
}

/**
 * A 32-byte master key in a file of mode 0600, made on first use. An existing
 * file is used only if it is this user's alone (owner, mode 0600 or
 * stricter, not a symbolic link): else the constructor throws, naming the fix.
 */
export class KeyFileMasterKey implements MasterKey {
  readonly id = "keyfile";
  readonly #key: Buffer;

  constructor(path: string) {
    const key = privateFile(path, () => randomBytes(32));
    if (key.length !== 32) throw new Error(`${path}: a master key is 32 bytes, this file has ${key.length}`);
    this.#key = key;
  }

  async wrap(dataKey: Buffer): Promise<string> {
    return seal(this.#key, dataKey);
  }

  async unwrap(wrapped: string): Promise<Buffer> {
    return open(this.#key, wrapped);
  }

  async mac(value: Buffer): Promise<string> {
    return createHmac("sha256", this.#key).update(value).digest("base64");
  }

  async derive(purpose: string): Promise<Buffer> {
    return deriveKey(this.#key, purpose);
  }
}

export interface SecretInfo {
  name: string;
  versions: number;
  owner: string;
  group: string;
  created: string;
  updated: string;
}

export type PutOutcome = { kind: "created"; version: number } | { kind: "unchanged"; version: number } | { kind: "new-version"; version: number };

const INDEX = "SECRETS";
const keyIsFree = "attribute_not_exists(pk)";
const versionKey = (n: number) => `v${String(n).padStart(8, "0")}`;
/** The version a version item holds (0: none). */
const versionOf = (item: Record<string, AttributeValue> | undefined) => (item ? Number(item.sk?.S?.slice(1)) : 0);

/**
 * Secrets at rest: each version sealed with its own data key (AES-256-GCM),
 * the data key wrapped by the master key. Values leave this class only
 * through `reveal`, which the API calls for an agent creating a container.
 */
export class SecretStore {
  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
    private readonly key: MasterKey,
    private readonly clock: () => number = Date.now,
  ) {}

  async info(name: string): Promise<SecretInfo | undefined> {
    const item = (await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: { S: INDEX }, sk: { S: name } }, ConsistentRead: true }))).Item;
    if (!item) return undefined;
    return {
      name,
      versions: Number(item.versions?.N ?? 0),
      owner: item.owner?.S ?? "",
      group: item.group?.S ?? "",
      created: new Date(Number(item.created?.N ?? 0)).toISOString(),
      updated: new Date(Number(item.updated?.N ?? 0)).toISOString(),
    };
  }

  async list(): Promise<SecretInfo[]> {
    const page = await this.db.send(
      new QueryCommand({ TableName: this.table, KeyConditionExpression: "pk = :pk", ExpressionAttributeValues: { ":pk": { S: INDEX } }, ConsistentRead: true }),
    );
    return (page.Items ?? []).map((item) => ({
      name: item.sk?.S ?? "",
      versions: Number(item.versions?.N ?? 0),
      owner: item.owner?.S ?? "",
      group: item.group?.S ?? "",
      created: new Date(Number(item.created?.N ?? 0)).toISOString(),
      updated: new Date(Number(item.updated?.N ?? 0)).toISOString(),
    }));
  }

  /** Store a value: a first version, nothing when it equals the latest, else a new version. */
  async put(name: string, value: Buffer, owner: string, group: string): Promise<PutOutcome> {
    const mac = await this.key.mac(value);
    for (let attempt = 0; attempt < 5; attempt++) {
      // the newest version as written, not as the index says: a write whose index update failed (a full disk, a
      // crash between the two) left the index behind, and the next version is the one after what is there
      const item = await this.#newest(name);
      const latest = versionOf(item);
      if (latest > 0) {
        const previous = Buffer.from(item?.mac?.S ?? "", "base64");
        const now = Buffer.from(mac, "base64");
        if (previous.length === now.length && timingSafeEqual(previous, now)) return { kind: "unchanged", version: latest };
      }
      const version = latest + 1;
      const dataKey = randomBytes(32);
      try {
        await this.db.send(
          new PutItemCommand({
            TableName: this.table,
            Item: {
              pk: { S: `SECRET#${name}` },
              sk: { S: versionKey(version) },
              sealed: { S: seal(dataKey, value) },
              wrappedKey: { S: await this.key.wrap(dataKey) },
              keyId: { S: this.key.id },
              mac: { S: mac },
              created: { N: String(this.clock()) },
            },
            ConditionExpression: keyIsFree,
          }),
        );
      } catch (e) {
        if (e instanceof ConditionalCheckFailedException) continue; // another writer took this version
        throw e;
      }
      const now = String(this.clock());
      await this.db.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { pk: { S: INDEX }, sk: { S: name } },
          UpdateExpression: "SET versions = :v, updated = :now, created = if_not_exists(created, :now), #owner = if_not_exists(#owner, :owner), #group = if_not_exists(#group, :group)",
          ConditionExpression: "attribute_not_exists(versions) OR versions < :v",
          ExpressionAttributeNames: { "#owner": "owner", "#group": "group" },
          ExpressionAttributeValues: { ":v": { N: String(version) }, ":now": { N: now }, ":owner": { S: owner }, ":group": { S: group } },
        }),
      ).catch((e: unknown) => {
        if (!(e instanceof ConditionalCheckFailedException)) throw e;
      });
      return { kind: version === 1 ? "created" : "new-version", version };
    }
    throw new Error(`secret ${name}: too many concurrent writers`);
  }

  /** The value of one version. Only for an agent creating a container that mounts it. */
  async reveal(name: string, version: number): Promise<Buffer | undefined> {
    const item = (await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: { S: `SECRET#${name}` }, sk: { S: versionKey(version) } }, ConsistentRead: true }))).Item;
    if (!item?.sealed?.S || !item.wrappedKey?.S) return undefined;
    const dataKey = await this.key.unwrap(item.wrappedKey.S);
    return open(dataKey, item.sealed.S);
  }

  /** The newest version item of a secret, whatever its index says. */
  async #newest(name: string) {
    const page = await this.db.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: "pk = :pk",
        ExpressionAttributeValues: { ":pk": { S: `SECRET#${name}` } },
        ScanIndexForward: false,
        Limit: 1,
        ConsistentRead: true,
      }),
    );
    return page.Items?.[0];
  }

  /** Every version of a secret, then its index entry: each version item there is, counted by the index or not. */
  async remove(name: string): Promise<void> {
    // (the index never counts past the version items: each is written before the index is)
    const last = versionOf(await this.#newest(name));
    for (let v = 1; v <= last; v++) {
      await this.db.send(new DeleteItemCommand({ TableName: this.table, Key: { pk: { S: `SECRET#${name}` }, sk: { S: versionKey(v) } } }));
    }
    await this.db.send(new DeleteItemCommand({ TableName: this.table, Key: { pk: { S: INDEX }, sk: { S: name } } }));
  }
}
