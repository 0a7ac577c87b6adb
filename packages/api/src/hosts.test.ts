import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDynamo, startQueues, type StandIn } from "@corral/local";
import { controlQueueName, ensureFifoQueue, exportPublicKey, hostQueueName, QueueSender, sqsClient } from "@corral/queue";
import { ChangeFeed, dynamoClient, ensureTable, EventStore, HostStore, IdempotencyStore, KeyFileMasterKey, RegistryStore, SecretStore, SessionStore, UserStore, VolumeStore } from "@corral/store";
import { createApp } from "./app.js";

// Who may register a host id: the admin, a one-time join token made for that id, or the host's current token.
let dynamo: StandIn;
let queues: StandIn;
let app: ReturnType<typeof createApp>;
let hosts: HostStore;
let sessions: SessionStore;
let now = 1_000_000;
const admin = "hosts-test-admin";
const controlKey = exportPublicKey(generateKeyPairSync("ed25519").publicKey);
const publicKey = () => exportPublicKey(generateKeyPairSync("ed25519").publicKey);

beforeAll(async () => {
  [dynamo, queues] = await Promise.all([startDynamo(), startQueues()]);
  const db = dynamoClient({ endpoint: dynamo.endpoint, table: "corral" });
  await ensureTable(db, "corral");
  const sqs = sqsClient({ endpoint: queues.endpoint });
  hosts = new HostStore(db, "corral");
  sessions = new SessionStore(db, "corral");
  app = createApp({
    store: new EventStore(db, { table: "corral" }),
    hosts,
    idempotency: new IdempotencyStore(db, "corral"),
    users: new UserStore(db, "corral"),
    volumes: new VolumeStore(db, "corral"),
    sessions,
    secrets: new SecretStore(db, "corral", new KeyFileMasterKey(join(mkdtempSync(join(tmpdir(), "corral-key-")), "master.key"))),
    registries: new RegistryStore(db, "corral", new KeyFileMasterKey(join(mkdtempSync(join(tmpdir(), "corral-key-")), "master.key"))),
    feed: new ChangeFeed(),
    sender: new QueueSender(sqs),
    controlQueueUrl: await ensureFifoQueue(sqs, controlQueueName("hosts-test")),
    hostQueue: (id) => ensureFifoQueue(sqs, hostQueueName("hosts-test", id)),
    sqs: { endpoint: queues.endpoint, region: "us-east-1" },
    visibilitySeconds: 30,
    adminToken: admin,
    controlKey,
    idempotencyKey: randomBytes(32),
    clock: () => now,
  });
});
afterAll(async () => {
  await Promise.all([dynamo?.stop(), queues?.stop()]);
});

const post = (path: string, token: string, body: unknown) =>
  app.request(path, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(body) });
const register = (id: string, token: string, key = publicKey()) => post(`/v1/hosts/${id}/register`, token, { engine: "28.2", publicKey: key });

describe("host registration", () => {
  it("the admin registers a host; the answer carries its token, its queue and the control plane's public key", async () => {
    const key = publicKey();
    const res = await register("h-admin", admin, key);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { hostToken: string; controlKey: string; queueUrl: string };
    expect(body.hostToken).toMatch(/^host\.h-admin\./);
    expect(body.controlKey).toBe(controlKey);
    expect(body.queueUrl).toMatch(/h-admin\.fifo$/);
    expect(await hosts.publicKey("h-admin")).toBe(key);
  });

  it("a host re-registers with its own current token, and not with another host's", async () => {
    const a = (await (await register("h-a", admin)).json()) as { hostToken: string };
    const b = (await (await register("h-b", admin)).json()) as { hostToken: string };
    const keyBefore = await hosts.publicKey("h-a");
    const stolen = await register("h-a", b.hostToken);
    expect(stolen.status).toBe(403);
    expect(await hosts.publicKey("h-a")).toBe(keyBefore); // nothing changed
    const again = await register("h-a", a.hostToken);
    expect(again.status).toBe(200);
    // the old token is spent: the new registration gave a new one
    expect((await register("h-a", a.hostToken)).status).toBe(403);
  });

  it("a join token registers its own host id once, within its hour; users cannot make one", async () => {
    const made = await post("/v1/hosts/node1/join", admin, {});
    expect(made.status).toBe(201);
    const { token } = (await made.json()) as { token: string };
    expect(token).toMatch(/^join\.node1\./);
    expect((await register("node2", token)).status).toBe(403); // another id
    expect((await register("node1", token)).status).toBe(200);
    expect((await register("node1", token)).status).toBe(403); // used up
    const late = (await (await post("/v1/hosts/node3/join", admin, {})).json()) as { token: string };
    now += 61 * 60_000;
    expect((await register("node3", late.token)).status).toBe(403); // expired
    const user = (await (await post("/v1/users", admin, { name: "joe" })).json()) as { token: string };
    expect((await post("/v1/hosts/node4/join", user.token, {})).status).toBe(403);
  });

  it("refuses a bad key, a bad id, unknown keys and an oversized body, changing nothing", async () => {
    expect((await post("/v1/hosts/h-bad/register", admin, { engine: "x" })).status).toBe(400);
    const bad = await post("/v1/hosts/h-bad/register", admin, { engine: "x", publicKey: Buffer.from("not a key").toString("base64") });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toMatch(/publicKey/);
    expect((await post("/v1/hosts/h-bad/register", admin, { publicKey: publicKey(), extra: 1 })).status).toBe(400);
    expect((await register("-bad", admin)).status).toBe(400);
    expect((await post("/v1/hosts/h-bad/register", admin, { publicKey: publicKey(), engine: "x".repeat(20_000) })).status).toBe(413);
    expect((await post("/v1/hosts/h-bad/register", "nonsense", { publicKey: publicKey() })).status).toBe(403);
    expect(await hosts.publicKey("h-bad")).toBeUndefined();
  });
});

describe("a host's session output", () => {
  it("speaks only for the containers the session asked of that host", async () => {
    const { hostToken } = (await (await register("h-sess", admin)).json()) as { hostToken: string };
    await sessions.create({ id: "s-own", owner: "admin", type: "logs", hosts: { "h-sess": ["app-web-1"] }, created: now });
    const chunk = (container: string) => ({ chunks: [{ seq: 0, container, stream: "stdout", data: Buffer.from("hi").toString("base64") }] });
    const stray = await post("/v1/hosts/h-sess/sessions/s-own/chunks", hostToken, chunk("other-db-1"));
    expect(stray.status).toBe(400);
    expect(((await stray.json()) as { message: string }).message).toMatch(/other-db-1 is not one of this session's containers/);
    expect((await post("/v1/hosts/h-sess/sessions/s-own/chunks", hostToken, chunk("app-web-1"))).status).toBe(200);
  });
});
