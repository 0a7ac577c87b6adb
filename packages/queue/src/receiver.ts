import {
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type Message,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { z } from "zod";
import { deadLetterUrlOf } from "./client.js";
import type { Opener } from "./envelope.js";

export interface Received<T> {
  body: T;
  group: string;
  receiptHandle: string;
  messageId: string;
  /** Who signed it (`control`, `host:ID`), when the loop checks signatures. */
  by?: string;
}

export interface ReceiveLoopOptions<T> {
  sqs: SQSClient;
  queueUrl: string;
  schema: z.ZodType<T>;
  /**
   * Checks every message's signed envelope before anything else looks at it.
   * Without it, bodies are taken as plain JSON (tests of the queue itself).
   */
  opener?: Opener;
  /** Why a verified, well-formed message must still not be acted on (the sender may not say this), or undefined. */
  authorize?: (message: Received<T>) => string | undefined;
  /** Where refused messages go at once (default: the queue's `-dlq.fifo` twin). */
  deadLetterQueueUrl?: string;
  /**
   * Handle one batch. Return the message ids that failed: they stay on the
   * queue and come back after the visibility timeout (partial batch failure);
   * the others are deleted.
   */
  handle: (batch: Received<T>[]) => Promise<{ failed: string[] }>;
  signal: AbortSignal;
  waitSeconds?: number;
  onError?: (error: unknown) => void;
  /** A message was refused (forged, expired, replayed, malformed, not for us): what and why. */
  onRefused?: (refusal: { messageId: string; reason: string }) => void;
}

type Checked<T> = { ok: true; received: Received<T>; sig?: string; exp?: number } | { ok: false; reason: string; replay?: boolean };

async function check<T>(options: Omit<ReceiveLoopOptions<T>, "signal" | "waitSeconds">, m: Message): Promise<Checked<T>> {
  const raw = m.Body ?? "";
  let body: unknown;
  let signed: { by: string; sig: string; exp: number } | undefined;
  if (options.opener) {
    const verdict = await options.opener.open(raw);
    if (!verdict.ok) return verdict;
    body = verdict.body;
    signed = verdict;
  } else {
    try {
      body = JSON.parse(raw);
    } catch {
      return { ok: false, reason: "not JSON" };
    }
  }
  const parsed = options.schema.safeParse(body);
  if (!parsed.success) return { ok: false, reason: `malformed: ${parsed.error.issues[0]?.path.join(".") ?? ""} ${parsed.error.issues[0]?.message ?? ""}`.trim() };
  const received: Received<T> = {
    body: parsed.data,
    group: m.Attributes?.MessageGroupId ?? "",
    receiptHandle: m.ReceiptHandle ?? "",
    messageId: m.MessageId ?? "",
    ...(signed ? { by: signed.by } : {}),
  };
  const refused = options.authorize?.(received);
  if (refused) return { ok: false, reason: refused };
  return { ok: true, received, ...(signed ? { sig: signed.sig, exp: signed.exp } : {}) };
}

/**
 * Long-poll a queue until the signal aborts. No fixed sleeps: the receive
 * call itself waits. A message that fails its checks never reaches the
 * handler: a replay is deleted, anything else moves to the dead-letter queue
 * at once (so it cannot hold up its FIFO group), and both are reported.
 */
export async function receiveLoop<T>(options: ReceiveLoopOptions<T>): Promise<void> {
  const { sqs, queueUrl, signal } = options;
  while (!signal.aborted) {
    let messages: Message[];
    try {
      const out = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: options.waitSeconds ?? 10,
          MessageSystemAttributeNames: ["MessageGroupId"],
        }),
        { abortSignal: signal },
      );
      messages = out.Messages ?? [];
    } catch (e) {
      if (signal.aborted) return;
      options.onError?.(e);
      await new Promise((r) => setTimeout(r, 500)); // back off on a broken connection only
      continue;
    }
    if (messages.length === 0) continue;
    let remove: string[];
    try {
      ({ remove } = await handleMessages(options, messages));
    } catch (e) {
      // a check that could not be made (a signer's key unreadable): all of them come back after the visibility timeout
      options.onError?.(e);
      continue;
    }
    await deleteMessages(sqs, queueUrl, remove).catch((e) => options.onError?.(e));
  }
}

/** What became of a batch: the receipt handles of what is done with (handled, or refused and dead-lettered), and the ids of what failed. */
export interface BatchOutcome {
  remove: string[];
  failed: string[];
}

/**
 * Check and handle messages already received, without deleting any: the
 * receive loop deletes what `remove` names, a Lambda function's event
 * source mapping deletes all but what `failed` names. A message that fails
 * its checks never reaches the handler: a replay is dropped, anything else
 * moves to the dead-letter queue at once (so it cannot hold up its FIFO
 * group), and both are reported; one that cannot be moved stays (failed),
 * and the queue's redrive policy moves it after a few receives.
 */
export async function handleMessages<T>(options: Omit<ReceiveLoopOptions<T>, "signal" | "waitSeconds">, messages: Message[]): Promise<BatchOutcome> {
  const { sqs, handle } = options;
  const deadLetter = options.deadLetterQueueUrl ?? deadLetterUrlOf(options.queueUrl);
  const batch: Array<Received<T> & { sig?: string; exp?: number }> = [];
  const dropped: string[] = [];
  const stuck: string[] = [];
  for (const m of messages) {
    const checked = await check(options, m);
    if (checked.ok) {
      batch.push({ ...checked.received, ...(checked.sig ? { sig: checked.sig, exp: checked.exp! } : {}) });
      continue;
    }
    options.onRefused?.({ messageId: m.MessageId ?? "", reason: checked.reason });
    if (!checked.replay) {
      const moved = await sqs
        .send(
          new SendMessageCommand({
            QueueUrl: deadLetter,
            MessageBody: m.Body ?? "",
            MessageGroupId: "refused",
            MessageDeduplicationId: (m.MessageId ?? "unknown").slice(0, 128),
            MessageAttributes: { reason: { DataType: "String", StringValue: checked.reason.slice(0, 500) || "refused" } },
          }),
        )
        .then(
          () => true,
          (e: unknown) => (options.onError?.(e), false),
        );
      if (!moved) {
        stuck.push(m.MessageId ?? "");
        continue;
      }
    }
    dropped.push(m.ReceiptHandle ?? "");
  }
  let failed: string[] = [];
  try {
    failed = batch.length > 0 ? (await handle(batch.map(({ sig: _s, exp: _e, ...r }) => r))).failed : [];
  } catch (e) {
    options.onError?.(e);
    failed = batch.map((b) => b.messageId);
  }
  const done = batch.filter((b) => !failed.includes(b.messageId));
  for (const d of done) if (d.sig && d.exp) await options.opener?.handled(d.sig, d.exp)?.catch((e: unknown) => options.onError?.(e));
  return { remove: [...dropped, ...done.map((d) => d.receiptHandle)], failed: [...stuck, ...failed] };
}

export async function deleteMessages(sqs: SQSClient, queueUrl: string, receiptHandles: string[]): Promise<void> {
  for (let i = 0; i < receiptHandles.length; i += 10) {
    const entries = receiptHandles.slice(i, i + 10).map((h, j) => ({ Id: String(j), ReceiptHandle: h }));
    if (entries.length > 0) await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
  }
}

export async function extendVisibility(sqs: SQSClient, queueUrl: string, receiptHandle: string, seconds: number): Promise<void> {
  await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: receiptHandle, VisibilityTimeout: seconds }));
}
