import { createHmac, generateKeyPairSync } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DeleteMessageCommand, ReceiveMessageCommand, type Message, type SQSClient } from "@aws-sdk/client-sqs";
import type { LambdaContext, LambdaEvent } from "hono/aws-lambda";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startDynamo, startQueues, type StandIn } from "@corral/local";
import { CONTROL, deadLetterUrlOf, ensureFifoQueue, exportPublicKey, hostQueueName, signer, sqsClient } from "@corral/queue";
import { dynamoClient, ensureTable, EventStore, HostStore, KeyFileMasterKey } from "@corral/store";
import { storedControlKeys } from "./control-key.js";
import { TableReplays } from "./replays.js";
import type { SqsEvent } from "./controller.js";

// The handlers, each imported fresh (a new module registry: a cold start), against dynalite and fauxqs.
const table = "corral-aws-test";
const prefix = "awstest";
const token = "aws-test-admin-token-0123456789";
let dynamo: StandIn;
let queues: StandIn;
let db: ReturnType<typeof dynamoClient>;
let sqs: SQSClient;
let controlQueueUrl: string;
let chatQueueUrl: string;
let hostQueueUrl: string;
let keyFile: string;
const saved = { ...process.env };

async function fresh<T>(module: string): Promise<T> {
  vi.resetModules();
  return (await import(module)) as T;
}
type Api = typeof import("./api.js");
type ControllerFn = typeof import("./controller.js");
type ReconcileFn = typeof import("./reconcile.js");
type ChatFn = typeof import("./chat.js");

beforeAll(async () => {
  [dynamo, queues] = await Promise.all([startDynamo(), startQueues()]);
  db = dynamoClient({ endpoint: dynamo.endpoint, table });
  await ensureTable(db, table); // on AWS the infra declares it
  sqs = sqsClient({ endpoint: queues.endpoint });
  controlQueueUrl = await ensureFifoQueue(sqs, `${prefix}-control.fifo`);
  chatQueueUrl = await ensureFifoQueue(sqs, `${prefix}-chat.fifo`);
  hostQueueUrl = await ensureFifoQueue(sqs, hostQueueName(prefix, "h1"));
  keyFile = join(mkdtempSync(join(tmpdir(), "corral-aws-")), "master.key");
  Object.assign(process.env, {
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_REGION: "us-east-1",
    CORRAL_TABLE: table,
    CORRAL_CONTROL_QUEUE_URL: controlQueueUrl,
    CORRAL_CHAT_QUEUE_URL: chatQueueUrl,
    CORRAL_MASTER_KEY_FILE: keyFile,
    CORRAL_ADMIN_TOKEN: token,
    CORRAL_DYNAMO_ENDPOINT: dynamo.endpoint,
    CORRAL_SQS_ENDPOINT: queues.endpoint,
    CORRAL_QUEUE_PREFIX: prefix,
  });
  // a registered host, heard from just now, whose queue the steps go to
  await new HostStore(db, table).register({ id: "h1", queueUrl: hostQueueUrl, lastSeen: Date.now(), engine: "test", containers: 0 }, "no-token", exportPublicKey(generateKeyPairSync("ed25519").publicKey));
});

afterAll(async () => {
  process.env = saved;
  db?.destroy();
  sqs?.destroy();
  await Promise.all([dynamo?.stop(), queues?.stop()]);
});

/** A function URL request (payload format 2.0), as Lambda hands it to the API function. */
function functionUrlEvent(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): LambdaEvent {
  const [rawPath, rawQueryString = ""] = path.split("?") as [string, string?];
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath,
    rawQueryString,
    headers: { host: "abc123.lambda-url.us-east-1.on.aws", authorization: `Bearer ${token}`, "content-type": "application/json", ...headers },
    requestContext: {
      accountId: "anonymous",
      authentication: null,
      authorizer: {},
      apiId: "abc123",
      domainName: "abc123.lambda-url.us-east-1.on.aws",
      domainPrefix: "abc123",
      http: { method, path: rawPath, protocol: "HTTP/1.1", sourceIp: "203.0.113.7", userAgent: "corral-test" },
      requestId: `req-${Math.random().toString(36).slice(2)}`,
      routeKey: "$default",
      stage: "$default",
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
    body: body === undefined ? null : JSON.stringify(body),
    isBase64Encoded: false,
  };
}
const lambdaContext = { functionName: "corral-api", awsRequestId: "test", getRemainingTimeInMillis: () => 30_000 } as unknown as LambdaContext;

/** Take every message off a queue (what an agent would read), deleting them. */
async function drain(url: string): Promise<Message[]> {
  const out: Message[] = [];
  for (;;) {
    const got = (await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, MessageSystemAttributeNames: ["MessageGroupId"] }))).Messages ?? [];
    if (got.length === 0) return out;
    for (const m of got) await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle! }));
    out.push(...got);
  }
}
const record = (m: Message): SqsEvent["Records"][number] => ({ messageId: m.MessageId!, receiptHandle: m.ReceiptHandle!, body: m.Body!, attributes: { MessageGroupId: m.Attributes?.MessageGroupId ?? "" } });
const forged = (id: string, group: string): SqsEvent["Records"][number] => ({
  messageId: id,
  receiptHandle: `rh-${id}`,
  // signed, but not with the control plane's key
  body: signer(CONTROL, generateKeyPairSync("ed25519").privateKey).seal(CONTROL, { kind: "stack-changed", stack: "demo" }),
  attributes: { MessageGroupId: group },
});
const stepIds = (messages: Message[]) => messages.map((m) => (JSON.parse((JSON.parse(m.Body!) as { body: string }).body) as { step: { id: string }; attempt: number }).step.id);

describe("the Lambda entry points, each loaded fresh", () => {
  let stackChanged: Message;

  it("api: `up` through a function URL event answers 202 and its events are in the table", async () => {
    const { handler } = await fresh<Api>("./api.js");
    const compose = { services: { web: { image: "registry.example/web:1", cap_drop: ["ALL"] } } };
    const res = await handler(functionUrlEvent("POST", "/v1/stacks/demo/up", { files: [{ name: "docker-compose.yml", document: compose }] }), lambdaContext);
    expect(res.statusCode, res.body).toBe(202);
    const commits = await new EventStore(db, { table }).commits("demo");
    expect(commits.length).toBeGreaterThan(0);
    expect(commits.flatMap((c) => c.events.map((e) => e.type))).toContain("StackCreated");
    // and a fresh instance reads them back through the API
    const again = await (await fresh<Api>("./api.js")).handler(functionUrlEvent("GET", "/v1/stacks/demo"), lambdaContext);
    expect(again.statusCode).toBe(200);
    expect(JSON.parse(again.body)).toMatchObject({ name: "demo" });
    const unauthorized = await (await fresh<Api>("./api.js")).handler(functionUrlEvent("GET", "/v1/stacks", undefined, { authorization: "Bearer wrong" }), lambdaContext);
    expect(unauthorized.statusCode).toBe(401);
    // the "stack changed" message the controller function is to get
    const sent = await drain(controlQueueUrl);
    expect(sent).toHaveLength(1);
    stackChanged = sent[0]!;
  });

  it("controller: a forged record goes to the dead-letter queue and the rest of the batch is handled", async () => {
    const { handler } = await fresh<ControllerFn>("./controller.js");
    const bad = forged("forged-1", "demo");
    const out = await handler({ Records: [bad, record(stackChanged)] });
    // moved at once, as the embedded server's loop does: nothing to retry, nothing holds up the group
    expect(out.batchItemFailures).toEqual([]);
    const dead = await drain(deadLetterUrlOf(controlQueueUrl));
    expect(dead.map((m) => m.Body)).toEqual([bad.body]);
    // the stack's plan went to the host's queue
    expect(stepIds(await drain(hostQueueUrl)).length).toBeGreaterThan(0);
  });

  it("controller: with no dead-letter queue to move it to, only the forged record fails; the same good record again has no effect", async () => {
    process.env.CORRAL_CONTROL_DLQ_URL = `${controlQueueUrl.replace(/\.fifo$/, "")}-missing.fifo`;
    try {
      const store = new EventStore(db, { table });
      const before = (await store.load("demo")).version;
      const { handler } = await fresh<ControllerFn>("./controller.js");
      const out = await handler({ Records: [record(stackChanged), forged("forged-2", "elsewhere")] });
      expect(out.batchItemFailures).toEqual([{ itemIdentifier: "forged-2" }]);
      // the first instance remembered the envelope in the table: this one dropped it as a replay
      expect(await new TableReplays(db, table).seen((JSON.parse(stackChanged.Body!) as { sig: string }).sig)).toBe(true);
      expect((await store.load("demo")).version).toBe(before);
      expect(await drain(hostQueueUrl)).toEqual([]);
    } finally {
      delete process.env.CORRAL_CONTROL_DLQ_URL;
    }
  });

  it("controller: a malformed event is an error (the batch comes back), a malformed record only fails itself or is dead-lettered", async () => {
    const { handler } = await fresh<ControllerFn>("./controller.js");
    await expect(handler({ nope: true } as never)).rejects.toThrow();
    const out = await handler({ Records: [{ messageId: "junk", receiptHandle: "rh", body: "{not json", attributes: { MessageGroupId: "x" } }] });
    expect(out.batchItemFailures).toEqual([]);
    expect(await drain(deadLetterUrlOf(controlQueueUrl))).toHaveLength(1);
  });

  it("reconcile: a step planned whose message was lost is on the host's queue after the tick", async () => {
    const store = new EventStore(db, { table });
    const state = await store.load("demo");
    const planned = Object.values(state.steps).filter((s) => s.status === "planned");
    expect(planned.length).toBeGreaterThan(0);
    expect(await drain(hostQueueUrl)).toEqual([]); // lost: nothing on the queue
    process.env.CORRAL_RESEND_AFTER_MS = "0";
    try {
      const { handler } = await fresh<ReconcileFn>("./reconcile.js");
      await handler();
    } finally {
      delete process.env.CORRAL_RESEND_AFTER_MS;
    }
    const resent = stepIds(await drain(hostQueueUrl));
    expect(resent.length).toBeGreaterThan(0);
    expect(resent.every((id) => planned.some((s) => s.step.id === id))).toBe(true);
  });

  it("api: a long-poll sees an append another instance made, within its wait", async () => {
    const { handler } = await fresh<Api>("./api.js");
    const created = await handler(functionUrlEvent("POST", "/v1/stacks", { name: "poll" }), lambdaContext);
    expect(created.statusCode, created.body).toBeLessThan(300);
    const version = (await new EventStore(db, { table }).load("poll")).version;
    const started = Date.now();
    const waiting = handler(functionUrlEvent("GET", `/v1/stacks/poll/events?after=${version}&wait=10`), lambdaContext);
    await new Promise((r) => setTimeout(r, 300));
    // another instance appends meanwhile
    const compose = { services: { web: { image: "registry.example/web:1", cap_drop: ["ALL"] } } };
    const other = await (await fresh<Api>("./api.js")).handler(functionUrlEvent("POST", "/v1/stacks/poll/up", { files: [{ name: "docker-compose.yml", document: compose }] }), lambdaContext);
    expect(other.statusCode, other.body).toBe(202);
    const res = await waiting;
    expect(Date.now() - started).toBeLessThan(5000);
    expect(JSON.parse(res.body).events.length).toBeGreaterThan(0);
  });

  it("api: an event stream (follow=1) ends within CORRAL_MAX_FOLLOW_MS, with what came meanwhile", async () => {
    process.env.CORRAL_MAX_FOLLOW_MS = "1500";
    try {
      const { handler } = await fresh<Api>("./api.js");
      const started = Date.now();
      const following = handler(functionUrlEvent("GET", "/v1/events?follow=1"), lambdaContext);
      await new Promise((r) => setTimeout(r, 300));
      // another instance makes a stack meanwhile
      const created = await (await fresh<Api>("./api.js")).handler(functionUrlEvent("POST", "/v1/stacks", { name: "sse" }), lambdaContext);
      expect(created.statusCode, created.body).toBeLessThan(300);
      const res = await following;
      expect(Date.now() - started).toBeLessThan(5000);
      expect(res.statusCode).toBe(200);
      expect(res.headers?.["content-type"]).toMatch(/text\/event-stream/);
      expect(res.isBase64Encoded).toBe(false);
      expect(res.body).toContain("id: demo:1\n");
      expect(res.body).toContain("id: sse:1\n");
    } finally {
      delete process.env.CORRAL_MAX_FOLLOW_MS;
    }
  });

  it("every cold start uses the one control key kept (wrapped) in the table", async () => {
    const a = await storedControlKeys(db, table, new KeyFileMasterKey(keyFile));
    const b = await storedControlKeys(db, table, new KeyFileMasterKey(keyFile));
    expect(exportPublicKey(a.publicKey)).toBe(exportPublicKey(b.publicKey));
    const { handler } = await fresh<Api>("./api.js");
    const res = await handler(functionUrlEvent("GET", "/openapi.json"), lambdaContext);
    expect(res.statusCode).toBe(200);
  });

  it("chat: the API function answers a signed slash command at once; its work runs in the chat function, from the chat queue, and follows up on response_url", async () => {
    const posted: string[] = [];
    const answers = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString("utf8")));
      req.on("end", () => {
        posted.push(body);
        res.writeHead(200).end("ok");
      });
    });
    await new Promise<void>((r) => answers.listen(0, "127.0.0.1", () => r()));
    const responseHost = `127.0.0.1:${(answers.address() as AddressInfo).port}`;
    try {
      const api = (await fresh<Api>("./api.js")).handler;
      const secret = "chat-signing-secret-0123456789";
      expect((await api(functionUrlEvent("PUT", "/v1/chat/config", { signingSecret: secret, responseHosts: [responseHost] }), lambdaContext)).statusCode).toBe(200);
      expect((await api(functionUrlEvent("POST", "/v1/users", { name: "ann" }), lambdaContext)).statusCode).toBeLessThan(300);
      expect((await api(functionUrlEvent("PUT", "/v1/chat/users/U0ANN", { user: "ann" }), lambdaContext)).statusCode).toBe(200);
      // each request Slack sends has a trigger_id of its own: two commands alike in the same second are two requests, not a replay
      let triggers = 0;
      const slash = (text: string) => {
        const body = new URLSearchParams({ user_id: "U0ANN", text, trigger_id: `T${++triggers}`, response_url: `http://${responseHost}/commands/T1/secret-part` }).toString();
        const ts = String(Math.floor(Date.now() / 1000));
        const signature = `v0=${createHmac("sha256", secret).update(`v0:${ts}:${body}`).digest("hex")}`;
        const event = functionUrlEvent("POST", "/chat/slack", undefined, { "content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": ts, "x-slack-signature": signature });
        return { ...event, body };
      };
      const answered = await (await fresh<Api>("./api.js")).handler(slash("help"), lambdaContext);
      expect(answered.statusCode, answered.body).toBe(200);
      expect(JSON.parse(answered.body)).toMatchObject({ text: "corral: help (as ann)…" });
      // the API function did not do the work itself (it is frozen once it answered): a message went to the chat queue
      await new Promise((r) => setTimeout(r, 300));
      expect(posted).toEqual([]);
      const queued = await drain(chatQueueUrl);
      expect(queued).toHaveLength(1);
      expect(queued[0]!.Body).not.toContain("secret-part"); // the message names the stored job; the response_url stays sealed in the table
      const chat = (await fresh<ChatFn>("./chat.js")).handler;
      expect(await chat({ Records: [record(queued[0]!)] })).toEqual({ batchItemFailures: [] });
      expect(posted).toHaveLength(1);
      expect(JSON.parse(posted[0]!)).toMatchObject({ response_type: "ephemeral", text: expect.stringContaining("Commands:") });
      // the same message again, and one signed with another key: nothing posted, nothing failed
      expect(await (await fresh<ChatFn>("./chat.js")).handler({ Records: [record(queued[0]!), forged("forged-chat", "x")] })).toEqual({ batchItemFailures: [] });
      expect(posted).toHaveLength(1);
      // signed by the control plane itself, but no chat job (another kind, an id that is no uuid, a key too many): dropped
      const keys = await storedControlKeys(db, table, new KeyFileMasterKey(keyFile));
      const signed = (body: unknown, id: string) => ({ ...forged(id, "x"), body: signer(CONTROL, keys.privateKey).seal(CONTROL, body) });
      // a stored job waiting to run, whose id the bad messages name
      expect((await (await fresh<Api>("./api.js")).handler(slash("help"), lambdaContext)).statusCode).toBe(200);
      const [waiting] = await drain(chatQueueUrl);
      const { id } = JSON.parse((JSON.parse(waiting!.Body!) as { body: string }).body) as { id: string };
      const bad = [signed({ kind: "stack-changed", stack: "demo", id }, "b1"), signed({ kind: "chat-job", id: `${id}/../x` }, "b2"), signed({ kind: "chat-job", id, more: 1 }, "b3")];
      expect(await (await fresh<ChatFn>("./chat.js")).handler({ Records: bad })).toEqual({ batchItemFailures: [] });
      expect(posted).toHaveLength(1);
      // the good one still runs it
      expect(await (await fresh<ChatFn>("./chat.js")).handler({ Records: [record(waiting!)] })).toEqual({ batchItemFailures: [] });
      expect(posted).toHaveLength(2);
    } finally {
      await new Promise<void>((r) => answers.close(() => r()));
    }
  });
});
