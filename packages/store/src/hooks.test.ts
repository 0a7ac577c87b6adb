import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDynamo, type StandIn } from "@corral/local";
import { ChatStore, dynamoClient, ensureTable, HookStore, KeyFileMasterKey, RateStore } from "./index.js";

let dynamo: StandIn;
const TABLE = "corral-hooks";
const db = () => dynamoClient({ endpoint: dynamo.endpoint, table: TABLE });
const newKey = () => new KeyFileMasterKey(join(mkdtempSync(join(tmpdir(), "corral-key-")), "master.key"));

beforeAll(async () => {
  dynamo = await startDynamo();
  await ensureTable(db(), TABLE);
});
afterAll(async () => {
  await dynamo.stop();
});

describe("webhooks at rest", () => {
  it("keeps the secret sealed: in no item as written, out only through reveal", async () => {
    const store = new HookStore(db(), TABLE, newKey());
    const { record, secret } = await store.create({ stack: "shop", services: ["web"], kind: "github", allow: [], owner: "ann", group: "lab" });
    expect(record).toMatchObject({ stack: "shop", services: ["web"], kind: "github", owner: "ann" });
    expect(JSON.stringify((await db().send(new ScanCommand({ TableName: TABLE }))).Items)).not.toContain(secret);
    expect((await store.reveal(record.id))?.secret).toBe(secret);
    expect(await store.get(record.id)).toEqual(record);
    expect(await store.remove(record.id)).toBe(true);
    expect(await store.reveal(record.id)).toBeUndefined();
  });

  it("claims a delivery once; a claim left unsettled (a crash) is taken up again at its first time; a settled one is a duplicate", async () => {
    let now = 10_000;
    const store = new HookStore(db(), TABLE, newKey(), () => now);
    expect(await store.claim("h1", "d1", "127.0.0.1")).toEqual({ first: true, at: 10_000, settled: false });
    now = 20_000;
    expect(await store.claim("h1", "d1", "127.0.0.1")).toEqual({ first: false, at: 10_000, settled: false });
    await store.verdict("h1", "d1", "queued", "web → app:v2");
    expect(await store.claim("h1", "d1", "127.0.0.1")).toEqual({ first: false, at: 10_000, settled: true });
    await store.verdict("h1", "d1", "deployed", "web → app:v2 (revision 2)", 2);
    expect(await store.deliveries("h1")).toEqual([{ hook: "h1", id: "d1", at: new Date(10_000).toISOString(), from: "127.0.0.1", verdict: "deployed", detail: "web → app:v2 (revision 2)", revision: 2 }]);
  });

  it("queues deploys per stack in arrival order, each once", async () => {
    const store = new HookStore(db(), TABLE, newKey());
    await store.enqueue({ stack: "b", hook: "h", delivery: "x", at: 3, service: "web", image: "app:3" });
    await store.enqueue({ stack: "a", hook: "h", delivery: "y", at: 2, service: "web", image: "app:2" });
    await store.enqueue({ stack: "a", hook: "h", delivery: "z", at: 1, service: "web", image: "app:1" });
    await store.enqueue({ stack: "a", hook: "h", delivery: "z", at: 1, service: "web", image: "app:1" }); // again: once
    const queued = await store.queued();
    expect(queued.map((q) => `${q.stack} ${q.image}`)).toEqual(["a app:1", "a app:2", "b app:3"]);
    await store.dequeue(queued[0]!.key);
    expect((await store.queued()).map((q) => q.image)).toEqual(["app:2", "app:3"]);
  });
});

describe("chat at rest, and rate windows", () => {
  it("seals the signing secret; a signature is seen once within its window", async () => {
    let now = 1_000_000;
    const chat = new ChatStore(db(), TABLE, newKey(), () => now);
    expect(await chat.config()).toBeUndefined();
    await chat.configure("slack-signing-secret-0123456789", ["hooks.slack.com"]);
    expect(JSON.stringify((await db().send(new ScanCommand({ TableName: TABLE }))).Items)).not.toContain("slack-signing-secret");
    expect(await chat.config()).toMatchObject({ signingSecret: "slack-signing-secret-0123456789", responseHosts: ["hooks.slack.com"] });
    expect(await chat.firstSeen("sig-a", 600)).toBe(true);
    expect(await chat.firstSeen("sig-a", 600)).toBe(false);
    now += 601_000; // past its keep (TTL may not have removed it yet): a new request may carry it
    expect(await chat.firstSeen("sig-a", 600)).toBe(true);
  });

  it("counts a scope's requests per window, refusing past the limit with the time to the next window", async () => {
    let now = 120_000;
    const rates = new RateStore(db(), TABLE, () => now);
    expect(await rates.take("t", 2, 60_000)).toEqual({ ok: true });
    expect(await rates.take("t", 2, 60_000)).toEqual({ ok: true });
    now += 15_000;
    expect(await rates.take("t", 2, 60_000)).toEqual({ ok: false, retryAfterMs: 45_000 });
    expect(await rates.take("other", 2, 60_000)).toEqual({ ok: true });
    now += 45_000;
    expect(await rates.take("t", 2, 60_000)).toEqual({ ok: true });
  });
});
