import { mkdtempSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { afterEach, describe, expect, it } from "vitest";
import { sqsClient, standInOptions } from "@corral/queue";
import { dynamoClient, ensureTable } from "@corral/store";
import { startStandInsThread, type StandInsThread } from "./standins.js";

const running: StandInsThread[] = [];
afterEach(async () => {
  for (const t of running.splice(0)) await t.stop();
});

async function start(dir: string, extra: Partial<Parameters<typeof startStandInsThread>[0]> = {}) {
  const t = await startStandInsThread({ dynamoPath: join(dir, "dynamo"), dynamo: { socket: join(dir, "d.sock") }, queues: { socket: join(dir, "q.sock") }, ...extra });
  running.push(t);
  return t;
}

// The embedded server's stand-ins run in a worker thread: their parsing and LevelDB work is not on the event
// loop that answers the API. These are real dynalite and fauxqs, reached by the real SDK on their sockets.
describe("the stand-ins' thread", () => {
  it("serves DynamoDB and SQS on their sockets from a thread of its own, and the table outlives a stop", async () => {
    const dir = mkdtempSync(join(tmpdir(), "corral-standins-"));
    const t = await start(dir);
    expect(t.thread.threadId).toBeGreaterThan(0);
    expect(t.dynamo.socketPath).toBe(join(dir, "d.sock"));
    const db = dynamoClient({ table: "tab", sdk: standInOptions(t.dynamo) });
    await ensureTable(db, "tab");
    await db.send(new PutItemCommand({ TableName: "tab", Item: { pk: { S: "a" }, sk: { S: "b" }, v: { S: "kept" } } }));
    const sqs = sqsClient({ endpoint: t.queues.endpoint, ...(t.queues.socketPath ? { socketPath: t.queues.socketPath } : {}) });
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: "q" }));
    await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: "hello" }));
    const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 1 }));
    expect(got.Messages?.map((m) => m.Body)).toEqual(["hello"]);
    db.destroy();
    sqs.destroy();

    const exited = new Promise<number>((resolve) => t.thread.once("exit", resolve));
    await running.splice(0)[0]!.stop();
    await exited; // the thread is gone, not left running

    const again = await start(dir);
    const db2 = dynamoClient({ table: "tab", sdk: standInOptions(again.dynamo) });
    const item = await db2.send(new GetItemCommand({ TableName: "tab", Key: { pk: { S: "a" }, sk: { S: "b" } }, ConsistentRead: true }));
    expect(item.Item?.v?.S).toBe("kept");
    db2.destroy();
  });

  it("shows a tap every body, through a proxy in front of the thread", async () => {
    const dir = mkdtempSync(join(tmpdir(), "corral-standins-"));
    const seen: string[] = [];
    const t = await start(dir, { storeTap: (direction, body) => void seen.push(`${direction} ${body}`) });
    const db = dynamoClient({ table: "tab", sdk: standInOptions(t.dynamo) });
    await ensureTable(db, "tab");
    db.destroy();
    expect(seen.some((s) => s.startsWith("request ") && s.includes('"TableName":"tab"'))).toBe(true);
    expect(seen.some((s) => s.startsWith("response "))).toBe(true);
  });

  it("refuses to start when a stand-in cannot listen, saying why", async () => {
    const dir = mkdtempSync(join(tmpdir(), "corral-standins-"));
    await expect(
      startStandInsThread({ dynamoPath: join(dir, "dynamo"), dynamo: { socket: join(dir, "missing", "d.sock") }, queues: { socket: join(dir, "q.sock") } }),
    ).rejects.toThrow(/listen (ENOENT|EACCES)/);
  });

  it("refuses to start when a tap's proxy cannot listen (its port taken), saying why", async () => {
    const dir = mkdtempSync(join(tmpdir(), "corral-standins-"));
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", () => resolve()));
    try {
      const port = (taken.address() as AddressInfo).port;
      await expect(
        startStandInsThread({ dynamoPath: join(dir, "dynamo"), dynamo: { socket: join(dir, "d.sock") }, queues: port, queueTap: () => {} }),
      ).rejects.toThrow(/EADDRINUSE/);
    } finally {
      taken.close();
    }
  });

  it("tells its owner when the thread ends without being told to", async () => {
    const dir = mkdtempSync(join(tmpdir(), "corral-standins-"));
    const reasons: string[] = [];
    const t = await start(dir, { lost: (reason) => void reasons.push(reason) });
    await t.thread.terminate(); // as a crash of the thread would end it
    await expect.poll(() => reasons).toEqual([expect.stringMatching(/the stand-ins' thread ended/)]);
    await t.stop(); // and a stop after that returns
    running.splice(0);
  });
});
