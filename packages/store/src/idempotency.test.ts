import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDynamo, type StandIn } from "@corral/local";
import { CLAIM_LEASE_MS, dynamoClient, ensureTable, IdempotencyStore } from "./index.js";

// Idempotency keys on dynalite: a claim answered is replayed; one never answered (its server died) is taken over after its lease, by one repeat.
let dynamo: StandIn;
let db: ReturnType<typeof dynamoClient>;
beforeAll(async () => {
  dynamo = await startDynamo();
  db = dynamoClient({ endpoint: dynamo.endpoint, table: "corral-test" });
  await ensureTable(db, "corral-test");
});
afterAll(() => dynamo.stop());

describe("idempotency keys on dynalite", () => {
  it("a claim with no answer holds its key for its lease, saying how long; past it, one of two repeats takes it over", async () => {
    let now = 5_000_000;
    const [a, b] = [new IdempotencyStore(db, "corral-test", () => now), new IdempotencyStore(db, "corral-test", () => now)];
    expect(await a.claim("ci", "k1", "f1")).toEqual({ kind: "claimed" });
    now += 10_000;
    expect(await b.claim("ci", "k1", "f1")).toEqual({ kind: "pending", retryAfterMs: CLAIM_LEASE_MS - 10_000 });
    expect(await b.claim("ci", "k1", "other")).toEqual({ kind: "mismatch" });
    now += CLAIM_LEASE_MS;
    const both = await Promise.all([a.claim("ci", "k1", "f1"), b.claim("ci", "k1", "f1")]);
    expect(both.map((c) => c.kind).sort()).toEqual(["claimed", "pending"]);
    await a.complete("ci", "k1", { status: 202, body: '{"op":"op-1"}' });
    now += 10 * CLAIM_LEASE_MS;
    expect(await b.claim("ci", "k1", "f1")).toEqual({ kind: "done", response: { status: 202, body: '{"op":"op-1"}' } });
  });

  it("an answered claim is never taken over, however old (within its day); another scope's key is its own", async () => {
    let now = 9_000_000;
    const store = new IdempotencyStore(db, "corral-test", () => now);
    expect(await store.claim("ci", "k2", "f")).toEqual({ kind: "claimed" });
    await store.completeWithheld("ci", "k2", 201);
    now += 3_600_000;
    expect(await store.claim("ci", "k2", "f")).toEqual({ kind: "withheld", status: 201 });
    expect(await store.claim("bot", "k2", "f")).toEqual({ kind: "claimed" });
  });

  it("a process that answers alone (the embedded server) takes over at once a claim made before it started: its maker is gone", async () => {
    let now = 20_000_000;
    const before = new IdempotencyStore(db, "corral-test", () => now);
    expect(await before.claim("ci", "k3", "f")).toEqual({ kind: "claimed" });
    expect(await before.claim("ci", "k4", "f")).toEqual({ kind: "claimed" });
    now += 1_000;
    const restarted = new IdempotencyStore(db, "corral-test", () => now, CLAIM_LEASE_MS, now - 500);
    expect(await restarted.claim("ci", "k3", "f")).toEqual({ kind: "claimed" });
    // one it claimed itself holds for its lease, as any
    expect(await restarted.claim("ci", "k3", "f")).toMatchObject({ kind: "pending" });
  });
});
