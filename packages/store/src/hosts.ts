import { queryPartition } from "./client.js";
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
  type AttributeValue,
  type DynamoDBClient,
} from "@aws-sdk/client-dynamodb";

/** What the admin set: `active` takes new containers, `draining` and `inactive` take none (see @corral/core hostState). */
export type HostAdminState = "active" | "draining" | "inactive";

export interface HostRecord {
  id: string;
  /** The host's name (its id unless it was given another). */
  name: string;
  queueUrl: string;
  lastSeen: number;
  engine: string;
  containers: number;
  /** The address users reach the host's published ports on (publicEndpoints). */
  address?: string;
  labels: Record<string, string>;
  /** The admin's state; `disconnected` is not stored, it is read from lastSeen. */
  state: HostAdminState;
}

/** What registration writes: the rest (name, labels, state) is the admin's and survives a re-registration. */
export type Registration = Pick<HostRecord, "id" | "queueUrl" | "lastSeen" | "engine" | "containers" | "address">;

/** A join token's record: its hash, its end, and what the admin gave the host with it. */
export interface JoinRecord {
  labels: Record<string, string>;
}

const HOSTS = "HOSTS";
const JOINS = "HOSTJOINS";
const joinIsLive = "attribute_exists(pk) AND tokenHash = :h AND expiresAt > :now";
const hostExists = "attribute_exists(pk)";
/** The labels are as they were read: at the version read, or never written when none was. */
const labelsUnchanged = (version: number) => (version === 0 ? "attribute_not_exists(labelsVersion)" : "labelsVersion = :v");
const MAX_LABEL_RETRIES = 5;

const toMap = (labels: Record<string, string>): AttributeValue => ({ M: Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, { S: v }])) });
const fromMap = (value: AttributeValue | undefined): Record<string, string> =>
  Object.fromEntries(Object.entries(value?.M ?? {}).flatMap(([k, v]) => (v.S !== undefined ? [[k, v.S]] : [])));
const adminState = (s: string | undefined): HostAdminState => (s === "draining" || s === "inactive" ? s : "active");

function fromItem(i: Record<string, AttributeValue>): HostRecord {
  const id = i.sk?.S ?? "";
  return {
    id,
    name: i.name?.S ?? id,
    queueUrl: i.queueUrl?.S ?? "",
    lastSeen: Number(i.lastSeen?.N ?? 0),
    engine: i.engine?.S ?? "",
    containers: Number(i.containers?.N ?? 0),
    ...(i.address?.S ? { address: i.address.S } : {}),
    labels: fromMap(i.labels),
    state: adminState(i.adminState?.S),
  };
}

async function conditional(send: () => Promise<unknown>): Promise<boolean> {
  try {
    await send();
    return true;
  } catch (e) {
    if (e instanceof ConditionalCheckFailedException) return false;
    throw e;
  }
}

/** Hosts, their heartbeats, labels and admin state, the hash of each host's own token, and the public key its reports are signed with. */
/** How long a host's key, replaced by a registration, still verifies its messages (sent by the process that died). */
export const KEY_OVERLAP_MS = 2 * 60_000;

export interface HostStoreOptions {
  /**
   * How long a host's credentials as read (its token's hash, its signing
   * keys) answer again with no read: every request of an agent and every
   * report it signs asks for them. What this store writes (a registration, a
   * removal) is seen at once; what another process writes, within this. A
   * caller whose check fails on a remembered credential asks again with
   * `fresh` (a key replaced elsewhere a moment ago). Default 0: read each time.
   */
  credentialsMs?: number;
  clock?: () => number;
}

/** At most this many hosts' credentials are remembered (a flood of unknown ids cannot grow it: only found hosts are kept). */
const MAX_REMEMBERED = 10_000;

export class HostStore {
  readonly #credentialsMs: number;
  readonly #clock: () => number;
  readonly #remembered = new Map<string, { item: Record<string, AttributeValue>; at: number }>();
  /** Bumped by every write of credentials here: a read begun before one is not remembered. */
  #generation = 0;

  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
    options: HostStoreOptions = {},
  ) {
    this.#credentialsMs = options.credentialsMs ?? 0;
    this.#clock = options.clock ?? Date.now;
  }

  /** The host's item, as remembered for up to credentialsMs (unless `fresh`), else read. */
  async #credentials(id: string, fresh = false) {
    const hit = this.#remembered.get(id);
    if (!fresh && hit && this.#clock() - hit.at < this.#credentialsMs) return hit.item;
    const generation = this.#generation;
    const at = this.#clock();
    const item = await this.#item(id);
    if (!item || this.#credentialsMs <= 0) this.#remembered.delete(id);
    else if (generation === this.#generation) {
      if (this.#remembered.size >= MAX_REMEMBERED) this.#remembered.clear();
      this.#remembered.set(id, { item, at });
    }
    return item;
  }

  #forget(id: string) {
    this.#generation++;
    this.#remembered.delete(id);
  }

  /** The last listing (see list), and the generation it was begun in. */
  #listed: { at: number; generation: number; hosts: Promise<HostRecord[]> } | undefined;

  /**
   * (Re-)register a host: a new token hash and signing key replace the old
   * ones (the API checks who may). Its name, labels and admin state are
   * kept; a host new to the store gets `first` (a join token's labels).
   * The key it replaces still verifies for KEY_OVERLAP_MS (publicKeys): the
   * reports the last process sent just before it died are on the queue yet.
   */
  async register(host: Registration, tokenHash: string, publicKey: string, first: { name?: string; labels?: Record<string, string> } = {}): Promise<void> {
    this.#forget(host.id);
    const values: Record<string, AttributeValue> = {
      ":q": { S: host.queueUrl },
      ":t": { N: String(host.lastSeen) },
      ":e": { S: host.engine },
      ":c": { N: String(host.containers) },
      ":h": { S: tokenHash },
      ":k": { S: publicKey },
      ":n": { S: first.name ?? host.id },
      ":l": toMap(first.labels ?? {}),
      ":s": { S: "active" },
      ":pu": { N: String(host.lastSeen + KEY_OVERLAP_MS) },
    };
    const set = [
      // (the right-hand sides read the item as it was: the key being replaced)
      "previousKey = if_not_exists(publicKey, :k)",
      "previousUntil = :pu",
      ...["queueUrl = :q", "lastSeen = :t", "engine = :e", "containers = :c", "tokenHash = :h", "publicKey = :k"],
      ...["#name = if_not_exists(#name, :n)", "labels = if_not_exists(labels, :l)", "adminState = if_not_exists(adminState, :s)"],
    ];
    if (host.address) {
      set.push("address = :a");
      values[":a"] = { S: host.address };
    }
    try {
      await this.db.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { pk: { S: HOSTS }, sk: { S: host.id } },
          UpdateExpression: `SET ${set.join(", ")}${host.address ? "" : " REMOVE address"}`,
          ExpressionAttributeNames: { "#name": "name" },
          ExpressionAttributeValues: values,
        }),
      );
    } finally {
      this.#forget(host.id); // a read that overlapped the write may hold either
    }
  }

  /** A heartbeat: false when the host is not registered (removed), and nothing is written then. */
  async heartbeat(id: string, lastSeen: number, engine: string, containers: number): Promise<boolean> {
    return conditional(() =>
      this.db.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { pk: { S: HOSTS }, sk: { S: id } },
          UpdateExpression: "SET lastSeen = :t, engine = :e, containers = :c",
          ConditionExpression: hostExists,
          ExpressionAttributeValues: { ":t": { N: String(lastSeen) }, ":e": { S: engine }, ":c": { N: String(containers) } },
        }),
      ),
    );
  }

  async #item(id: string) {
    return (await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: { S: HOSTS }, sk: { S: id } }, ConsistentRead: true }))).Item;
  }

  async get(id: string): Promise<HostRecord | undefined> {
    const item = await this.#item(id);
    return item ? fromItem(item) : undefined;
  }

  /** The hash of the host's token (remembered: see credentialsMs; `fresh` reads it). */
  async tokenHash(id: string, fresh = false): Promise<string | undefined> {
    return (await this.#credentials(id, fresh))?.tokenHash?.S;
  }

  /** The Ed25519 public key (SPKI DER, base64) the host signs its messages with. */
  async publicKey(id: string): Promise<string | undefined> {
    return (await this.#item(id))?.publicKey?.S;
  }

  /** The keys a message of the host may be signed with at `now`: its key, and for a while after it registered again, the one before. */
  async publicKeys(id: string, now: number, fresh = false): Promise<string[]> {
    const item = await this.#credentials(id, fresh);
    const key = item?.publicKey?.S;
    if (!key) return [];
    const previous = item.previousKey?.S;
    const until = Number(item.previousUntil?.N ?? 0);
    return previous && previous !== key && until > now ? [key, previous] : [key];
  }

  /** A one-time join token for host `id` (its hash), good until `expiresAt`, with the labels the host starts with; a new one replaces an unused one. */
  async createJoin(id: string, tokenHash: string, expiresAt: number, labels: Record<string, string> = {}): Promise<void> {
    await this.db.send(
      new PutItemCommand({
        TableName: this.table,
        Item: { pk: { S: JOINS }, sk: { S: id }, tokenHash: { S: tokenHash }, expiresAt: { N: String(expiresAt) }, labels: toMap(labels) },
      }),
    );
  }

  /** Use up a join token: its record once, for the live token of that host; undefined for anything else. */
  async consumeJoin(id: string, tokenHash: string, now: number): Promise<JoinRecord | undefined> {
    try {
      const out = await this.db.send(
        new DeleteItemCommand({
          TableName: this.table,
          Key: { pk: { S: JOINS }, sk: { S: id } },
          ConditionExpression: joinIsLive,
          ExpressionAttributeValues: { ":h": { S: tokenHash }, ":now": { N: String(now) } },
          ReturnValues: "ALL_OLD",
        }),
      );
      return { labels: fromMap(out.Attributes?.labels) };
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException) return undefined;
      throw e;
    }
  }

  /** Set the admin's state of a registered host; false when there is no such host. */
  async setState(id: string, state: HostAdminState): Promise<boolean> {
    this.#generation++;
    return conditional(() =>
      this.db.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { pk: { S: HOSTS }, sk: { S: id } },
          UpdateExpression: "SET adminState = :s",
          ConditionExpression: hostExists,
          ExpressionAttributeValues: { ":s": { S: state } },
        }),
      ),
    ).finally(() => this.#generation++);
  }

  /**
   * Set and remove labels of a registered host, against concurrent changes
   * (a version on the labels). `check` sees the labels as they would be and
   * may refuse them (a count bound) by throwing. Undefined when there is no such host.
   */
  async updateLabels(id: string, set: Record<string, string>, remove: string[], check: (labels: Record<string, string>) => void = () => {}): Promise<Record<string, string> | undefined> {
    for (let attempt = 0; attempt < MAX_LABEL_RETRIES; attempt++) {
      const item = await this.#item(id);
      if (!item) return undefined;
      const version = Number(item.labelsVersion?.N ?? 0);
      const labels = fromMap(item.labels);
      for (const k of remove) delete labels[k];
      Object.assign(labels, set);
      check(labels);
      const written = await conditional(() =>
        this.db.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key: { pk: { S: HOSTS }, sk: { S: id } },
            UpdateExpression: "SET labels = :l, labelsVersion = :next",
            ConditionExpression: `${hostExists} AND ${labelsUnchanged(version)}`,
            ExpressionAttributeValues: { ":l": toMap(labels), ":next": { N: String(version + 1) }, ...(version === 0 ? {} : { ":v": { N: String(version) } }) },
          }),
        ),
      );
      if (written) {
        this.#generation++;
        return labels;
      }
    }
    throw new Error(`host ${id}: its labels changed under ${MAX_LABEL_RETRIES} attempts in a row; try again`);
  }

  /** Forget a host: its record (token, signing key, labels) and any unused join token. False when it was not registered. */
  async remove(id: string): Promise<boolean> {
    this.#forget(id);
    try {
      await this.db.send(new DeleteItemCommand({ TableName: this.table, Key: { pk: { S: JOINS }, sk: { S: id } } }));
      return await conditional(() => this.db.send(new DeleteItemCommand({ TableName: this.table, Key: { pk: { S: HOSTS }, sk: { S: id } }, ConditionExpression: hostExists })));
    } finally {
      this.#forget(id);
    }
  }

  /**
   * Every registered host. With maxAgeMs, a listing begun that recently
   * answers again (one under way is shared), unless this store changed a
   * host since (a registration, a removal, its state or labels; not a
   * heartbeat, whose lastSeen may lag by maxAgeMs). Each caller gets an array of its own.
   */
  async list(options: { maxAgeMs?: number } = {}): Promise<HostRecord[]> {
    const hit = this.#listed;
    if (options.maxAgeMs && hit && hit.generation === this.#generation && this.#clock() - hit.at < options.maxAgeMs) return [...(await hit.hosts)];
    const listed = { at: this.#clock(), generation: this.#generation, hosts: queryPartition(this.db, this.table, HOSTS).then((items) => items.map(fromItem)) };
    this.#listed = listed;
    listed.hosts.catch(() => {
      if (this.#listed === listed) this.#listed = undefined;
    });
    return [...(await listed.hosts)];
  }

  async alive(now: number, staleMs: number): Promise<HostRecord[]> {
    return (await this.list()).filter((h) => now - h.lastSeen < staleMs);
  }
}
