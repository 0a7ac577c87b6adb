import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDynamo, type StandIn } from "@corral/local";
import { dynamoClient, ensureTable, SubnetPoolExhaustedError, SubnetStore } from "./index.js";

let dynamo: StandIn;
let db: ReturnType<typeof dynamoClient>;
let n = 0;
// each test its own table: pools overlap between tests otherwise
const table = async () => {
  const name = `corral-subnets-${n++}`;
  await ensureTable(db, name);
  return name;
};
const pool = (size: number) => Array.from({ length: size }, (_, i) => `10.200.${i}.0/24`);

beforeAll(async () => {
  dynamo = await startDynamo();
  db = dynamoClient({ endpoint: dynamo.endpoint, table: "corral-subnets" });
});
afterAll(() => dynamo.stop());

describe("stack subnets on dynalite", () => {
  it("gives each stack a subnet per host, the same one every time, and no subnet twice, also when asked all at once from two processes", async () => {
    const t = await table();
    const [a, b] = [new SubnetStore(db, t, pool(40)), new SubnetStore(db, t, pool(40))];
    const asks = Array.from({ length: 30 }, (_, i) => [`s${i % 10}`, `h${Math.floor(i / 10)}`] as const);
    const got = await Promise.all(asks.flatMap(([stack, host], i) => [(i % 2 ? a : b).assign(stack, host), (i % 2 ? b : a).assign(stack, host)]));
    for (let i = 0; i < got.length; i += 2) expect(got[i]).toBe(got[i + 1]); // the same stack and host asked twice at once: one answer
    const once = got.filter((_, i) => i % 2 === 0);
    expect(new Set(once).size).toBe(30);
    expect(await a.assign("s3", "h1")).toBe(once[asks.findIndex(([s, h]) => s === "s3" && h === "h1")]);
    expect(Object.keys(await a.ofStack("s3")).sort()).toEqual(["h0", "h1", "h2"]);
  });

  it("says so when the pool is spent, naming the stack and host; released subnets are given out again", async () => {
    const t = await table();
    const store = new SubnetStore(db, t, pool(2));
    const first = await store.assign("a", "h1");
    await store.assign("b", "h1");
    await expect(store.assign("c", "h1")).rejects.toThrow(SubnetPoolExhaustedError);
    await expect(store.assign("c", "h1")).rejects.toThrow("no free subnet for stack c on host h1: all 2 of the pool are taken");
    expect(await store.ofStack("c")).toEqual({});
    await store.release("a");
    expect(await store.ofStack("a")).toEqual({});
    expect(await store.assign("c", "h1")).toBe(first);
  });

  it("lists the stacks holding the pool's subnets (not another pool's), and gives back one host's", async () => {
    const t = await table();
    const store = new SubnetStore(db, t, pool(4));
    const vteps = new SubnetStore(db, t, ["10.127.0.1/32", "10.127.0.2/32"]);
    await store.assign("a", "h1");
    await store.assign("a", "h2");
    await store.assign("b/x", "h1").catch(() => {}); // any name: the holder is cut at its last '/'
    await vteps.assign("#vtep", "h1");
    expect(await store.holders()).toEqual([{ stack: "a", host: "h1" }, { stack: "a", host: "h2" }, { stack: "b/x", host: "h1" }]);
    expect(await vteps.holders()).toEqual([{ stack: "#vtep", host: "h1" }]);
    await store.releaseOne("a", "h1");
    expect(Object.keys(await store.ofStack("a"))).toEqual(["h2"]);
    await store.releaseOne("a", "h2");
    expect(await store.holders()).toEqual([{ stack: "b/x", host: "h1" }]);
  });

  it("a process that died between pointing and claiming leaves nothing held by nobody: the next assignment claims it or moves on", async () => {
    const t = await table();
    const store = new SubnetStore(db, t, pool(4));
    const taken = await store.assign("other", "h1");
    const free = pool(4).find((x) => x !== taken)!;
    // a pointer written, its claim never made: to a free subnet, and (a race lost) to one another stack holds
    await db.send(new PutItemCommand({ TableName: t, Item: { pk: { S: "STACKNET#web" }, sk: { S: "h1" }, subnet: { S: free } } }));
    await db.send(new PutItemCommand({ TableName: t, Item: { pk: { S: "STACKNET#web" }, sk: { S: "h2" }, subnet: { S: taken } } }));
    expect(await store.ofStack("web")).toEqual({}); // unclaimed pointers route nothing
    expect(await store.assign("web", "h1")).toBe(free);
    const h2 = await store.assign("web", "h2");
    expect(h2).not.toBe(taken);
    expect(await store.ofStack("web")).toEqual({ h1: free, h2 });
    expect(await store.ofStack("other")).toEqual({ h1: taken });
  });
});
