import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDynamo, startQueues, type StandIn } from "@corral/local";
import { GetQueueUrlCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { decide, evolveAll, initialState, type Command, type ServiceSpec, type StackEvent } from "@corral/core";
import { controlQueueName, deleteFifoQueue, ensureFifoQueue, exportPublicKey, hostQueueName, QueueSender, sqsClient } from "@corral/queue";
import { ChangeFeed, dynamoClient, ensureTable, EventStore, HostStore, IdempotencyStore, KeyFileMasterKey, RegistryStore, SecretStore, SessionStore, UserStore, VolumeStore } from "@corral/store";
import { createApp } from "./app.js";

// Who may register a host id: the admin, a one-time join token made for that id, or the host's current token.
let dynamo: StandIn;
let queues: StandIn;
let app: ReturnType<typeof createApp>;
let hosts: HostStore;
let sessions: SessionStore;
let store: EventStore;
let sqs: SQSClient;
let now = 1_000_000;
const admin = "hosts-test-admin";
const controlKey = exportPublicKey(generateKeyPairSync("ed25519").publicKey);
const publicKey = () => exportPublicKey(generateKeyPairSync("ed25519").publicKey);

beforeAll(async () => {
  [dynamo, queues] = await Promise.all([startDynamo(), startQueues()]);
  const db = dynamoClient({ endpoint: dynamo.endpoint, table: "corral" });
  await ensureTable(db, "corral");
  sqs = sqsClient({ endpoint: queues.endpoint });
  hosts = new HostStore(db, "corral");
  store = new EventStore(db, { table: "corral" });
  sessions = new SessionStore(db, "corral");
  app = createApp({
    store,
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
    removeHostQueue: (url) => deleteFifoQueue(sqs, url),
    hostStaleMs: 9_000,
    agentReconcileMs: 500,
    agentOrphanGraceMs: 4_000,
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

const send = (method: string, path: string, token: string, body?: unknown) =>
  app.request(path, { method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
const message = async (res: Response) => ((await res.json()) as { message: string }).message;
const listed = async (token = admin) => (await (await send("GET", "/v1/hosts", token)).json()) as Array<Record<string, unknown>>;
const one = async (id: string, token = admin) => (await listed(token)).find((h) => h.id === id);

/** `host add ID --label ...` then the agent's registration with that token and address; the host's own token. */
async function joinHost(id: string, labels: Record<string, string> = {}, address = "192.0.2.10"): Promise<string> {
  const made = await post(`/v1/hosts/${id}/join`, admin, { labels });
  expect(made.status).toBe(201);
  const { token } = (await made.json()) as { token: string };
  const reg = await post(`/v1/hosts/${id}/register`, token, { engine: "28.2", address, publicKey: publicKey() });
  expect(reg.status).toBe(200);
  return ((await reg.json()) as { hostToken: string }).hostToken;
}

/** A stack with one running container on `host`, as the controller would have recorded it. */
async function containerOn(stack: string, host: string): Promise<void> {
  const web: ServiceSpec = { image: "corral-hello:1", environment: {}, labels: {}, ports: [], cap_add: [], cap_drop: ["ALL"], scale: 1 };
  let state = initialState(stack);
  const all: StackEvent[] = [];
  const apply = (command: Command) => {
    const events = decide(command, state);
    state = evolveAll(state, events);
    all.push(...events);
  };
  apply({ type: "Up", stack, op: "op1", services: { web }, by: "admin", source: "cli" });
  apply({ type: "Plan", hosts: [{ id: host }], now });
  for (const action of ["pull", "create", "start"]) {
    const step = Object.values(state.steps).find((r) => r.step.action === action)!.step;
    apply({ type: "Report", report: { kind: "report", stack, stepId: step.id, host, ok: true, ...(action === "create" ? { containerId: "d0cker" } : {}) }, hosts: [{ id: host }], now });
  }
  expect(Object.values(state.containers).map((c) => c.host)).toEqual([host]);
  await store.append(stack, 0, all, "test");
}

describe("hosts: add with labels, list, label, drain, activate, remove", () => {
  it("a join token's labels and the agent's address are the host's; the admin sees everything, a user id, name and state, a host nothing", async () => {
    const hostToken = await joinHost("lab1", { zone: "a", "example.com/rack": "r-1" }, "198.18.2.2");
    const lab1 = { id: "lab1", name: "lab1", state: "active", address: "198.18.2.2", labels: { zone: "a", "example.com/rack": "r-1" } };
    expect(await one("lab1")).toEqual({ ...lab1, containers: 0, lastSeen: new Date(now).toISOString(), engine: "28.2" });
    const user = (await (await post("/v1/users", admin, { name: "lisa" })).json()) as { token: string };
    expect(await one("lab1", user.token)).toEqual({ id: "lab1", name: "lab1", state: "active" });
    expect((await send("GET", "/v1/hosts", hostToken)).status).toBe(403);
  });

  it("the registration answer says how often to heartbeat: a third of the timeout", async () => {
    const made = (await (await post("/v1/hosts/beat1/join", admin, {})).json()) as { token: string };
    const reg = (await (await post("/v1/hosts/beat1/register", made.token, { publicKey: publicKey() })).json()) as { heartbeatMs: number; reconcileMs: number; orphanGraceMs: number };
    expect(reg.heartbeatMs).toBe(3_000);
    // and how often to reconcile, how long an orphan container may stay (the site's, short here)
    expect(reg).toMatchObject({ reconcileMs: 500, orphanGraceMs: 4_000 });
  });

  it("refuses bad labels, io.corral.* keys and an address that is not an IP, changing nothing", async () => {
    const bad = async (labels: Record<string, string>, re: RegExp) => {
      const res = await post("/v1/hosts/badlab/join", admin, { labels });
      expect(res.status).toBe(400);
      expect(await message(res)).toMatch(re);
    };
    await bad({ "io.corral.stack": "x" }, /io\.corral\.\* keys are corral's own/);
    await bad({ "IO.CORRAL.x": "x" }, /corral's own/);
    await bad({ ["k".repeat(64)]: "v" }, /1 to 63 characters/);
    await bad({ "a b": "v" }, /1 to 63 characters/);
    await bad({ zone: "two words" }, /printable characters without spaces/);
    await bad({ zone: "v".repeat(64) }, /up to 63/);
    await bad(Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"])), /at most 64 labels/);
    expect((await post("/v1/hosts/badlab/join", admin, { labels: {}, extra: 1 })).status).toBe(400);
    const made = (await (await post("/v1/hosts/badaddr/join", admin, {})).json()) as { token: string };
    const res = await post("/v1/hosts/badaddr/register", made.token, { publicKey: publicKey(), address: "example.com" });
    expect(res.status).toBe(400);
    expect(await message(res)).toMatch(/not an IP address/);
    expect(await hosts.get("badaddr")).toBeUndefined();
  });

  it("host add for a registered host makes a token to join it again, keeping its labels and state; with labels it is refused", async () => {
    await joinHost("again1", { zone: "b" });
    await post("/v1/hosts/again1/drain", admin, {});
    const relabel = await post("/v1/hosts/again1/join", admin, { labels: { zone: "c" } });
    expect(relabel.status).toBe(409);
    expect(await message(relabel)).toMatch(/host label again1/);
    const made = await post("/v1/hosts/again1/join", admin, {});
    const { token, rejoin } = (await made.json()) as { token: string; rejoin: boolean };
    expect(rejoin).toBe(true);
    expect((await post("/v1/hosts/again1/register", token, { publicKey: publicKey() })).status).toBe(200);
    expect(await one("again1")).toMatchObject({ labels: { zone: "b" }, state: "draining" });
  });

  it("labels are set and removed by the admin only, validated, 404 for a host nobody registered", async () => {
    const hostToken = await joinHost("lab2", { zone: "a", old: "1" });
    const res = await post("/v1/hosts/lab2/labels", admin, { set: { zone: "b", gpu: "true" }, remove: ["old"] });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: "lab2", name: "lab2", labels: { zone: "b", gpu: "true" } });
    expect((await post("/v1/hosts/lab2/labels", admin, { set: { "io.corral.x": "1" } })).status).toBe(400);
    expect((await post("/v1/hosts/lab2/labels", admin, { set: { a: "1" }, remove: ["a"] })).status).toBe(400);
    expect((await post("/v1/hosts/lab2/labels", admin, {})).status).toBe(400);
    expect((await post("/v1/hosts/nobody/labels", admin, { set: { a: "1" } })).status).toBe(404);
    // a host may not relabel (or drain, or remove) itself, nor a user
    expect((await post("/v1/hosts/lab2/labels", hostToken, { set: { zone: "mine" } })).status).toBe(403);
    expect((await post("/v1/hosts/lab2/activate", hostToken, {})).status).toBe(403);
    expect((await send("DELETE", "/v1/hosts/lab2", hostToken)).status).toBe(403);
    const user = (await (await post("/v1/users", admin, { name: "ulf" })).json()) as { token: string };
    expect((await post("/v1/hosts/lab2/labels", user.token, { set: { a: "1" } })).status).toBe(403);
    expect((await send("DELETE", "/v1/hosts/lab2", user.token)).status).toBe(403);
    expect((await post("/v1/hosts/lab2/drain", user.token, {})).status).toBe(403);
    expect((await post("/v1/hosts/lab3/join", user.token, {})).status).toBe(403);
    expect((await one("lab2"))?.labels).toEqual({ zone: "b", gpu: "true" });
  });

  it("drain, deactivate and activate set the state; a host not heard from for the timeout reads disconnected", async () => {
    const hostToken = await joinHost("st1");
    const state = async () => (await one("st1"))?.state;
    expect(await (await post("/v1/hosts/st1/drain", admin, {})).json()).toEqual({ id: "st1", name: "st1", state: "draining" });
    expect(await state()).toBe("draining");
    expect((await post("/v1/hosts/st1/deactivate", admin, {})).status).toBe(200);
    expect(await state()).toBe("inactive");
    expect((await post("/v1/hosts/st1/activate", admin, {})).status).toBe(200);
    expect(await state()).toBe("active");
    expect((await post("/v1/hosts/nobody/drain", admin, {})).status).toBe(404);
    now += 8_999;
    expect(await state()).toBe("active");
    now += 1;
    expect(await state()).toBe("disconnected");
    expect((await post("/v1/hosts/st1/heartbeat", hostToken, { engine: "28.2" })).status).toBe(200);
    expect(await state()).toBe("active");
  });

  it("host rm is refused while a stack has a container there; --force only once it is draining or inactive; then its token and queue stop working", async () => {
    const hostToken = await joinHost("rm1");
    await containerOn("onrm1", "rm1");
    expect((await one("rm1"))?.containers).toBe(1);
    const refused = await send("DELETE", "/v1/hosts/rm1", admin);
    expect(refused.status).toBe(409);
    expect(await message(refused)).toMatch(/host rm1 has 1 container of corral's stacks/);
    const active = await send("DELETE", "/v1/hosts/rm1?force=1", admin);
    expect(active.status).toBe(409);
    expect(await message(active)).toMatch(/is active and has 1 container/);
    expect(await hosts.get("rm1")).toBeDefined();
    await post("/v1/hosts/rm1/drain", admin, {});
    const queueUrl = (await hosts.get("rm1"))!.queueUrl;
    const removed = await send("DELETE", "/v1/hosts/rm1?force=true", admin);
    expect(removed.status).toBe(200);
    expect(await removed.json()).toEqual({ id: "rm1", name: "rm1", removed: true, containers: 1 });
    expect(await one("rm1")).toBeUndefined();
    // the removed host's token opens nothing; it cannot register again with it, nor heartbeat
    expect((await post("/v1/hosts/rm1/heartbeat", hostToken, { engine: "28.2" })).status).toBe(401);
    expect((await register("rm1", hostToken)).status).toBe(403);
    expect(await hosts.get("rm1")).toBeUndefined();
    // its queue is gone
    await expect(sqs.send(new GetQueueUrlCommand({ QueueName: queueUrl.split("/").pop()! }))).rejects.toThrow();
    expect((await send("DELETE", "/v1/hosts/rm1", admin)).status).toBe(404);
  });

  it("host rm of a host without containers needs no --force", async () => {
    const hostToken = await joinHost("rm2");
    expect((await send("DELETE", "/v1/hosts/rm2", admin)).status).toBe(200);
    expect((await post("/v1/hosts/rm2/heartbeat", hostToken, {})).status).toBe(401);
    expect((await send("DELETE", "/v1/hosts/rm2?force=maybe", admin)).status).toBe(400);
  });
});

describe("GET /v1/hosts/:id/wanted", () => {
  it("answers the host's own token (and the admin) with what each stack keeps there; another host's token, a user's and none are refused; a bad id is 400", async () => {
    const mine = await joinHost("want1");
    const other = await joinHost("want2");
    await containerOn("wantstack", "want1");
    const res = await send("GET", "/v1/hosts/want1/wanted", mine);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { host: string; complete: boolean; stacks: Array<{ stack: string; containers: unknown[] }> };
    expect(body.host).toBe("want1");
    expect(body.complete).toBe(true);
    expect(body.stacks.find((s) => s.stack === "wantstack")).toEqual({ stack: "wantstack", containers: [{ name: "wantstack-web-1", dockerId: "d0cker", running: true }] });
    expect((await (await send("GET", "/v1/hosts/want1/wanted", admin)).json()) as unknown).toEqual(body);
    // the other host wants none of it, and may not ask for want1's
    const theirs = (await (await send("GET", "/v1/hosts/want2/wanted", other)).json()) as typeof body;
    expect(theirs.stacks.find((s) => s.stack === "wantstack")).toBeUndefined();
    expect((await send("GET", "/v1/hosts/want1/wanted", other)).status).toBe(403);
    const user = (await (await post("/v1/users", admin, { name: "wendy" })).json()) as { token: string };
    expect((await send("GET", "/v1/hosts/want1/wanted", user.token)).status).toBe(403);
    expect((await app.request("/v1/hosts/want1/wanted")).status).toBe(401);
    expect((await send("GET", "/v1/hosts/want1/wanted", "host.want1.forged")).status).toBe(401);
    const bad = await send("GET", `/v1/hosts/${encodeURIComponent("bad id!")}/wanted`, admin);
    expect(bad.status).toBe(400);
    expect((await send("GET", "/v1/hosts/nobody-here/wanted", admin)).status).toBe(404);
  });
});
