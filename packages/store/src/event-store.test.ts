import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDynamo, type StandIn } from "@corral/local";
import type { StackEvent } from "@corral/core";
import { ChangeFeed, dynamoClient, ensureTable, EventStore, VersionConflictError } from "./index.js";

let dynamo: StandIn;
let store: EventStore;
const feed = new ChangeFeed();

beforeAll(async () => {
  dynamo = await startDynamo();
  const db = dynamoClient({ endpoint: dynamo.endpoint, table: "corral-test" });
  await ensureTable(db, "corral-test");
  store = new EventStore(db, { table: "corral-test", feed, snapshotEvery: 3 });
});
afterAll(() => dynamo.stop());

const created = (stack: string): StackEvent => ({ type: "StackCreated", stack, by: "admin" });
const started = (op: string): StackEvent => ({ type: "OperationStarted", op, kind: "up", revision: 1, by: "admin", source: "cli" });

describe("event store on dynalite", () => {
  it("appends commits and reads them back in order", async () => {
    await store.append("a", 0, [created("a")]);
    await store.append("a", 1, [started("op1")]);
    const commits = await store.commits("a");
    expect(commits.map((c) => [c.version, c.events[0]?.type])).toEqual([
      [1, "StackCreated"],
      [2, "OperationStarted"],
    ]);
    expect((await store.commits("a", 1)).map((c) => c.version)).toEqual([2]);
    expect(await store.stackNames()).toContain("a");
  });

  it("turns a taken version into a typed conflict and writes nothing", async () => {
    await store.append("b", 0, [created("b")]);
    const err = await store.append("b", 0, [created("b")]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VersionConflictError);
    expect(err).toMatchObject({ stackName: "b", version: 1 });
    expect(await store.commits("b")).toHaveLength(1);
  });

  it("folds snapshot plus tail, and stays right when the snapshot is stale", async () => {
    await store.append("c", 0, [created("c")]);
    for (let v = 1; v <= 3; v++) await store.append("c", v, [started(`op${v}`)]);
    const first = await store.load("c"); // folds 4 commits and writes a snapshot at version 4
    expect(first).toMatchObject({ version: 4, exists: true, op: { id: "op3" } });
    await store.append("c", 4, [started("op4")]); // the snapshot is now stale
    expect(await store.load("c")).toMatchObject({ version: 5, op: { id: "op4" } });
  });

  it("wakes a waiter when a stack changes", async () => {
    const waited = feed.wait("d", 5000);
    const t0 = Date.now();
    await store.append("d", 0, [created("d")]);
    await waited;
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});

describe("the states a process keeps between loads", () => {
  /** A store of its own (as another process has), counting the requests it sends by command. */
  const counted = (options: { cacheStacks?: number; clock?: () => number; soleWriter?: boolean } = {}) => {
    const db = dynamoClient({ endpoint: dynamo.endpoint, table: "corral-test" });
    const sent: string[] = [];
    db.middlewareStack.add((next, context) => (args) => (sent.push(context.commandName ?? "?"), next(args)), { step: "initialize" });
    return { store: new EventStore(db, { table: "corral-test", snapshotEvery: 3, ...options }), sent };
  };

  it("a second load reads only the commits after the kept state, and sees what another process appended since", async () => {
    const { store: mine, sent } = counted();
    const other = counted().store;
    await other.append("k1", 0, [created("k1")]);
    expect((await mine.load("k1")).version).toBe(1);
    expect(sent).toEqual(["GetItemCommand", "QueryCommand"]);
    await other.append("k1", 1, [started("op1")]);
    sent.length = 0;
    const state = await mine.load("k1");
    expect(sent).toEqual(["QueryCommand"]); // no snapshot read
    expect(state).toMatchObject({ version: 2, op: { id: "op1" } });
    expect(state).toEqual(await counted().store.load("k1")); // the same as a process that kept nothing folds
  });

  it("still writes a snapshot every snapshotEvery commits, for the processes that keep nothing", async () => {
    const { store: mine, sent } = counted();
    await mine.append("k2", 0, [created("k2")]);
    await mine.load("k2");
    for (let v = 1; v <= 3; v++) await mine.append("k2", v, [started(`op${v}`)]);
    sent.length = 0;
    await mine.load("k2"); // 3 commits after the state it read, which had no snapshot under it
    expect(sent).toEqual(["QueryCommand", "PutItemCommand"]);
    const fresh = counted();
    expect((await fresh.store.load("k2")).version).toBe(4);
    expect(fresh.sent).toEqual(["GetItemCommand", "QueryCommand"]);
  });

  it("keeps at most cacheStacks states, the most recently loaded; 0 keeps none", async () => {
    const { store: mine, sent } = counted({ cacheStacks: 1 });
    for (const s of ["k3", "k4"]) await mine.append(s, 0, [created(s)]);
    await mine.load("k3");
    await mine.load("k4"); // k3 goes
    sent.length = 0;
    await mine.load("k4");
    await mine.load("k3");
    expect(sent).toEqual(["QueryCommand", "GetItemCommand", "QueryCommand"]);
    const none = counted({ cacheStacks: 0 });
    await none.store.load("k3");
    await none.store.load("k3");
    expect(none.sent).toEqual(["GetItemCommand", "QueryCommand", "GetItemCommand", "QueryCommand"]);
  });

  it("with maxAgeMs, answers a state read that recently as it is, unless this process appended to the stack since", async () => {
    let now = 1_000;
    const { store: mine, sent } = counted({ clock: () => now });
    const other = counted().store;
    await other.append("k5", 0, [created("k5")]);
    await mine.load("k5");
    await other.append("k5", 1, [started("op1")]);
    sent.length = 0;
    now += 2_000;
    expect((await mine.load("k5", { maxAgeMs: 2_000 })).version).toBe(1); // another process's commit: not seen yet
    expect(sent).toEqual([]);
    now += 1;
    expect((await mine.load("k5", { maxAgeMs: 2_000 })).version).toBe(2); // past the age: read again
    expect(sent).toEqual(["QueryCommand"]);
    await mine.append("k5", 2, [started("op2")]);
    sent.length = 0;
    expect((await mine.load("k5", { maxAgeMs: 60_000 })).version).toBe(3); // its own append: never answered stale
    expect(sent).toEqual(["QueryCommand", "PutItemCommand"]); // (and the snapshot of every 3 commits)
    sent.length = 0;
    expect((await mine.load("k5")).version).toBe(3); // without maxAgeMs: read every time
    expect(sent).toEqual(["QueryCommand"]);
  });

  it("a load an append of this process overtook does not keep its state as current", async () => {
    const { store: mine, sent } = counted();
    await mine.append("k6", 0, [created("k6")]);
    const loading = mine.load("k6");
    await mine.append("k6", 1, [started("op1")]);
    await loading;
    sent.length = 0;
    expect((await mine.load("k6", { maxAgeMs: 60_000 })).version).toBe(2);
    expect(sent).toEqual(["QueryCommand"]);
  });

  describe("the table's sole writer (the embedded server)", () => {
    it("a kept state is folded forward by its own appends: loads read nothing, and the state is what a fresh read folds", async () => {
      const { store: mine, sent } = counted({ soleWriter: true });
      await mine.append("s1", 0, [created("s1")]);
      await mine.load("s1");
      sent.length = 0;
      await mine.append("s1", 1, [started("op1")]);
      const state = await mine.load("s1");
      expect(sent).toEqual(["PutItemCommand"]); // the append, and no read
      expect(state).toMatchObject({ version: 2, op: { id: "op1" } });
      expect(state).toEqual(await counted().store.load("s1"));
    });

    it("writes the snapshot every snapshotEvery commits as it appends, for the next start", async () => {
      const { store: mine, sent } = counted({ soleWriter: true });
      await mine.append("s2", 0, [created("s2")]);
      await mine.load("s2");
      sent.length = 0;
      for (let v = 1; v <= 3; v++) await mine.append("s2", v, [started(`op${v}`)]);
      expect(sent).toEqual(["PutItemCommand", "PutItemCommand", "PutItemCommand", "PutItemCommand"]); // 3 commits, 1 snapshot
      const fresh = counted();
      expect((await fresh.store.load("s2")).version).toBe(4);
      expect(fresh.sent).toEqual(["GetItemCommand", "QueryCommand"]);
    });

    it("a commit another wrote is met by the next append, which drops the kept state: the retry reads the log", async () => {
      const { store: mine } = counted({ soleWriter: true });
      const other = counted().store;
      await mine.append("s3", 0, [created("s3")]);
      await mine.load("s3");
      await other.append("s3", 1, [started("behind")]);
      expect((await mine.load("s3")).version).toBe(1); // not read: this process is meant to be the only writer
      await expect(mine.append("s3", 1, [started("mine")])).rejects.toBeInstanceOf(VersionConflictError);
      expect(await mine.load("s3")).toMatchObject({ version: 2, op: { id: "behind" } });
    });

    it("reads the index of stacks once, and adds the stacks it creates", async () => {
      const { store: mine, sent } = counted({ soleWriter: true });
      await counted().store.append("s5", 0, [created("s5")]);
      expect(await mine.stackNames()).toContain("s5");
      await mine.append("s6", 0, [created("s6")]);
      sent.length = 0;
      const names = await mine.stackNames();
      expect(names).toEqual(expect.arrayContaining(["s5", "s6"]));
      expect(new Set(names).size).toBe(names.length);
      expect(sent).toEqual([]);
    });

    it("a load an append overtook does not keep its state as current", async () => {
      const { store: mine, sent } = counted({ soleWriter: true });
      await mine.append("s4", 0, [created("s4")]);
      const loading = mine.load("s4");
      await mine.append("s4", 1, [started("op1")]);
      await loading;
      sent.length = 0;
      expect((await mine.load("s4")).version).toBe(2);
      sent.length = 0;
      expect((await mine.load("s4")).version).toBe(2);
      expect(sent).toEqual([]); // current again
    });
  });
});
