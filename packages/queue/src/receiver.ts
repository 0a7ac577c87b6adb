import {
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  type Message,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { z } from "zod";

export interface Received<T> {
  body: T;
  group: string;
  receiptHandle: string;
  messageId: string;
}

export interface ReceiveLoopOptions<T> {
  sqs: SQSClient;
  queueUrl: string;
  schema: z.ZodType<T>;
  /**
   * Handle one batch. Return the message ids that failed: they stay on the
   * queue and come back after the visibility timeout (partial batch failure);
   * the others are deleted.
   */
  handle: (batch: Received<T>[]) => Promise<{ failed: string[] }>;
  signal: AbortSignal;
  waitSeconds?: number;
  onError?: (error: unknown) => void;
}

/** Long-poll a queue until the signal aborts. No fixed sleeps: the receive call itself waits. */
export async function receiveLoop<T>(options: ReceiveLoopOptions<T>): Promise<void> {
  const { sqs, queueUrl, schema, handle, signal } = options;
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
    const batch: Received<T>[] = [];
    const poisoned: string[] = [];
    for (const m of messages) {
      let parsed: z.SafeParseReturnType<unknown, T>;
      try {
        parsed = schema.safeParse(JSON.parse(m.Body ?? ""));
      } catch {
        parsed = { success: false } as z.SafeParseReturnType<unknown, T>;
      }
      if (!parsed.success) {
        options.onError?.(new Error(`malformed message ${m.MessageId} on ${queueUrl} left for the dead-letter queue`));
        poisoned.push(m.MessageId ?? "");
        continue;
      }
      batch.push({
        body: parsed.data,
        group: m.Attributes?.MessageGroupId ?? "",
        receiptHandle: m.ReceiptHandle ?? "",
        messageId: m.MessageId ?? "",
      });
    }
    let failed: string[] = [];
    try {
      failed = batch.length > 0 ? (await handle(batch)).failed : [];
    } catch (e) {
      options.onError?.(e);
      failed = batch.map((b) => b.messageId);
    }
    const done = batch.filter((b) => !failed.includes(b.messageId));
    await deleteMessages(sqs, queueUrl, done.map((d) => d.receiptHandle)).catch((e) => options.onError?.(e));
  }
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
