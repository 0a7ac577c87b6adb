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

  describe("remembered credentials and listings", () => {
    let now = 1_000_000;
    let db: ReturnType<typeof dynamoClient>;
    // `other` is another process (another function) writing to the same table
    let mine: HostStore;
    let other: HostStore;
    beforeAll(() => {
      db = dynamoClient({ endpoint: dynamo.endpoint, table: "corral-test" });
      mine = new HostStore(db, "corral-test", { credentialsMs: 5_000, clock: () => now });
      other = new HostStore(db, "corral-test");
    });

    it("a token hash and keys are remembered for credentialsMs; `fresh` and the end of the window read them again", async () => {
      await other.register(reg("c1"), "t1", "k1");
      expect(await mine.tokenHash("c1")).toBe("t1");
      await other.register(reg("c1", { lastSeen: now }), "t2", "k2");
      expect(await mine.tokenHash("c1")).toBe("t1"); // remembered
      expect(await mine.publicKeys("c1", now)).toEqual(["k1"]);
      expect(await mine.tokenHash("c1", true)).toBe("t2");
      expect(await mine.publicKeys("c1", now)).toEqual(["k2", "k1"]); // the fresh read is remembered in turn
      await other.register(reg("c1", { lastSeen: now }), "t3", "k3");
      now += 5_000;
      expect(await mine.tokenHash("c1")).toBe("t3");
    });

    it("what this store writes is seen at once: a registration's new token, a removal", async () => {
      await mine.register(reg("c2"), "t1", "k1");
      expect(await mine.tokenHash("c2")).toBe("t1");
      await mine.register(reg("c2"), "t2", "k2");
      expect(await mine.tokenHash("c2")).toBe("t2");
      expect(await mine.remove("c2")).toBe(true);
      expect(await mine.tokenHash("c2")).toBeUndefined();
      expect(await mine.publicKeys("c2", now)).toEqual([]);
    });

    it("an unknown host is not remembered: it is found as soon as it registers elsewhere", async () => {
      expect(await mine.tokenHash("c3")).toBeUndefined();
      await other.register(reg("c3"), "t1", "k1");
      expect(await mine.tokenHash("c3")).toBe("t1");
    });

    it("a listing with maxAgeMs answers again within it, unless this store changed a host; without, it reads", async () => {
      await mine.register(reg("c4"), "t", "k");
      const first = await mine.list({ maxAgeMs: 1_000 });
      expect(first.find((h) => h.id === "c4")?.state).toBe("active");
      first.length = 0; // each caller's array is its own
      await other.setState("c4", "draining");
      expect((await mine.list({ maxAgeMs: 1_000 })).find((h) => h.id === "c4")?.state).toBe("active"); // another's change, within the age
      expect((await mine.list()).find((h) => h.id === "c4")?.state).toBe("draining");
      await other.setState("c4", "active");
      await mine.list({ maxAgeMs: 1_000 });
      await mine.setState("c4", "inactive"); // this store's change: seen at once
      expect((await mine.list({ maxAgeMs: 1_000 })).find((h) => h.id === "c4")?.state).toBe("inactive");
      await mine.updateLabels("c4", { zone: "b" }, []);
      expect((await mine.list({ maxAgeMs: 1_000 })).find((h) => h.id === "c4")?.labels).toEqual({ zone: "b" });
      await other.setState("c4", "draining");
      now += 1_000;
      expect((await mine.list({ maxAgeMs: 1_000 })).find((h) => h.id === "c4")?.state).toBe("draining");
    });
  });
});
