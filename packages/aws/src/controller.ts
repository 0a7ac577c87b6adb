import type { Message } from "@aws-sdk/client-sqs";
import { controlMessages } from "@corral/control";
import { handleMessages } from "@corral/queue";
import { z } from "zod";
import { log, plane } from "./shared.js";

/** The records of an SQS event, as Lambda's event source mapping hands them over (what corral reads of them). */
const sqsEventSchema = z.object({
  Records: z.array(
    z.object({
      messageId: z.string().min(1),
      receiptHandle: z.string(),
      body: z.string(),
      attributes: z.object({ MessageGroupId: z.string().optional() }).passthrough().default({}),
    }),
  ),
});

export type SqsEvent = z.input<typeof sqsEventSchema>;
export interface SqsBatchResponse {
  batchItemFailures: Array<{ itemIdentifier: string }>;
}

/**
 * The controller function, subscribed to the control queue with partial
 * batch responses (ReportBatchItemFailures). Each batch goes down the path
 * the embedded server's receive loop takes (handleMessages with the
 * controller's checks, controlMessages): a message that fails its checks
 * (forged, malformed, not for the control plane) moves to the dead-letter
 * queue at once and counts as done, as on the embedded server, so it does
 * not hold up its FIFO group for maxReceiveCount receives; only when it
 * cannot be moved is it reported failed, and the queue's redrive moves it.
 * A message whose handling failed is reported failed and comes back; so
 * does every later one of its group in the batch, so that a group's order
 * holds (Lambda's rule for FIFO queues).
 */
export async function handler(event: SqsEvent): Promise<SqsBatchResponse> {
  const { Records: records } = sqsEventSchema.parse(event);
  const { controller, opener, sqs, config } = await plane();
  const messages: Message[] = records.map((r) => ({
    MessageId: r.messageId,
    ReceiptHandle: r.receiptHandle,
    Body: r.body,
    Attributes: r.attributes.MessageGroupId !== undefined ? { MessageGroupId: r.attributes.MessageGroupId } : {},
  }));
  const { failed } = await handleMessages(
    {
      sqs,
      queueUrl: config.controlQueueUrl,
      ...(config.controlDlqUrl ? { deadLetterQueueUrl: config.controlDlqUrl } : {}),
      ...controlMessages({ controller, opener, log }),
      onError: (e) => log.error("control queue", { error: String(e) }),
    },
    messages,
  );
  return { batchItemFailures: inGroupOrder(records.map((r) => ({ id: r.messageId, group: r.attributes.MessageGroupId ?? "" })), failed).map((itemIdentifier) => ({ itemIdentifier })) };
}

/** The records to report failed: those that failed, and every later one of their FIFO groups, in the batch's order. */
export function inGroupOrder(records: Array<{ id: string; group: string }>, failed: string[]): string[] {
  const stopped = new Set<string>();
  return records.flatMap((r) => {
    if (!failed.includes(r.id) && !stopped.has(r.group)) return [];
    stopped.add(r.group);
    return [r.id];
  });
}
