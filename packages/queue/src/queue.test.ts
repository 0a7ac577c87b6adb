import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { startQueues, type StandIn } from "@corral/local";
import { generateKeyPairSync } from "node:crypto";
import { DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { CONTROL, deadLetterUrlOf, ensureFifoQueue, Opener, QueueSender, receiveLoop, signer, sqsClient, type Received } from "./index.js";

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
    await sender.send(url, Array.from({ length: 15 }, (_, n) => ({ body: { n }, group: "stack-a", dedupId: `a-${n}`, to: "t" })));
    const got = await collect(url, 15);
    expect(got.map((m) => m.body.n)).toEqual(Array.from({ length: 15 }, (_, n) => n));
  });

  it("drops a repeated deduplication id", async () => {
    const url = await ensureFifoQueue(sqs, "dedup.fifo");
    const sender = new QueueSender(sqs);
    await sender.send(url, [{ body: { n: 1 }, group: "g", dedupId: "step-1", to: "t" }]);
    await sender.send(url, [{ body: { n: 1 }, group: "g", dedupId: "step-1", to: "t" }]);
    await sender.send(url, [{ body: { n: 2 }, group: "g", dedupId: "step-2", to: "t" }]);
    const got = await collect(url, 3, () => false, 3000);
    expect(got.map((m) => m.body.n)).toEqual([1, 2]);
  });

  it("the duplicate switch delivers every message twice", async () => {
    const url = await ensureFifoQueue(sqs, "dup.fifo");
    await new QueueSender(sqs, { duplicate: true }).send(url, [{ body: { n: 7 }, group: "g", dedupId: "s", to: "t" }]);
    const got = await collect(url, 2);
    expect(got.map((m) => m.body.n)).toEqual([7, 7]);
  });

  it("the duplicate switch's second copies come in the reverse order of their groups, each group's own order kept", async () => {
    const url = await ensureFifoQueue(sqs, "dup-order.fifo");
    const m = (n: number, group: string) => ({ body: { n }, group, dedupId: `d${n}`, to: "t" });
    await new QueueSender(sqs, { duplicate: true }).send(url, [m(1, "a"), m(2, "a"), m(3, "b")]);
    const got = await collect(url, 6);
    expect(got.map((x) => x.body.n).sort()).toEqual([1, 1, 2, 2, 3, 3]);
    // within a group FIFO order holds for all four of a's
    expect(got.filter((x) => x.body.n !== 3).map((x) => x.body.n)).toEqual([1, 2, 1, 2]);
  });

  it("redelivers a message whose handler failed, after the visibility timeout", async () => {
    const url = await ensureFifoQueue(sqs, "redeliver.fifo", { visibilityTimeoutSeconds: 1 });
    await new QueueSender(sqs).send(url, [{ body: { n: 3 }, group: "g", dedupId: "r", to: "t" }]);
    let first = true;
    const got = await collect(url, 2, () => {
      const failNow = first;
      first = false;
      return failNow;
    });
    expect(got.map((m) => m.body.n)).toEqual([3, 3]);
  });
});

describe("signed envelopes", () => {
  const control = generateKeyPairSync("ed25519");
  const mallory = generateKeyPairSync("ed25519");
  const opener = (now = () => Date.now()) => new Opener({ me: "h1", keyOf: (by) => (by === CONTROL ? control.publicKey : undefined), clock: now });

  it("open what the control plane sealed for this host, and refuse everything else", async () => {
    const seal = signer(CONTROL, control.privateKey);
    const good = await opener().open(seal.seal("h1", { n: 1 }));
    expect(good).toMatchObject({ ok: true, by: CONTROL, body: { n: 1 } });
    const refuse = async (raw: string) => {
      const v = await opener().open(raw);
      return v.ok ? "accepted" : v.reason;
    };
    expect(await refuse(JSON.stringify({ n: 1 }))).toMatch(/not a signed corral envelope/);
    expect(await refuse("{not json")).toMatch(/not JSON/);
    expect(await refuse(seal.seal("h2", { n: 1 }))).toMatch(/addressed to h2/);
    expect(await refuse(signer(CONTROL, mallory.privateKey).seal("h1", { n: 1 }))).toMatch(/bad signature/);
    expect(await refuse(signer("host:h9", mallory.privateKey).seal("h1", { n: 1 }))).toMatch(/unknown sender host:h9/);
    expect(await refuse(signer(CONTROL, control.privateKey, { ttlMs: -1 }).seal("h1", { n: 1 }))).toMatch(/expired/);
    expect(await refuse(signer(CONTROL, control.privateKey, { ttlMs: 48 * 3600_000 }).seal("h1", { n: 1 }))).toMatch(/too long/);
    // a changed body, addressee or expiry breaks the signature
    const sealed = JSON.parse(seal.seal("h1", { n: 1 })) as Record<string, unknown>;
    expect(await refuse(JSON.stringify({ ...sealed, body: JSON.stringify({ n: 2 }) }))).toMatch(/bad signature/);
    expect(await refuse(JSON.stringify({ ...sealed, exp: (sealed.exp as number) + 1000 }))).toMatch(/bad signature/);
  });

  it("a sender with two keys (one replaced a moment ago): either verifies, no other does", async () => {
    const before = generateKeyPairSync("ed25519");
    const now = generateKeyPairSync("ed25519");
    const o = new Opener({ me: CONTROL, keyOf: (by) => (by === "host:h1" ? [now.publicKey, before.publicKey] : undefined) });
    expect(await o.open(signer("host:h1", before.privateKey).seal(CONTROL, { n: 1 }))).toMatchObject({ ok: true, body: { n: 1 } });
    expect(await o.open(signer("host:h1", now.privateKey).seal(CONTROL, { n: 2 }))).toMatchObject({ ok: true, body: { n: 2 } });
    expect(await o.open(signer("host:h1", mallory.privateKey).seal(CONTROL, { n: 3 }))).toMatchObject({ ok: false, reason: "bad signature for host:h1" });
    expect(await new Opener({ me: CONTROL, keyOf: () => [] }).open(signer("host:h1", now.privateKey).seal(CONTROL, { n: 4 }))).toMatchObject({ ok: false, reason: "unknown sender host:h1" });
  });

  it("keys remembered by the receiver that no longer verify are read again (fresh) before a message is refused", async () => {
    const old = generateKeyPairSync("ed25519");
    const current = generateKeyPairSync("ed25519");
    const asked: boolean[] = [];
    // the remembered answer is the old key; the store, read fresh, has the new one
    const o = new Opener({ me: CONTROL, keyOf: (_by, fresh) => (asked.push(fresh === true), fresh ? current.publicKey : old.publicKey) });
    expect(await o.open(signer("host:h1", current.privateKey).seal(CONTROL, { n: 1 }))).toMatchObject({ ok: true, body: { n: 1 } });
    expect(asked).toEqual([false, true]);
    asked.length = 0;
    expect(await o.open(signer("host:h1", old.privateKey).seal(CONTROL, { n: 2 }))).toMatchObject({ ok: true }); // the remembered key verifies: no read
    expect(asked).toEqual([false]);
    asked.length = 0;
    expect(await o.open(signer("host:h1", mallory.privateKey).seal(CONTROL, { n: 3 }))).toMatchObject({ ok: false, reason: "bad signature for host:h1" });
    expect(asked).toEqual([false, true]);
  });

  it("a message handled once is a replay when it comes again; one whose handling failed is not", async () => {
    const o = opener();
    const raw = signer(CONTROL, control.privateKey).seal("h1", { n: 1 });
    const first = await o.open(raw);
    expect(first.ok).toBe(true);
    expect((await o.open(raw)).ok).toBe(true); // not handled yet (a failure, a redelivery): still good
    if (first.ok) o.handled(first.sig, first.exp);
    expect(await o.open(raw)).toMatchObject({ ok: false, replay: true });
  });

  it("the receive loop hands on only verified messages, moves forged and malformed ones to the dead-letter queue at once, and drops replays", async () => {
    const url = await ensureFifoQueue(sqs, "signed.fifo", { visibilityTimeoutSeconds: 30 });
    const good = signer(CONTROL, control.privateKey);
    const raw = new QueueSender(sqs);
    const first = good.seal("h1", { n: 1 });
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: first, MessageGroupId: "g", MessageDeduplicationId: "good-1" }));
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: first, MessageGroupId: "g", MessageDeduplicationId: "replayed" }));
    await raw.send(url, [{ body: { n: 2 }, group: "g", dedupId: "forged", to: "h1" }]); // unsigned
    await new QueueSender(sqs, { signer: signer(CONTROL, mallory.privateKey) }).send(url, [{ body: { n: 3 }, group: "g", dedupId: "mallory", to: "h1" }]);
    await new QueueSender(sqs, { signer: good }).send(url, [{ body: { wrong: "shape" }, group: "g", dedupId: "malformed", to: "h1" }]);
    await new QueueSender(sqs, { signer: good }).send(url, [{ body: { n: 4 }, group: "g", dedupId: "good-2", to: "h1" }]);
    const o = opener();
    const got: number[] = [];
    const refused: string[] = [];
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 8000);
    await receiveLoop({
      sqs,
      queueUrl: url,
      schema,
      opener: o,
      waitSeconds: 1,
      signal: controller.signal,
      onRefused: (r) => refused.push(r.reason),
      handle: async (batch) => {
        got.push(...batch.map((b) => b.body.n));
        if (got.length >= 2) controller.abort();
        return { failed: [] };
      },
    });
    clearTimeout(timer);
    // in order, and the poisoned ones in between did not hold the FIFO group up
    expect(got).toEqual([1, 4]);
    expect(refused).toHaveLength(4);
    expect(refused[0]).toMatch(/replay/);
    const reasons: string[] = [];
    for (let i = 0; i < 10 && reasons.length < 3; i++) {
      const dead = await sqs.send(new ReceiveMessageCommand({ QueueUrl: deadLetterUrlOf(url), MaxNumberOfMessages: 10, MessageAttributeNames: ["All"], WaitTimeSeconds: 1 }));
      for (const m of dead.Messages ?? []) {
        reasons.push(m.MessageAttributes?.reason?.StringValue ?? "");
        await sqs.send(new DeleteMessageCommand({ QueueUrl: deadLetterUrlOf(url), ReceiptHandle: m.ReceiptHandle }));
      }
    }
    // the replay is dropped, not dead-lettered: it is a copy of a message already handled
    expect(reasons).toEqual([expect.stringMatching(/not a signed/), expect.stringMatching(/bad signature/), expect.stringMatching(/malformed/)]);
  });
});
