import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { startQueues, type StandIn } from "@corral/local";
import { ensureFifoQueue, QueueSender, receiveLoop, sqsClient, type Received } from "./index.js";

let sqsServer: StandIn;
let sqs: ReturnType<typeof sqsClient>;

beforeAll(async () => {
  sqsServer = await startQueues();
  sqs = sqsClient({ endpoint: sqsServer.endpoint });
});
afterAll(() => sqsServer.stop());

const schema = z.object({ n: z.number() });

/** Receive until `count` messages arrived (or the deadline), acknowledging as `fail` says. */
async function collect(queueUrl: string, count: number, fail: (m: Received<{ n: number }>) => boolean = () => false, ms = 8000) {
  const got: Received<{ n: number }>[] = [];
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  await receiveLoop({
    sqs,
    queueUrl,
    schema,
    waitSeconds: 1,
    signal: controller.signal,
    handle: async (batch) => {
      got.push(...batch);
      if (got.length >= count) controller.abort();
      return { failed: batch.filter(fail).map((b) => b.messageId) };
    },
  });
  clearTimeout(timer);
  return got;
}

describe("FIFO queues on fauxqs", () => {
  it("keeps order within a group", async () => {
    const url = await ensureFifoQueue(sqs, "order.fifo");
    const sender = new QueueSender(sqs);
    await sender.send(url, Array.from({ length: 15 }, (_, n) => ({ body: { n }, group: "stack-a", dedupId: `a-${n}` })));
    const got = await collect(url, 15);
    expect(got.map((m) => m.body.n)).toEqual(Array.from({ length: 15 }, (_, n) => n));
  });

  it("drops a repeated deduplication id", async () => {
    const url = await ensureFifoQueue(sqs, "dedup.fifo");
    const sender = new QueueSender(sqs);
    await sender.send(url, [{ body: { n: 1 }, group: "g", dedupId: "step-1" }]);
    await sender.send(url, [{ body: { n: 1 }, group: "g", dedupId: "step-1" }]);
    await sender.send(url, [{ body: { n: 2 }, group: "g", dedupId: "step-2" }]);
    const got = await collect(url, 3, () => false, 3000);
    expect(got.map((m) => m.body.n)).toEqual([1, 2]);
  });

  it("the duplicate switch delivers every message twice", async () => {
    const url = await ensureFifoQueue(sqs, "dup.fifo");
    await new QueueSender(sqs, { duplicate: true }).send(url, [{ body: { n: 7 }, group: "g", dedupId: "s" }]);
    const got = await collect(url, 2);
    expect(got.map((m) => m.body.n)).toEqual([7, 7]);
  });

  it("redelivers a message whose handler failed, after the visibility timeout", async () => {
    const url = await ensureFifoQueue(sqs, "redeliver.fifo", { visibilityTimeoutSeconds: 1 });
    await new QueueSender(sqs).send(url, [{ body: { n: 3 }, group: "g", dedupId: "r" }]);
    let first = true;
    const got = await collect(url, 2, () => {
      const failNow = first;
      first = false;
      return failNow;
    });
    expect(got.map((m) => m.body.n)).toEqual([3, 3]);
  });
});
