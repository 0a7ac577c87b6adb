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
