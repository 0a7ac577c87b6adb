import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDynamo, type StandIn } from "@corral/local";
import { dynamoClient, ensureTable, LeaseBusyError, LeaseStore } from "./index.js";

let dynamo: StandIn;
let db: ReturnType<typeof dynamoClient>;
beforeAll(async () => {
  dynamo = await startDynamo();
  db = dynamoClient({ endpoint: dynamo.endpoint, table: "corral-test" });
  await ensureTable(db, "corral-test");
});
afterAll(() => dynamo.stop());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("leases on dynalite", () => {
  it("two holders of the same lease never overlap, on two stores as two processes would", async () => {
    const [a, b] = [new LeaseStore(db, "corral-test"), new LeaseStore(db, "corral-test")];
    const log: string[] = [];
    const hold = (store: LeaseStore, who: string) =>
      store.with("ports", async () => {
        log.push(`${who} in`);
        await sleep(30);
        log.push(`${who} out`);
      });
    await Promise.all([hold(a, "a"), hold(b, "b"), hold(a, "c")]);
    for (let i = 0; i < log.length; i += 2) expect(log[i + 1]).toBe(log[i]!.replace("in", "out"));
    expect(log).toHaveLength(6);
  });

  it("is given back when the holder throws", async () => {
    const store = new LeaseStore(db, "corral-test");
    await expect(store.with("ports", () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await store.with("ports", () => Promise.resolve("free"), { waitMs: 100 })).toBe("free");
  });

  it("a lease held past its time is taken over; one held within it makes a waiter give up", async () => {
    let now = 1_000_000;
    const store = new LeaseStore(db, "corral-test", () => now);
    let release!: () => void;
    const held = store.with("slow", () => new Promise<void>((r) => (release = r)), { leaseMs: 1000 });
    await sleep(20);
    await expect(store.with("slow", () => Promise.resolve(1), { waitMs: 0 })).rejects.toBeInstanceOf(LeaseBusyError);
    now += 1001; // the holder is gone for good, as far as anyone can tell
    expect(await store.with("slow", () => Promise.resolve(2), { waitMs: 0 })).toBe(2);
    release();
    await held; // its late release takes nothing from whoever holds it now
  });

  it("a process that takes leases alone (the embedded server) takes at once one held from before it started: its holder died", async () => {
    const dead = new LeaseStore(db, "corral-test");
    let release!: () => void;
    const held = dead.with("ports-sole", () => new Promise<void>((r) => (release = r)), { leaseMs: 60_000 });
    await sleep(20);
    const restarted = new LeaseStore(db, "corral-test", Date.now, Date.now());
    expect(await restarted.with("ports-sole", () => Promise.resolve("taken"), { waitMs: 50 })).toBe("taken");
    // another process on the same table, without the claim to be alone, waits for it as before
    const other = new LeaseStore(db, "corral-test");
    await restarted.with("ports-sole", async () => {
      await expect(other.with("ports-sole", () => Promise.resolve("no"), { waitMs: 50 })).rejects.toThrow(LeaseBusyError);
    });
    release();
    await held;
  });
});
