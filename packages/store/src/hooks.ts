import { randomBytes } from "node:crypto";
import { ConditionalCheckFailedException, DeleteItemCommand, GetItemCommand, PutItemCommand, UpdateItemCommand, type AttributeValue, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { queryPartition } from "./client.js";
import { open, seal, type MasterKey } from "./secrets.js";

/** A webhook as anyone allowed to see it sees it: never its secret. */
export interface HookRecord {
  id: string;
  stack: string;
  /** The services it may upgrade (none: any of the stack's). */
  services: string[];
  kind: "registry" | "dockerhub" | "github" | "generic";
  /** A glob the pushed tag must match (none: every tag). */
  tag?: string;
  /** Confirm the upgrade once its new containers have run this long; unset: it waits for a person. */
  confirmAfterMs?: number;
  /** Source addresses (CIDRs) deliveries may come from; empty: any. */
  allow: string[];
  owner: string;
  group: string;
  created: string;
}

export interface DeliveryRecord {
  hook: string;
  /** The sender's delivery id, or a hash of the body. */
  id: string;
  at: string;
  from: string;
  verdict: "accepted" | "queued" | "deployed" | "ignored" | "failed";
  detail: string;
  revision?: number;
}

/** A push waiting for its stack to be free: deployed in the order they came. */
export interface QueuedDeploy {
  key: string;
  stack: string;
  hook: string;
  delivery: string;
  at: number;
  /** image: that service to that image; pull: those services again, pulled (a git push). */
  service: string;
  image?: string;
  pull?: boolean;
  confirmAfterMs?: number;
}

const HOOKS = "HOOKS";
const QUEUE = "HOOKQ";
const DELIVERIES_KEPT_S = 30 * 86_400;
const aadOf = (id: string) => Buffer.from(JSON.stringify(["hook", id]));

/**
 * Webhooks: their secrets sealed as secrets' values are (a data key per
 * hook, AES-256-GCM, wrapped by the master key); their deliveries, each
 * claimed once by its id (a second delivery of it is a duplicate); and the
 * deploys waiting for their stack, in one partition sorted by stack and
 * arrival.
 */
export class HookStore {
  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
    private readonly key: MasterKey,
    private readonly clock: () => number = Date.now,
  ) {}

  #record(item: Record<string, AttributeValue>): HookRecord {
    return {
      id: item.sk?.S ?? "",
      stack: item.stack?.S ?? "",
      services: item.services?.L?.map((v) => v.S ?? "") ?? [],
      kind: (item.kind?.S ?? "generic") as HookRecord["kind"],
      ...(item.tag?.S ? { tag: item.tag.S } : {}),
      ...(item.confirmAfterMs?.N ? { confirmAfterMs: Number(item.confirmAfterMs.N) } : {}),
      allow: item.allow?.L?.map((v) => v.S ?? "") ?? [],
      owner: item.owner?.S ?? "",
      group: item.group?.S ?? "",
      created: new Date(Number(item.created?.N ?? 0)).toISOString(),
    };
  }

  /** A new hook and its secret (shown once: the store keeps it sealed). */
  async create(hook: Omit<HookRecord, "id" | "created">): Promise<{ record: HookRecord; secret: string }> {
    const id = `h${randomBytes(9).toString("base64url")}`;
    const secret = randomBytes(32).toString("base64url");
    const dataKey = randomBytes(32);
    const item: Record<string, AttributeValue> = {
      pk: { S: HOOKS },
      sk: { S: id },
      stack: { S: hook.stack },
      services: { L: hook.services.map((s) => ({ S: s })) },
      kind: { S: hook.kind },
      ...(hook.tag ? { tag: { S: hook.tag } } : {}),
      ...(hook.confirmAfterMs ? { confirmAfterMs: { N: String(hook.confirmAfterMs) } } : {}),
      allow: { L: hook.allow.map((s) => ({ S: s })) },
      owner: { S: hook.owner },
      group: { S: hook.group },
      created: { N: String(this.clock()) },
      sealed: { S: seal(dataKey, Buffer.from(secret, "utf8"), aadOf(id)) },
      wrappedKey: { S: await this.key.wrap(dataKey) },
      keyId: { S: this.key.id },
    };
    await this.db.send(new PutItemCommand({ TableName: this.table, Item: item, ConditionExpression: "attribute_not_exists(pk)" }));
    return { record: this.#record(item), secret };
  }

  async get(id: string): Promise<HookRecord | undefined> {
    const item = (await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: { S: HOOKS }, sk: { S: id } }, ConsistentRead: true }))).Item;
    return item ? this.#record(item) : undefined;
  }

  /** The hook with its secret: only to check a delivery's signature. */
  async reveal(id: string): Promise<{ record: HookRecord; secret: string } | undefined> {
    const item = (await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: { S: HOOKS }, sk: { S: id } }, ConsistentRead: true }))).Item;
    if (!item?.sealed?.S || !item.wrappedKey?.S) return undefined;
    const dataKey = await this.key.unwrap(item.wrappedKey.S);
    return { record: this.#record(item), secret: open(dataKey, item.sealed.S, aadOf(id)).toString("utf8") };
  }

  async list(): Promise<HookRecord[]> {
    return (await this.#query(HOOKS)).map((i) => this.#record(i));
  }

  async remove(id: string): Promise<boolean> {
    const old = await this.db.send(new DeleteItemCommand({ TableName: this.table, Key: { pk: { S: HOOKS }, sk: { S: id } }, ReturnValues: "ALL_OLD" }));
    return old.Attributes !== undefined;
  }

  #query(pk: string): Promise<Array<Record<string, AttributeValue>>> {
    return queryPartition(this.db, this.table, pk);
  }

  /**
   * Claim a delivery by its id. The first time: `first`, with the time it
   * came (its place in its stack's queue). Again: not first; `settled` when
   * it was dealt with (a duplicate: nothing to do), else it is taken up again
   * from where a crash left it, at its first time (enqueueing is idempotent).
   */
  async claim(hook: string, id: string, from: string): Promise<{ first: boolean; at: number; settled: boolean }> {
    const now = this.clock();
    const key = { pk: { S: `HOOK#${hook}` }, sk: { S: `d#${id}` } };
    try {
      await this.db.send(
        new PutItemCommand({
          TableName: this.table,
          Item: {
            ...key,
            id: { S: id },
            at: { N: String(now) },
            from: { S: from.slice(0, 64) },
            verdict: { S: "accepted" },
            detail: { S: "" },
            expiresAt: { N: String(Math.floor(now / 1000) + DELIVERIES_KEPT_S) },
          },
          // a claim past its time (TTL removes items late, dynalite never) is no claim
          ConditionExpression: "attribute_not_exists(pk) OR expiresAt < :now",
          ExpressionAttributeValues: { ":now": { N: String(Math.floor(now / 1000)) } },
        }),
      );
      return { first: true, at: now, settled: false };
    } catch (e) {
      if (!(e instanceof ConditionalCheckFailedException)) throw e;
      const item = (await this.db.send(new GetItemCommand({ TableName: this.table, Key: key, ConsistentRead: true }))).Item;
      return { first: false, at: Number(item?.at?.N ?? now), settled: (item?.verdict?.S ?? "accepted") !== "accepted" };
    }
  }

  /**
   * A signed body seen before, within `windowS`: a replay (false). A
   * sender's delivery id is not signed, so a body signed once could come
   * again under a new id; within the window it is refused.
   */
  async firstBody(hook: string, digest: string, windowS: number): Promise<boolean> {
    const now = Math.floor(this.clock() / 1000);
    try {
      await this.db.send(
        new PutItemCommand({
          TableName: this.table,
          Item: { pk: { S: `HOOKBODY#${hook}` }, sk: { S: digest }, expiresAt: { N: String(now + windowS) } },
          ConditionExpression: "attribute_not_exists(pk) OR expiresAt < :now",
          ExpressionAttributeValues: { ":now": { N: String(now) } },
        }),
      );
      return true;
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException) return false;
      throw e;
    }
  }

  /** Record what became of a delivery. */
  async verdict(hook: string, id: string, verdict: DeliveryRecord["verdict"], detail: string, revision?: number): Promise<void> {
    await this.db
      .send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { pk: { S: `HOOK#${hook}` }, sk: { S: `d#${id}` } },
          UpdateExpression: revision !== undefined ? "SET verdict = :v, detail = :d, revision = :r" : "SET verdict = :v, detail = :d",
          ExpressionAttributeValues: { ":v": { S: verdict }, ":d": { S: detail.slice(0, 1024) }, ...(revision !== undefined ? { ":r": { N: String(revision) } } : {}) },
          ConditionExpression: "attribute_exists(pk)",
        }),
      )
      .catch((e: unknown) => {
        if (!(e instanceof ConditionalCheckFailedException)) throw e;
      });
  }

  /** A hook's deliveries (those of the last 30 days), newest first. */
  async deliveries(hook: string, limit = 50): Promise<DeliveryRecord[]> {
    const now = Math.floor(this.clock() / 1000);
    return (await this.#query(`HOOK#${hook}`))
      .filter((i) => Number(i.expiresAt?.N ?? Infinity) >= now)
      .map((i) => ({
        hook,
        id: i.id?.S ?? "",
        atMs: Number(i.at?.N ?? 0),
        from: i.from?.S ?? "",
        verdict: (i.verdict?.S ?? "accepted") as DeliveryRecord["verdict"],
        detail: i.detail?.S ?? "",
        ...(i.revision?.N ? { revision: Number(i.revision.N) } : {}),
      }))
      .sort((a, b) => b.atMs - a.atMs)
      .slice(0, limit)
      .map(({ atMs, ...d }) => ({ ...d, at: new Date(atMs).toISOString() }));
  }

  /** A deploy waits its turn (idempotent: the same delivery and service queue once). */
  async enqueue(d: Omit<QueuedDeploy, "key">): Promise<void> {
    const key = `${d.stack}#${String(d.at).padStart(15, "0")}#${d.delivery}#${d.service}`;
    await this.db
      .send(
        new PutItemCommand({
          TableName: this.table,
          Item: {
            pk: { S: QUEUE },
            sk: { S: key },
            stack: { S: d.stack },
            hook: { S: d.hook },
            delivery: { S: d.delivery },
            at: { N: String(d.at) },
            service: { S: d.service },
            ...(d.image ? { image: { S: d.image } } : {}),
            ...(d.pull ? { pull: { BOOL: true } } : {}),
            ...(d.confirmAfterMs ? { confirmAfterMs: { N: String(d.confirmAfterMs) } } : {}),
          },
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      )
      .catch((e: unknown) => {
        if (!(e instanceof ConditionalCheckFailedException)) throw e;
      });
  }

  /** Every waiting deploy, by stack, oldest first. */
  async queued(): Promise<QueuedDeploy[]> {
    return (await this.#query(QUEUE)).map((i) => ({
      key: i.sk?.S ?? "",
      stack: i.stack?.S ?? "",
      hook: i.hook?.S ?? "",
      delivery: i.delivery?.S ?? "",
      at: Number(i.at?.N ?? 0),
      service: i.service?.S ?? "",
      ...(i.image?.S ? { image: i.image.S } : {}),
      ...(i.pull?.BOOL ? { pull: true } : {}),
      ...(i.confirmAfterMs?.N ? { confirmAfterMs: Number(i.confirmAfterMs.N) } : {}),
    }));
  }

  async dequeue(key: string): Promise<void> {
    await this.db.send(new DeleteItemCommand({ TableName: this.table, Key: { pk: { S: QUEUE }, sk: { S: key } } }));
  }
}
