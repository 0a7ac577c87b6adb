import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDynamo, startQueues, type StandIn } from "@corral/local";
import { controlQueueName, ensureFifoQueue, exportPublicKey, hostQueueName, QueueSender, sqsClient } from "@corral/queue";
import { ChangeFeed, dynamoClient, ensureTable, EventStore, HostStore, IdempotencyStore, KeyFileMasterKey, LeaseStore, RegistryStore, SecretStore, SessionStore, UserStore, VolumeStore } from "@corral/store";
import { createApp } from "./app.js";

// Host ports are given out one decision at a time (a lease across API processes), reading what every stack holds.
// An up whose files publish no port takes none: it neither waits for that lease nor reads the other stacks.
let dynamo: StandIn;
let queues: StandIn;
let app: ReturnType<typeof createApp>;
let leases: LeaseStore;
/** DynamoDB requests the API made, by operation. */
const sent: string[] = [];
const admin = "test-admin-token";
const headers = { authorization: `Bearer ${admin}`, "content-type": "application/json" };

beforeAll(async () => {
  [dynamo, queues] = await Promise.all([startDynamo(), startQueues()]);
  const db = dynamoClient({ endpoint: dynamo.endpoint, table: "corral" });
  await ensureTable(db, "corral");
  db.middlewareStack.add((next, context) => (args) => (sent.push(context.commandName ?? "?"), next(args)), { step: "initialize", name: "countRequests" });
  const sqs = sqsClient({ endpoint: queues.endpoint });
  const key = new KeyFileMasterKey(join(mkdtempSync(join(tmpdir(), "corral-key-")), "master.key"));
  leases = new LeaseStore(db, "corral");
  app = createApp({
    // nothing kept between loads: every read of a stack is a request, as in a process that just started
    store: new EventStore(db, { table: "corral", cacheStacks: 0 }),
    hosts: new HostStore(db, "corral"),
    idempotency: new IdempotencyStore(db, "corral"),
    users: new UserStore(db, "corral"),
    volumes: new VolumeStore(db, "corral"),
    sessions: new SessionStore(db, "corral"),
    secrets: new SecretStore(db, "corral", key),
    registries: new RegistryStore(db, "corral", key),
    leases,
    feed: new ChangeFeed(),
    sender: new QueueSender(sqs),
    controlQueueUrl: await ensureFifoQueue(sqs, controlQueueName("lease-test")),
    hostQueue: (id) => ensureFifoQueue(sqs, hostQueueName("lease-test", id)),
    sqs: { endpoint: queues.endpoint, region: "us-east-1" },
    visibilitySeconds: 30,
    adminToken: admin,
    controlKey: exportPublicKey(generateKeyPairSync("ed25519").publicKey),
    idempotencyKey: randomBytes(32),
  });
});
afterAll(async () => {
  await Promise.all([dynamo?.stop(), queues?.stop()]);
});

const up = (stack: string, web: Record<string, unknown>) =>
  app.request(`/v1/stacks/${stack}/up`, { method: "POST", headers, body: JSON.stringify({ files: [{ name: "docker-compose.yml", document: { services: { web: { image: "nginx:1", cap_drop: ["ALL"], ...web } } } }] }) });
const noImageLookups = { image: "registry.invalid/app@sha256:" + "a".repeat(64) };

describe("an up that publishes no port", () => {
  it("makes as many store requests with 30 other stacks as with none", async () => {
    sent.length = 0;
    expect((await up("alone-a", noImageLookups)).status).toBe(202);
    const alone = sent.length;
    for (let i = 0; i < 30; i++) expect((await up(`other-${i}`, noImageLookups)).status).toBe(202);
    sent.length = 0;
    expect((await up("alone-b", noImageLookups)).status).toBe(202);
    expect(sent.length).toBe(alone);
    // one that publishes a port reads every stack (what ports they hold): 30 more stacks, 30 more reads at least
    sent.length = 0;
    expect((await up("with-port", { ...noImageLookups, ports: ["60010:80"] })).status).toBe(202);
    expect(sent.length).toBeGreaterThan(alone + 30);
  });

  it("is answered while another request holds the ports lease; one that publishes a port waits for it", async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let taken!: () => void;
    const holding = new Promise<void>((r) => (taken = r));
    const holder = leases.with("host-ports", () => (taken(), held));
    await holding;
    let portedAnswered = false;
    const ported = Promise.resolve(up("ported", { ...noImageLookups, ports: ["60011:80"] })).then((r) => ((portedAnswered = true), r));
    expect((await up("portless", noImageLookups)).status).toBe(202);
    expect(portedAnswered).toBe(false);
    release();
    await holder;
    expect((await ported).status).toBe(202);
  });
});
