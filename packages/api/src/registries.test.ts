import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDynamo, startQueues, type StandIn } from "@corral/local";
import { controlQueueName, ensureFifoQueue, exportPublicKey, hostQueueName, QueueSender, sqsClient } from "@corral/queue";
import { ChangeFeed, dynamoClient, ensureTable, EventStore, HostStore, IdempotencyStore, KeyFileMasterKey, RegistryStore, SecretStore, SessionStore, UserStore, VolumeStore } from "@corral/store";
import { decide, type Step } from "@corral/core";
import { createApp } from "./app.js";

// registry logins through the HTTP surface: who may add, see, remove and use them, and that a password never comes back out
let dynamo: StandIn;
let queues: StandIn;
let app: ReturnType<typeof createApp>;
let store: EventStore;
let db: ReturnType<typeof dynamoClient>;
const logged: string[] = [];
const admin = "test-admin-token";
const json = (t: string) => ({ authorization: `Bearer ${t}`, "content-type": "application/json" });

beforeAll(async () => {
  [dynamo, queues] = await Promise.all([startDynamo(), startQueues()]);
  db = dynamoClient({ endpoint: dynamo.endpoint, table: "corral" });
  await ensureTable(db, "corral");
  const sqs = sqsClient({ endpoint: queues.endpoint });
  store = new EventStore(db, { table: "corral" });
  const key = new KeyFileMasterKey(join(mkdtempSync(join(tmpdir(), "corral-key-")), "master.key"));
  const sink = (line: string, fields?: unknown) => logged.push(`${line} ${JSON.stringify(fields ?? {})}`);
  app = createApp({
    store,
    hosts: new HostStore(db, "corral"),
    idempotency: new IdempotencyStore(db, "corral"),
    users: new UserStore(db, "corral"),
    volumes: new VolumeStore(db, "corral"),
    sessions: new SessionStore(db, "corral"),
    secrets: new SecretStore(db, "corral", key),
    registries: new RegistryStore(db, "corral", key),
    feed: new ChangeFeed(),
    sender: new QueueSender(sqs),
    controlQueueUrl: await ensureFifoQueue(sqs, controlQueueName("registry-test")),
    hostQueue: (id) => ensureFifoQueue(sqs, hostQueueName("registry-test", id)),
    sqs: { endpoint: queues.endpoint, region: "us-east-1" },
    visibilitySeconds: 30,
    adminToken: admin,
    controlKey: exportPublicKey(generateKeyPairSync("ed25519").publicKey),
    idempotencyKey: randomBytes(32),
    log: { info: sink, error: sink, debug: sink },
  });
});
afterAll(async () => {
  await Promise.all([dynamo?.stop(), queues?.stop()]);
});

const SERVER = "reg.example.org:5000";
const IMAGE = `${SERVER}/team/app:1`;
const PASSWORD = "ann-registry-p4ss";
const add = (t: string, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  app.request("/v1/registries", { method: "POST", headers: { ...json(t), ...headers }, body: JSON.stringify(body) });
const list = async (t: string) => (await (await app.request("/v1/registries", { headers: json(t) })).json()) as Array<Record<string, string>>;
const mkUser = async (name: string, groups: string[]) =>
  ((await (await app.request("/v1/users", { method: "POST", headers: json(admin), body: JSON.stringify({ name, groups }) })).json()) as { token: string }).token;
const registerHost = async (id: string) => {
  const body = JSON.stringify({ engine: "28", publicKey: exportPublicKey(generateKeyPairSync("ed25519").publicKey) });
  return ((await (await app.request(`/v1/hosts/${id}/register`, { method: "POST", headers: json(admin), body })).json()) as { hostToken: string }).hostToken;
};

/** A stack of `token`'s with one service of `image` at scale 2, planned on the given hosts as the controller would: its steps. */
async function plannedStack(token: string, stack: string, hosts: string[], image = IMAGE): Promise<Step[]> {
  const body = JSON.stringify({ files: [{ name: "docker-compose.yml", document: { services: { app: { image, cap_drop: ["ALL"], scale: 2 } } } }] });
  expect((await app.request(`/v1/stacks/${stack}/up`, { method: "POST", headers: json(token), body })).status).toBe(202);
  const state = await store.load(stack);
  const events = decide({ type: "Plan", hosts: hosts.map((id) => ({ id })), now: Date.now() }, state);
  await store.append(stack, state.version, events, "Plan");
  return events.flatMap((e) => (e.type === "StepPlanned" ? [e.step] : []));
}

const auth = (hostToken: string, host: string, q: Record<string, string>) => app.request(`/v1/hosts/${host}/registry-auth?${new URLSearchParams(q)}`, { headers: json(hostToken) });

let ann = "";
let ben = "";
let cid = "";
let h1 = "";
let h2 = "";

describe("registry logins", () => {
  beforeAll(async () => {
    ann = await mkUser("ann", ["lab"]);
    ben = await mkUser("ben", ["lab"]);
    cid = await mkUser("cid", ["other"]);
    h1 = await registerHost("reg-h1");
    h2 = await registerHost("reg-h2");
  });

  it("a user adds a login (again: replaced), sees theirs and their group's, never a password", async () => {
    const made = await add(ann, { server: SERVER, username: "ann", password: "first-pass" }, { "idempotency-key": "k1" });
    expect(made.status).toBe(201);
    expect(await made.json()).toMatchObject({ server: SERVER, username: "ann", owner: "ann", group: "lab", kind: "created" });
    const replaced = await add(ann, { server: SERVER, username: "ann", password: PASSWORD });
    expect(replaced.status).toBe(200);
    expect(await replaced.json()).toMatchObject({ kind: "updated" });
    expect((await add(ben, { server: "ghcr.io", username: "ben", password: "bens-pass" })).status).toBe(201);
    expect((await add(cid, { server: SERVER, username: "cid", password: "cids-pass" })).status).toBe(201);
    const seen = (rows: Array<Record<string, string>>) => rows.map((r) => `${r.owner}@${r.server}`);
    expect(seen(await list(ann))).toEqual([`ben@ghcr.io`, `ann@${SERVER}`]);
    expect(seen(await list(ben))).toEqual([`ben@ghcr.io`, `ann@${SERVER}`]);
    expect(seen(await list(cid))).toEqual([`cid@${SERVER}`]);
    expect(seen(await list(admin)).sort()).toEqual([`ann@${SERVER}`, `ben@ghcr.io`, `cid@${SERVER}`]);
    for (const rows of [await list(ann), await list(admin)]) {
      expect(Object.keys(rows[0]!).sort()).toEqual(["created", "group", "owner", "server", "updated", "username"]);
      expect(JSON.stringify(rows)).not.toMatch(/p4ss|first|bens-pass|cids-pass/);
    }
  });

  it.each([
    [{ server: SERVER, username: "", password: "hunter2-xyz" }, "username"],
    [{ server: SERVER, username: "u".repeat(257), password: "hunter2-xyz" }, "username"],
    [{ server: SERVER, username: "u\u001b[2J", password: "p" }, "username"],
    [{ server: SERVER, username: "u" }, "password"],
    [{ server: SERVER, username: "u", password: "" }, "password"],
    [{ server: SERVER, username: "u", password: "p".repeat(16 * 1024 + 1) }, "password"],
    [{ server: "https://reg.example.org", username: "u", password: "hunter2-xyz" }, "server"],
    [{ server: "reg.example.org/team", username: "u", password: "hunter2-xyz" }, "server"],
    [{ server: "myhost", username: "u", password: "hunter2-xyz" }, "server"],
    [{ server: "", username: "u", password: "hunter2-xyz" }, "server"],
    [{ server: `${"a".repeat(300)}.org`, username: "u", password: "hunter2-xyz" }, "server"],
  ])("refuses a bad value (%#) with 400 naming it (%s), storing nothing, never echoing the password", async (body: Record<string, string>, path) => {
    const before = await list(admin);
    const res = await add(cid, body);
    expect(res.status).toBe(400);
    const answer = (await res.json()) as { path: string; message: string };
    expect(answer.path).toBe(path);
    if (typeof body.password === "string" && body.password.length > 0) expect(answer.message).not.toContain(body.password);
    expect(await list(admin)).toEqual(before);
  });

  it("a host gets the stack owner's login only for a pull planned on it, of an image from that server, not yet reported (once reported, word of that alone)", async () => {
    const steps = await plannedStack(ann, "ann-app", ["reg-h1", "reg-h2"]);
    const pulls = steps.filter((s) => s.action === "pull");
    expect(pulls.map((s) => s.host).sort()).toEqual(["reg-h1", "reg-h2"]);
    const p1 = pulls.find((s) => s.host === "reg-h1")!;
    const p2 = pulls.find((s) => s.host === "reg-h2")!;
    const q = (step: Step, server = SERVER) => ({ stack: "ann-app", step: step.id, server });
    const got = await auth(h1, "reg-h1", q(p1));
    expect(got.status).toBe(200);
    expect(await got.json()).toEqual({ server: SERVER, username: "ann", password: PASSWORD });
    expect(await (await auth(h2, "reg-h2", q(p2))).json()).toMatchObject({ password: PASSWORD }); // every host that runs the service
    // another host's step, another server, a step that is no pull: 409, no such pull planned (never 404, which tells
    // the host that nobody has a login, and so to pull without one); another host's route: 403
    expect((await auth(h2, "reg-h2", q(p1))).status).toBe(409);
    expect((await auth(h1, "reg-h1", q(p1, "ghcr.io"))).status).toBe(409);
    expect((await auth(h1, "reg-h1", q(steps.find((s) => s.action === "create" && s.host === "reg-h1")!))).status).toBe(409);
    expect((await auth(h1, "reg-h1", { ...q(p1), step: "no-such-step" })).status).toBe(409);
    expect((await auth(h1, "reg-h2", q(p2))).status).toBe(403);
    // users never: not the owner, not another
    expect((await auth(ann, "reg-h1", q(p1))).status).toBe(403);
    expect((await auth(cid, "reg-h1", q(p1))).status).toBe(403);
    // bad queries answer 400 naming the parameter
    expect((await auth(h1, "reg-h1", { ...q(p1), server: "https://x.org" })).status).toBe(400);
    expect((await auth(h1, "reg-h1", { stack: "ann-app", server: SERVER })).status).toBe(400);
    // once reported, the pull is done: no login any more, only word that it was reported (the message came again, to an
    // agent restarted since: the steps after it go on), and to that host only, for that server only
    const state = await store.load("ann-app");
    const both = [{ id: "reg-h1" }, { id: "reg-h2" }];
    const report = decide({ type: "Report", report: { kind: "report", stack: "ann-app", stepId: p1.id, host: "reg-h1", ok: true }, hosts: both, now: Date.now() }, state);
    await store.append("ann-app", state.version, report, "Report");
    const again = await auth(h1, "reg-h1", q(p1));
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ server: SERVER, reported: true });
    expect((await auth(h2, "reg-h2", q(p1))).status).toBe(409);
    expect((await auth(h1, "reg-h1", q(p1, "ghcr.io"))).status).toBe(409);
    // a pull reported failed is no pull to go on from
    const failedState = await store.load("ann-app");
    const failed = decide({ type: "Report", report: { kind: "report", stack: "ann-app", stepId: p2.id, host: "reg-h2", ok: false, error: "no" }, hosts: both, now: Date.now() }, failedState);
    await store.append("ann-app", failedState.version, failed, "Report");
    expect((await auth(h2, "reg-h2", q(p2))).status).toBe(409);
  });

  it("a stack uses its owner's login, else its group's; another group's stack gets none of them", async () => {
    const [benPull] = (await plannedStack(ben, "ben-app", ["reg-h1"])).filter((s) => s.action === "pull");
    expect(await (await auth(h1, "reg-h1", { stack: "ben-app", step: benPull!.id, server: SERVER })).json()).toMatchObject({ username: "ann", password: PASSWORD });
    const [cidPull] = (await plannedStack(cid, "cid-app", ["reg-h1"])).filter((s) => s.action === "pull");
    expect(await (await auth(h1, "reg-h1", { stack: "cid-app", step: cidPull!.id, server: SERVER })).json()).toMatchObject({ username: "cid", password: "cids-pass" });
    const [cidGhcr] = (await plannedStack(cid, "cid-ghcr", ["reg-h1"], "ghcr.io/ben/private:1")).filter((s) => s.action === "pull");
    const none = await auth(h1, "reg-h1", { stack: "cid-ghcr", step: cidGhcr!.id, server: "ghcr.io" });
    // ben's login is ben's group's, not cid's: cid's host pulls without one (even over a copy ben's pull left there)
    expect(await none.json()).toEqual({ server: "ghcr.io", anonymous: true });
    const [cidQuay] = (await plannedStack(cid, "cid-quay", ["reg-h1"], "quay.io/x/y:1")).filter((s) => s.action === "pull");
    expect((await auth(h1, "reg-h1", { stack: "cid-quay", step: cidQuay!.id, server: "quay.io" })).status).toBe(404); // nobody's: pulled as any public image
  });

  it("rm removes the caller's own login, or with ?owner= one of their group's; another group's answers 404", async () => {
    expect((await app.request(`/v1/registries/${SERVER}?owner=ann`, { method: "DELETE", headers: json(cid) })).status).toBe(404);
    expect((await app.request(`/v1/registries/ghcr.io`, { method: "DELETE", headers: json(cid) })).status).toBe(404);
    expect((await app.request(`/v1/registries/https%3A%2F%2Fx.org`, { method: "DELETE", headers: json(cid) })).status).toBe(400);
    expect((await app.request(`/v1/registries/ghcr.io?owner=ben`, { method: "DELETE", headers: json(ann) })).status).toBe(200);
    const mine = await app.request(`/v1/registries/${SERVER}`, { method: "DELETE", headers: json(cid) });
    expect(await mine.json()).toEqual({ server: SERVER, owner: "cid", removed: true });
    expect((await list(admin)).map((r) => `${r.owner}@${r.server}`)).toEqual([`ann@${SERVER}`]);
  });

  it("a user name that still owns a login is not given again", async () => {
    expect((await add(admin, { server: "quay.io", username: "robot", password: "admins" })).status).toBe(201);
    await app.request("/v1/users/ann", { method: "DELETE", headers: json(admin) });
    const again = await app.request("/v1/users", { method: "POST", headers: json(admin), body: JSON.stringify({ name: "ann" }) });
    expect(again.status).toBe(409);
    expect(((await again.json()) as { message: string }).message).toContain(`a login for registry ${SERVER}`);
  });

  it("no password in the table (idempotency answers included), the access log, or any event", async () => {
    const items = JSON.stringify((await db.send(new ScanCommand({ TableName: "corral" }))).Items);
    for (const pw of [PASSWORD, "first-pass", "cids-pass", "bens-pass"]) {
      expect(items).not.toContain(pw);
      expect(items).not.toContain(Buffer.from(pw).toString("base64"));
      expect(logged.join("\n")).not.toContain(pw);
    }
    expect(logged.join("\n")).toContain("POST /v1/registries");
  });
});
