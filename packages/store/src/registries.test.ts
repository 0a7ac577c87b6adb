import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetItemCommand, PutItemCommand, ScanCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDynamo, type StandIn } from "@corral/local";
import { dynamoClient, ensureTable, KeyFileMasterKey, RegistryStore } from "./index.js";

let dynamo: StandIn;
const TABLE = "corral-registries";
const db = () => dynamoClient({ endpoint: dynamo.endpoint, table: TABLE });
const newKey = () => new KeyFileMasterKey(join(mkdtempSync(join(tmpdir(), "corral-key-")), "master.key"));

beforeAll(async () => {
  dynamo = await startDynamo();
  await ensureTable(db(), TABLE);
});
afterAll(async () => {
  await dynamo.stop();
});

const login = { server: "reg.example.org:5000", username: "alice-bot", password: "s3cret-pass", owner: "alice", group: "labs" };

describe("registry logins at rest", () => {
  it("keeps one login per owner and server, replaces it, reveals it only through reveal, and removes it", async () => {
    let now = 1000;
    const store = new RegistryStore(db(), TABLE, newKey(), () => now);
    expect(await store.put(login)).toMatchObject({ kind: "created", record: { server: login.server, username: "alice-bot", owner: "alice", group: "labs" } });
    expect(await store.put({ ...login, owner: "bob", group: "bio", username: "bob" })).toMatchObject({ kind: "created" });
    now = 2000;
    const again = await store.put({ ...login, password: "rotated" });
    expect(again.kind).toBe("updated");
    expect(again.record.created).toBe(new Date(1000).toISOString());
    expect(again.record.updated).toBe(new Date(2000).toISOString());
    expect(await store.reveal("alice", login.server)).toEqual({ ...login, password: "rotated" });
    expect((await store.reveal("bob", login.server))?.password).toBe("s3cret-pass");
    const listed = await store.list();
    expect(listed.map((r) => `${r.owner}@${r.server}`).sort()).toEqual(["alice@reg.example.org:5000", "bob@reg.example.org:5000"]);
    expect(JSON.stringify(listed)).not.toMatch(/s3cret|rotated/);
    expect(await store.remove("alice", login.server)).toBe(true);
    expect(await store.remove("alice", login.server)).toBe(false);
    expect(await store.reveal("alice", login.server)).toBeUndefined();
    expect(await store.get("bob", login.server)).toMatchObject({ username: "bob" });
  });

  it("stores no password readable in the table", async () => {
    const store = new RegistryStore(db(), TABLE, newKey());
    const password = `plain-password-${Date.now()}`;
    await store.put({ ...login, owner: "carol", password });
    const items = JSON.stringify((await db().send(new ScanCommand({ TableName: TABLE }))).Items);
    expect(items).toContain("carol#reg.example.org:5000");
    expect(items).not.toContain(password);
    expect(items).not.toContain(Buffer.from(password).toString("base64"));
  });

  it("a sealed password moved to another owner's item does not open, nor under another master key", async () => {
    const store = new RegistryStore(db(), TABLE, newKey());
    await store.put({ ...login, owner: "dave" });
    await store.put({ ...login, owner: "erin", password: "erins" });
    const dave = (await db().send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: "REGISTRIES" }, sk: { S: `dave#${login.server}` } } }))).Item!;
    const erin = (await db().send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: "REGISTRIES" }, sk: { S: `erin#${login.server}` } } }))).Item!;
    await db().send(new PutItemCommand({ TableName: TABLE, Item: { ...erin, sealed: dave.sealed!, wrappedKey: dave.wrappedKey! } }));
    await expect(store.reveal("erin", login.server)).rejects.toThrow(/authenticate/);
    await expect(new RegistryStore(db(), TABLE, newKey()).reveal("dave", login.server)).rejects.toThrow();
  });

  it.each([
    [{ username: "" }, /username is 1-256/],
    [{ username: "u".repeat(257) }, /username is 1-256/],
    [{ password: "" }, /password is 1-16384 bytes/],
    [{ password: "é".repeat(8193) }, /password is 1-16384 bytes/],
    [{ server: "" }, /server is host\[:port\]/],
    [{ server: "reg.example.org/path" }, /server is host\[:port\]/],
    [{ server: "a#b" }, /server is host\[:port\]/],
    [{ owner: "" }, /owner is a user name/],
  ])("refuses %j, writing nothing", async (bad, why) => {
    const store = new RegistryStore(db(), TABLE, newKey());
    const before = (await store.list()).length;
    await expect(store.put({ ...login, owner: "frank", ...bad })).rejects.toThrow(why);
    expect((await store.list()).length).toBe(before);
  });
});
