import type { ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DeleteMessageCommand, ReceiveMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { LambdaContext, LambdaEvent } from "hono/aws-lambda";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startDynamo, startQueues, type StandIn } from "@corral/local";
import { ensureFifoQueue, sqsClient } from "@corral/queue";
import { dynamoClient, ensureTable } from "@corral/store";
import { cleanupStack, composeFile, corral, docker, eventually, outputContains, spawnCorral } from "./support.js";

// The control plane as Lambda runs it, and nothing else: packages/aws's handlers, invoked by a small loop standing in
// for Lambda (an HTTP request → a function URL event for api.handler; the control queue's messages → SQS batches for
// controller.handler, deleting what it does not report failed, as the event source mapping does; a schedule →
// reconcile.handler), against dynalite and fauxqs. Modules are loaded fresh (a new instance, as a cold start or
// another concurrent instance would be) every few invocations, so nothing may rest on one instance's memory. A real
// agent joins through the function URL and runs the stack on the real engine.
const table = "corral-aws-e2e";
const prefix = "awse2e";
const token = "aws-e2e-admin-token-0123456789";
type ApiModule = typeof import("../packages/aws/src/api.js");
type ControllerModule = typeof import("../packages/aws/src/controller.js");
type ReconcileModule = typeof import("../packages/aws/src/reconcile.js");

/**
 * A module loaded fresh every `every` calls, as Lambda starts new instances. Loads go one at a time, for all three
 * functions: a registry reset while another load is under way would give that load half old, half new modules (a
 * test harness's hazard; Lambda's instances are processes of their own).
 */
let loading: Promise<unknown> = Promise.resolve();
function instances<T>(path: string, every: number): () => Promise<T> {
  let current: Promise<T> | undefined;
  let calls = 0;
  return () => {
    if (!current || calls++ % every === 0) {
      const next = loading.then(async () => {
        vi.resetModules();
        return (await import(path)) as T;
      });
      loading = next.catch(() => {});
      current = next;
    }
    return current;
  };
}

describe("the control plane as Lambda functions only, with a real agent", () => {
  let dynamo: StandIn;
  let queues: StandIn;
  let sqs: SQSClient;
  let http: Server;
  let url = "";
  let agent: ChildProcess | undefined;
  let stopped = false;
  const loops: Array<Promise<void>> = [];
  const saved = { ...process.env };
  const invocations = { api: 0, controller: 0, reconcile: 0, failedRecords: 0, streams: 0 };
  const api = () => ({ url, token });

  beforeAll(async () => {
    [dynamo, queues] = await Promise.all([startDynamo(), startQueues()]);
    const db = dynamoClient({ endpoint: dynamo.endpoint, table });
    await ensureTable(db, table); // the infra declares it on AWS
    db.destroy();
    sqs = sqsClient({ endpoint: queues.endpoint });
    const controlQueueUrl = await ensureFifoQueue(sqs, `${prefix}-control.fifo`, { visibilityTimeoutSeconds: 30, maxReceiveCount: 10 });
    const chatQueueUrl = await ensureFifoQueue(sqs, `${prefix}-chat.fifo`);
    Object.assign(process.env, {
      AWS_EC2_METADATA_DISABLED: "true",
      AWS_REGION: "us-east-1",
      CORRAL_TABLE: table,
      CORRAL_CONTROL_QUEUE_URL: controlQueueUrl,
      CORRAL_CHAT_QUEUE_URL: chatQueueUrl,
      CORRAL_MASTER_KEY_FILE: join(mkdtempSync(join(tmpdir(), "corral-aws-e2e-")), "master.key"),
      CORRAL_ADMIN_TOKEN: token,
      CORRAL_DYNAMO_ENDPOINT: dynamo.endpoint,
      CORRAL_SQS_ENDPOINT: queues.endpoint,
      CORRAL_QUEUE_PREFIX: prefix,
      CORRAL_HOST_TIMEOUT_MS: "30000",
      // an event stream ends after 2.5 s, as on AWS after 25 s: the CLI's follow must go on across them
      CORRAL_MAX_FOLLOW_MS: "2500",
    });

    // the function URL: every request becomes a payload-2.0 event for api.handler
    const apiModule = instances<ApiModule>("../packages/aws/src/api.js", 10);
    http = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        void (async () => {
          const [rawPath, rawQueryString = ""] = (req.url ?? "/").split("?") as [string, string?];
          const headers = Object.fromEntries(Object.entries(req.headers).flatMap(([k, v]) => (typeof v === "string" ? [[k, v]] : Array.isArray(v) ? [[k, v.join(",")]] : [])));
          const body = Buffer.concat(chunks);
          const event = {
            version: "2.0",
            routeKey: "$default",
            rawPath,
            rawQueryString,
            headers,
            requestContext: {
              accountId: "anonymous",
              apiId: "e2e",
              domainName: headers.host ?? "e2e.lambda-url.us-east-1.on.aws",
              domainPrefix: "e2e",
              http: { method: req.method ?? "GET", path: rawPath, protocol: "HTTP/1.1", sourceIp: "127.0.0.1", userAgent: headers["user-agent"] ?? "" },
              requestId: `req-${invocations.api}`,
              routeKey: "$default",
              stage: "$default",
              time: new Date().toUTCString(),
              timeEpoch: Date.now(),
            },
            body: body.length ? body.toString("base64") : undefined,
            isBase64Encoded: body.length > 0,
          } as unknown as LambdaEvent;
          invocations.api++;
          if (rawPath === "/v1/events") invocations.streams++;
          const context = { functionName: "corral-api", awsRequestId: `a${invocations.api}`, getRemainingTimeInMillis: () => 45_000 } as unknown as LambdaContext;
          const out = (await (await apiModule()).handler(event, context)) as { statusCode: number; headers?: Record<string, string>; body: string; isBase64Encoded?: boolean };
          res.writeHead(out.statusCode, out.headers ?? {});
          res.end(out.isBase64Encoded ? Buffer.from(out.body, "base64") : out.body);
        })().catch((e: unknown) => {
          res.writeHead(502, { "content-type": "text/plain" });
          res.end(`function error: ${String(e)}`);
        });
      });
    });
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;

    // the control queue's event source mapping: batches of up to 10, partial batch responses
    const controllerModule = instances<ControllerModule>("../packages/aws/src/controller.js", 3);
    loops.push(
      (async () => {
        while (!stopped) {
          const got = await sqs
            .send(new ReceiveMessageCommand({ QueueUrl: controlQueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageSystemAttributeNames: ["MessageGroupId"], VisibilityTimeout: 30 }))
            .catch(() => ({ Messages: [] }));
          const messages = got.Messages ?? [];
          if (messages.length === 0) continue;
          invocations.controller++;
          const records = messages.map((m) => ({ messageId: m.MessageId!, receiptHandle: m.ReceiptHandle!, body: m.Body!, attributes: { MessageGroupId: m.Attributes?.MessageGroupId ?? "" } }));
          const { batchItemFailures } = await (await controllerModule()).handler({ Records: records });
          const failed = new Set(batchItemFailures.map((f) => f.itemIdentifier));
          invocations.failedRecords += failed.size;
          for (const m of messages) if (!failed.has(m.MessageId!)) await sqs.send(new DeleteMessageCommand({ QueueUrl: controlQueueUrl, ReceiptHandle: m.ReceiptHandle! }));
        }
      })(),
    );
    // the schedule: a tick a second here (each minute on AWS), each in a fresh instance
    const reconcileModule = instances<ReconcileModule>("../packages/aws/src/reconcile.js", 1);
    loops.push(
      (async () => {
        while (!stopped) {
          await new Promise((r) => setTimeout(r, 1000));
          if (stopped) break;
          invocations.reconcile++;
          await (await reconcileModule()).handler().catch(() => {});
        }
      })(),
    );
  }, 60_000);

  afterAll(async () => {
    agent?.kill("SIGTERM");
    stopped = true;
    await Promise.all(loops);
    await cleanupStack("lambda").catch(() => {});
    await new Promise<void>((resolve) => http?.close(() => resolve()));
    sqs?.destroy();
    process.env = saved;
    await Promise.all([dynamo?.stop(), queues?.stop()]);
  }, 60_000);

  it("a host joins through the function URL; up, upgrade and rollback run the stack on the engine", async () => {
    const add = await corral(api(), ["host", "add", "lambda-host"]);
    expect(add.stderr).toBe("");
    expect(add.code).toBe(0);
    const joinToken = add.stdout.split("\n")[1]!.trim();
    agent = spawnCorral({ url, token: "" }, ["agent", "--join", url, "--token", joinToken, "--address", "127.0.0.1"], { CORRAL_TOKEN: "" });
    await outputContains(agent, "corral agent lambda-host connected");

    const v = (text: string) =>
      composeFile(`services:
  web:
    image: corral-busybox:latest
    command: ["sh", "-c", "echo ${text}; trap 'exit 0' TERM; while true; do sleep 1; done"]
    cap_drop: [ALL]
`);
    const up = await corral(api(), ["up", "-d", "-f", v("one"), "-s", "lambda"]);
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    const running = async () => (await docker.listContainers({ all: true, filters: { label: ["io.corral.stack=lambda"] } })).map((c) => `${c.Names[0]} ${c.State} ${c.Labels["io.corral.revision"] ?? ""}`).sort();
    expect(await running()).toEqual(["/lambda-web-1 running 1"]);
    // events -f from the stack's beginning, through everything that follows
    const follow = spawnCorral(api(), ["events", "-f", "lambda", "--since", "10m"]);
    let followed = "";
    follow.stdout?.on("data", (d: Buffer) => (followed += d.toString()));
    // its notices (a reconnect after the stack is gone: no stack to follow) go to stderr, apart from the events
    let notices = "";
    follow.stderr?.on("data", (d: Buffer) => (notices += d.toString()));

    const upgrade = await corral(api(), ["up", "-d", "--upgrade", "-f", v("two"), "-s", "lambda"]);
    expect(upgrade.code).toBe(0);
    expect(upgrade.stdout).toContain("Upgraded");
    const after = await running();
    expect(after).toContain("/lambda-web-1 running 2");
    expect(after.filter((c) => c.includes("exited") || c.includes("created"))).toHaveLength(1); // the old one, kept aside for a rollback

    const back = await corral(api(), ["up", "-d", "--rollback", "-s", "lambda"]);
    expect(back.code).toBe(0);
    await eventually(async () => (await running()).includes("/lambda-web-1 running 1"), 30_000, 250);
    const ps = JSON.parse((await corral(api(), ["ps", "lambda", "--containers", "--format", "json"])).stdout) as Array<{ name: string; state: string; host: string }>;
    expect(ps.map((c) => `${c.name} ${c.state} ${c.host}`)).toEqual(["lambda-web-1 running lambda-host"]);

    const before = (await corral(api(), ["events", "lambda", "--since", "10m"])).stdout.split("\n").filter(Boolean);
    await eventually(async () => followed.includes(before.at(-1)!), 45_000, 200);
    expect((await corral(api(), ["rm", "lambda"])).code).toBe(0);
    await eventually(async () => (await running()).length === 0, 30_000, 250);

    // events -f followed the stack's life across many streams (each ended by the function), printing each event once
    // (a stream reconnecting after the stack is gone finds no stack to follow: rm's own events may or may not be seen)
    await new Promise((r) => setTimeout(r, 1000));
    follow.kill("SIGINT");
    for (const type of ["StackCreated", "RevisionCommitted", "UpgradeStarted", "RollbackFinished"]) expect(followed).toContain(`  ${type}`);
    // the same lines, in the same order, as the whole log read at once before rm: none lost, none twice at a
    // stream's end; then rm's, of later versions only
    const lines = followed.split("\n").filter(Boolean);
    expect(lines.slice(0, before.length)).toEqual(before);
    const version = (l: string) => Number(l.split(/\s+/)[2]);
    const lastBefore = version(before.at(-1)!);
    expect(lines.slice(before.length).filter((l) => !(version(l) > lastBefore)), `events after rm's, or notices among them (stderr: ${notices})`).toEqual([]);
    expect(invocations.streams).toBeGreaterThan(2);
    // the work went through the functions: many instances of each, and no record failed
    expect(invocations.api).toBeGreaterThan(20);
    expect(invocations.controller).toBeGreaterThan(3);
    expect(invocations.reconcile).toBeGreaterThan(3);
    expect(invocations.failedRecords).toBe(0);
  }, 180_000);
});
