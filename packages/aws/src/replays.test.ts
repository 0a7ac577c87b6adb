import { generateKeyPairSync } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDynamo, type StandIn } from "@corral/local";
import { CONTROL, Opener, signer } from "@corral/queue";
import { dynamoClient, ensureTable } from "@corral/store";
import { inGroupOrder } from "./controller.js";
import { TableReplays } from "./replays.js";

const table = "corral-replays-test";
let dynamo: StandIn;
let db: ReturnType<typeof dynamoClient>;

beforeAll(async () => {
  dynamo = await startDynamo();
  db = dynamoClient({ endpoint: dynamo.endpoint, table });
  await ensureTable(db, table);
});
afterAll(async () => {
  db?.destroy();
  await dynamo?.stop();
});

describe("replays across controller instances", () => {
  it("an envelope one opener handled is a replay to another that shares the table, until it expires", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    let now = 1_000_000;
    const clock = () => now;
    const opener = () => new Opener({ me: CONTROL, keyOf: () => publicKey, clock, replays: new TableReplays(db, table, clock) });
    const sealed = signer(CONTROL, privateKey, { ttlMs: 60_000, clock }).seal(CONTROL, { kind: "stack-changed", stack: "demo" });
    const first = await opener().open(sealed);
    expect(first.ok).toBe(true);
    // opened but not handled (the handling failed): the redelivery is no replay
    expect((await opener().open(sealed)).ok).toBe(true);
    if (first.ok) await opener().handled(first.sig, first.exp);
    expect(await opener().open(sealed)).toMatchObject({ ok: false, replay: true });
    now += 61_000;
    expect(await opener().open(sealed)).toMatchObject({ ok: false, reason: expect.stringMatching(/^expired/) });
    expect(await new TableReplays(db, table, clock).seen(first.ok ? first.sig : "")).toBe(false);
  });
});

describe("partial batch responses on a FIFO queue", () => {
  it("fail what failed and every later record of its group; other groups go on", () => {
    const records = [
      { id: "a1", group: "a" },
      { id: "b1", group: "b" },
      { id: "a2", group: "a" },
      { id: "b2", group: "b" },
      { id: "c1", group: "c" },
    ];
    expect(inGroupOrder(records, ["a1"])).toEqual(["a1", "a2"]);
    expect(inGroupOrder(records, ["b2", "c1"])).toEqual(["b2", "c1"]);
    expect(inGroupOrder(records, [])).toEqual([]);
  });
});
