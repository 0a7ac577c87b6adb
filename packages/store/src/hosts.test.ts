import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDynamo, type StandIn } from "@corral/local";
import { dynamoClient, ensureTable, HostStore, KEY_OVERLAP_MS } from "./index.js";

let dynamo: StandIn;
let hosts: HostStore;
beforeAll(async () => {
  dynamo = await startDynamo();
  const db = dynamoClient({ endpoint: dynamo.endpoint, table: "corral-test" });
  await ensureTable(db, "corral-test");
  hosts = new HostStore(db, "corral-test");
});
afterAll(() => dynamo.stop());

const reg = (id: string, extra: { address?: string; lastSeen?: number } = {}) => ({ id, queueUrl: `q://${id}`, lastSeen: extra.lastSeen ?? 1, engine: "28", containers: 0, ...(extra.address ? { address: extra.address } : {}) });

describe("hosts on dynalite", () => {
  it("a join token's labels become the host's at its first registration; a re-registration keeps labels, name and state", async () => {
    await hosts.createJoin("n1", "hash1", 100, { zone: "a", "rack/row": "r1" });
    expect(await hosts.consumeJoin("n1", "other", 50)).toBeUndefined(); // not its token
    const join = await hosts.consumeJoin("n1", "hash1", 50);
    expect(join).toEqual({ labels: { zone: "a", "rack/row": "r1" } });
    expect(await hosts.consumeJoin("n1", "hash1", 50)).toBeUndefined(); // used up
    await hosts.register(reg("n1", { address: "10.0.0.1" }), "t1", "k1", { labels: join!.labels });
    expect(await hosts.get("n1")).toMatchObject({ id: "n1", name: "n1", address: "10.0.0.1", labels: { zone: "a", "rack/row": "r1" }, state: "active" });
    expect(await hosts.setState("n1", "draining")).toBe(true);
    await hosts.register(reg("n1", { lastSeen: 5 }), "t2", "k2", { labels: { ignored: "x" } });
    const again = await hosts.get("n1");
    expect(again).toMatchObject({ labels: { zone: "a", "rack/row": "r1" }, state: "draining", lastSeen: 5 });
    expect(again?.address).toBeUndefined(); // the new registration said no address
    expect(await hosts.tokenHash("n1")).toBe("t2");
  });

  it("a registration's new key replaces the old one, which still verifies for two minutes (the last process's reports)", async () => {
    await hosts.register(reg("nk", { lastSeen: 1000 }), "t", "k1");
    expect(await hosts.publicKeys("nk", 1000)).toEqual(["k1"]);
    await hosts.register(reg("nk", { lastSeen: 5000 }), "t", "k2");
    expect(await hosts.publicKey("nk")).toBe("k2");
    expect(await hosts.publicKeys("nk", 5000 + KEY_OVERLAP_MS - 1)).toEqual(["k2", "k1"]);
    expect(await hosts.publicKeys("nk", 5000 + KEY_OVERLAP_MS)).toEqual(["k2"]);
    // registered again with the same key: one key
    await hosts.register(reg("nk", { lastSeen: 9000 }), "t", "k2");
    expect(await hosts.publicKeys("nk", 9000)).toEqual(["k2"]);
    expect(await hosts.publicKeys("nobody", 0)).toEqual([]);
  });

  it("labels are set and removed together; a check can refuse the result; a missing host is undefined", async () => {
    await hosts.register(reg("n2"), "t", "k");
    expect(await hosts.updateLabels("n2", { a: "1", b: "2" }, [])).toEqual({ a: "1", b: "2" });
    expect(await hosts.updateLabels("n2", { c: "3" }, ["a", "missing"])).toEqual({ b: "2", c: "3" });
    await expect(hosts.updateLabels("n2", { d: "4" }, [], (l) => {
      if (Object.keys(l).length > 2) throw new Error("too many");
    })).rejects.toThrow("too many");
    expect((await hosts.get("n2"))?.labels).toEqual({ b: "2", c: "3" });
    expect(await hosts.updateLabels("nobody", { a: "1" }, [])).toBeUndefined();
  });

  it("concurrent label changes both land", async () => {
    await hosts.register(reg("n3"), "t", "k");
    await Promise.all([hosts.updateLabels("n3", { x: "1" }, []), hosts.updateLabels("n3", { y: "2" }, [])]);
    expect((await hosts.get("n3"))?.labels).toEqual({ x: "1", y: "2" });
  });

  it("a removed host is gone: no token, no key, no heartbeat, no state change, no join left", async () => {
    await hosts.register(reg("n4"), "t", "k");
    await hosts.createJoin("n4", "j", 100);
    expect(await hosts.remove("n4")).toBe(true);
    expect(await hosts.tokenHash("n4")).toBeUndefined();
    expect(await hosts.publicKey("n4")).toBeUndefined();
    expect(await hosts.heartbeat("n4", 10, "28", 0)).toBe(false);
    expect(await hosts.get("n4")).toBeUndefined(); // the heartbeat made nothing
    expect(await hosts.setState("n4", "active")).toBe(false);
    expect(await hosts.consumeJoin("n4", "j", 50)).toBeUndefined();
    expect(await hosts.remove("n4")).toBe(false);
    expect((await hosts.list()).map((h) => h.id)).not.toContain("n4");
  });
});
