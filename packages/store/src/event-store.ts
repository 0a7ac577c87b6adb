import {
  ConditionalCheckFailedException,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type DynamoDBClient,
} from "@aws-sdk/client-dynamodb";
import { createHmac, timingSafeEqual } from "node:crypto";
import { fold, initialState, stateFormat, utf8Bytes, VersionConflictError, type Commit, type EventLog, type StackEvent, type StackState } from "@corral/core";
import type { ChangeFeed } from "./feed.js";

/**
 * A commit the control plane did not write: its MAC is missing or wrong.
 * The table is reachable by more than the control plane (a local user on the
 * embedded stand-in, an over-broad IAM role on AWS); a forged StepPlanned
 * must never become a step an agent runs.
 */
export class UntrustedCommitError extends Error {
  override name = "UntrustedCommitError";
  constructor(
    readonly stackName: string,
    readonly version: number,
  ) {
    super(
      `stack ${stackName}: commit ${version} was not written by this control plane (its MAC does not match); corral will not act on it.` +
        ` Remove the item (pk STACK#${stackName}, version ${version}) or restore the table from a backup`,
    );
  }
}

/** Keyed MACs over what the store writes (HMAC-SHA256 under a key only the control plane holds). */
export interface Integrity {
  mac(data: string): string;
}

export function hmacIntegrity(key: Buffer): Integrity {
  return { mac: (data) => createHmac("sha256", key).update(data).digest("base64url") };
}

const sameMac = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};
const commitData = (stack: string, version: number, at: number, by: string, events: string) => `commit\n${stack}\n${version}\n${at}\n${by}\n${events}`;
const snapshotData = (stack: string, version: number, state: string) => `snapshot\n${stack}\n${version}\n${state}`;

/** Someone else appended first (core's, where the command handler matches it): imported from here by the store's callers too. */
export { VersionConflictError };

const keyIsFree = "attribute_not_exists(pk)";
const snapshotIsOlder = "attribute_not_exists(pk) OR version < :version";

const streamKey = (stack: string) => `STACK#${stack}`;
const commitKey = (version: number) => `v${String(version).padStart(12, "0")}`;
const SNAPSHOT = "snapshot";
const STACK_INDEX = "STACKS";
/** A snapshot larger than this is not written (a DynamoDB item holds 400 KB): loads fold from the last one that fit. */
const MAX_SNAPSHOT_BYTES = 350_000;

export interface EventStoreOptions {
  table: string;
  feed?: ChangeFeed;
  /** Write a snapshot once this many commits follow the last one. */
  snapshotEvery?: number;
  clock?: () => number;
  /** Sign every commit and snapshot, and refuse any read that does not carry a good MAC. */
  integrity?: Integrity;
  /** How many stacks' states this process keeps between loads (default 500; 0: none). */
  cacheStacks?: number;
  /**
   * This process is the table's only writer (the embedded server: it holds
   * its data folder, and the stand-in listens on a socket inside it): a state
   * it keeps is the stack's current one, folded forward by its own appends,
   * and a load of it reads nothing. A write that finds its version taken
   * (which only another writer could do) drops the kept state: the next load
   * reads the log, and refuses a commit without a good MAC. Default false:
   * the Lambda functions share their table.
   */
  soleWriter?: boolean;
}

/**
 * The event log of stacks: one item per commit at pk = STACK#name,
 * sk = zero-padded version, written only if that version is free. A snapshot
 * item caches the folded state; reads fold whatever follows it, so a stale
 * snapshot is never wrong, only slower. It is the EventLog core's command
 * handler (handleCommand) loads and appends through.
 *
 * The process keeps the states it last loaded (the most recent
 * `cacheStacks`): a load of one of those reads only the commits after it,
 * not the snapshot (a stack's commits are never rewritten or removed, so
 * folding them onto a state of this process's is folding them onto a
 * snapshot). Whatever other processes appended is in those commits.
 */
export class EventStore implements EventLog {
  readonly #db: DynamoDBClient;
  readonly #table: string;
  readonly #feed: ChangeFeed | undefined;
  readonly #snapshotEvery: number;
  readonly #clock: () => number;
  readonly #integrity: Integrity | undefined;
  readonly #cacheStacks: number;
  /**
   * States this process loaded, least recently used first: the version of the last snapshot known written, when
   * the read began, and how many appends this process had made to the stack by then (one made since, even while
   * the read ran, leaves the state not current for maxAgeMs).
   */
  readonly #cache = new Map<string, { state: StackState; snapshotAt: number; readAt: number; appends: number }>();
  /** How many appends this process made to each stack. */
  readonly #appends = new Map<string, number>();

  constructor(db: DynamoDBClient, options: EventStoreOptions) {
    this.#integrity = options.integrity;
    this.#db = db;
    this.#table = options.table;
    this.#feed = options.feed;
    this.#snapshotEvery = options.snapshotEvery ?? 20;
    this.#clock = options.clock ?? Date.now;
    this.#cacheStacks = options.cacheStacks ?? 500;
    this.#soleWriter = options.soleWriter ?? false;
  }

  readonly #soleWriter: boolean;

  /** Append a batch of events as version `expected + 1`. Throws VersionConflictError if taken. */
  async append(stack: string, expected: number, events: StackEvent[], by = "system"): Promise<Commit> {
    const commit: Commit = { stack, version: expected + 1, at: this.#clock(), events };
    if (events.some((e) => e.type === "StackCreated")) await this.#index(stack);
    const text = JSON.stringify(events);
    const mac = this.#integrity?.mac(commitData(stack, commit.version, commit.at, by, text));
    try {
      await this.#db.send(
        new PutItemCommand({
          TableName: this.#table,
          Item: {
            pk: { S: streamKey(stack) },
            sk: { S: commitKey(commit.version) },
            version: { N: String(commit.version) },
            at: { N: String(commit.at) },
            by: { S: by },
            events: { S: text },
            ...(mac ? { mac: { S: mac } } : {}),
          },
          ConditionExpression: keyIsFree,
        }),
      );
    } catch (e) {
      // sole writer: someone else wrote (a conflict), or the write may have landed or not: the log says which
      if (this.#soleWriter) this.#cache.delete(stack);
      if (e instanceof ConditionalCheckFailedException) throw new VersionConflictError(stack, commit.version);
      throw e;
    }
    const appends = (this.#appends.get(stack) ?? 0) + 1;
    this.#appends.set(stack, appends);
    if (this.#soleWriter) await this.#foldForward(stack, commit, appends);
    this.#feed?.changed(stack);
    return commit;
  }

  /** Sole writer: the kept state, at the version this commit follows, takes its events (and a snapshot when due). */
  async #foldForward(stack: string, commit: Commit, appends: number) {
    const kept = this.#cache.get(stack);
    if (!kept || kept.state.version !== commit.version - 1) {
      this.#cache.delete(stack);
      return;
    }
    const state = fold(kept.state, [commit]);
    let snapshotAt = kept.snapshotAt;
    if (state.version - snapshotAt >= this.#snapshotEvery) {
      await this.#snapshot(state);
      snapshotAt = state.version;
    }
    this.#keep(stack, { state, snapshotAt, readAt: this.#clock(), appends });
  }

  /** Commits with a version above `after`, oldest first. */
  async commits(stack: string, after = 0, limit?: number): Promise<Commit[]> {
    const out: Commit[] = [];
    let start: Record<string, import("@aws-sdk/client-dynamodb").AttributeValue> | undefined;
    do {
      const page = await this.#db.send(
        new QueryCommand({
          TableName: this.#table,
          KeyConditionExpression: "pk = :pk AND sk BETWEEN :from AND :to",
          ExpressionAttributeValues: {
            ":pk": { S: streamKey(stack) },
            ":from": { S: commitKey(after + 1) },
            ":to": { S: commitKey(999_999_999_999) },
          },
          ConsistentRead: true,
          ...(limit ? { Limit: limit - out.length } : {}),
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const item of page.Items ?? []) {
        const version = Number(item.version?.N);
        const at = Number(item.at?.N);
        const text = item.events?.S ?? "[]";
        if (this.#integrity) {
          const expected = this.#integrity.mac(commitData(stack, version, at, item.by?.S ?? "", text));
          if (!item.mac?.S || !sameMac(item.mac.S, expected) || item.sk?.S !== commitKey(version)) throw new UntrustedCommitError(stack, version);
        }
        out.push({ stack, version, at, events: JSON.parse(text) as StackEvent[] });
      }
      start = page.LastEvaluatedKey;
    } while (start && (!limit || out.length < limit));
    return out;
  }

  /**
   * The current state of a stack: snapshot plus every commit after it. With
   * `maxAgeMs`, a state this process read at most that long ago, and has not
   * appended to since, is answered as it is, with no read: for readers of
   * every stack at once that can take a state a few seconds old (what an
   * agent's reconcile asks: it removes a container only once it stayed
   * unwanted for a minute), whose reads would grow with the fleet otherwise.
   * What another process appended meanwhile is seen once that age is past.
   */
  async load(stack: string, options: { maxAgeMs?: number } = {}): Promise<StackState> {
    const kept = this.#cache.get(stack);
    const appends = this.#appends.get(stack) ?? 0;
    // (a state whose read overlapped an append of this process's may lack it: that one reads the commits after it)
    if (kept && this.#soleWriter && kept.appends === appends) {
      this.#keep(stack, kept); // now the most recently used
      return kept.state;
    }
    if (kept && options.maxAgeMs !== undefined && kept.appends === appends && this.#clock() - kept.readAt <= options.maxAgeMs) return kept.state;
    const readAt = this.#clock();
    let base: StackState;
    let snapshotAt: number;
    if (kept) {
      ({ state: base, snapshotAt } = kept);
    } else {
      const snap = await this.#db.send(
        new GetItemCommand({ TableName: this.#table, Key: { pk: { S: streamKey(stack) }, sk: { S: SNAPSHOT } }, ConsistentRead: true }),
      );
      base = this.#trustedSnapshot(stack, snap.Item) ?? initialState(stack);
      snapshotAt = base.version;
    }
    const tail = await this.commits(stack, base.version);
    const state = fold(base, tail);
    if (state.version - snapshotAt >= this.#snapshotEvery) {
      await this.#snapshot(state);
      snapshotAt = state.version;
    }
    this.#keep(stack, { state, snapshotAt, readAt, appends });
    return state;
  }

  #keep(stack: string, kept: { state: StackState; snapshotAt: number; readAt: number; appends: number }) {
    if (this.#cacheStacks <= 0) return;
    this.#cache.delete(stack); // re-inserted last: the most recently used
    this.#cache.set(stack, kept);
    if (this.#cache.size > this.#cacheStacks) this.#cache.delete(this.#cache.keys().next().value!);
  }

  /** A snapshot is a cache: one without a good MAC is ignored (the log is folded from the start). */
  #trustedSnapshot(stack: string, item: Record<string, import("@aws-sdk/client-dynamodb").AttributeValue> | undefined): StackState | undefined {
    const text = item?.state?.S;
    if (!text || Number(item.format?.N) !== stateFormat) return undefined; // another shape of state: fold the log afresh
    if (this.#integrity) {
      const expected = this.#integrity.mac(snapshotData(stack, Number(item.version?.N), text));
      if (!item.mac?.S || !sameMac(item.mac.S, expected)) return undefined;
    }
    // fields a snapshot written by an earlier corral lacks take their initial values
    const state: StackState = { ...initialState(stack), ...(JSON.parse(text) as StackState) };
    return state.name === stack && state.version === Number(item.version?.N) ? state : undefined;
  }

  async #snapshot(state: StackState): Promise<void> {
    const text = JSON.stringify(state);
    if (utf8Bytes(text) > MAX_SNAPSHOT_BYTES) return;
    const mac = this.#integrity?.mac(snapshotData(state.name, state.version, text));
    try {
      await this.#db.send(
        new PutItemCommand({
          TableName: this.#table,
          Item: {
            pk: { S: streamKey(state.name) },
            sk: { S: SNAPSHOT },
            version: { N: String(state.version) },
            state: { S: text },
            format: { N: String(stateFormat) },
            ...(mac ? { mac: { S: mac } } : {}),
          },
          ConditionExpression: snapshotIsOlder,
          ExpressionAttributeValues: { ":version": { N: String(state.version) } },
        }),
      );
    } catch (e) {
      if (!(e instanceof ConditionalCheckFailedException)) throw e; // a newer snapshot won
    }
  }

  async #index(stack: string): Promise<void> {
    await this.#db.send(
      new PutItemCommand({ TableName: this.#table, Item: { pk: { S: STACK_INDEX }, sk: { S: stack } } }),
    );
    this.#indexed.add(stack);
  }

  /** Sole writer: the names this process indexed, and the index as read once (see stackNames). */
  readonly #indexed = new Set<string>();
  #listed: Promise<string[]> | undefined;

  /** Names of stacks that have ever been created (callers check `exists`); the sole writer reads the index once. */
  async stackNames(): Promise<string[]> {
    if (!this.#soleWriter) return this.#readIndex();
    this.#listed ??= this.#readIndex().catch((e: unknown) => {
      this.#listed = undefined;
      throw e;
    });
    const listed = await this.#listed;
    return [...new Set([...listed, ...this.#indexed])];
  }

  async #readIndex(): Promise<string[]> {
    const names: string[] = [];
    let start: Record<string, import("@aws-sdk/client-dynamodb").AttributeValue> | undefined;
    do {
      const page = await this.#db.send(
        new QueryCommand({
          TableName: this.#table,
          KeyConditionExpression: "pk = :pk",
          ExpressionAttributeValues: { ":pk": { S: STACK_INDEX } },
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const item of page.Items ?? []) if (item.sk?.S) names.push(item.sk.S);
      start = page.LastEvaluatedKey;
    } while (start);
    return names;
  }
}
