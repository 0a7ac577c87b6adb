import { SendMessageBatchCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { Signer } from "./envelope.js";

export interface OutgoingMessage {
  body: unknown;
  /** Whom it is for: a host id, or `control`; signed into the envelope. */
  to: string;
  /** FIFO group: messages of one group are delivered in order (a stack). */
  group: string;
  /** Deduplication id: derived from what caused the message. */
  dedupId: string;
}

export interface SenderOptions {
  /**
   * Test switch: send every message twice, the second time under another
   * deduplication id, as an at-least-once transport may deliver it; the
   * second copies go in the reverse order of their groups (out of order
   * across groups, as a FIFO queue may deliver them).
   */
  duplicate?: boolean;
  /** Seals every message in a signed envelope (see envelope.ts). Without it, bodies go as plain JSON (tests of the queue itself). */
  signer?: Signer;
}

const sqsIdPattern = /[^A-Za-z0-9!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g;
/** SQS dedup ids are at most 128 characters of ASCII punctuation and alphanumerics. */
export const toDedupId = (id: string) => {
  const clean = id.replace(sqsIdPattern, "_");
  return clean.length <= 128 ? clean : clean.slice(0, 100) + "~" + simpleHash(clean);
};

function simpleHash(s: string): string {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h.toString(36);
}

/** Sends messages to a FIFO queue in order, ten per call. */
export class QueueSender {
  constructor(
    private readonly sqs: SQSClient,
    private readonly options: SenderOptions = {},
  ) {}

  async send(queueUrl: string, messages: OutgoingMessage[]): Promise<void> {
    const expanded = this.options.duplicate ? [...messages, ...secondCopies(messages)] : messages;
    for (let i = 0; i < expanded.length; i += 10) {
      const batch = expanded.slice(i, i + 10);
      const result = await this.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: batch.map((m, j) => ({
            Id: String(j),
            // each copy sealed on its own: a duplicate is a second delivery, not a replay of one envelope
            MessageBody: this.options.signer ? this.options.signer.seal(m.to, m.body) : JSON.stringify(m.body),
            MessageGroupId: toDedupId(m.group),
            MessageDeduplicationId: toDedupId(m.dedupId),
          })),
        }),
      );
      if (result.Failed && result.Failed.length > 0) {
        const f = result.Failed[0]!;
        throw new Error(`sending to ${queueUrl} failed: ${f.Code} ${f.Message ?? ""}`);
      }
    }
  }
}

/**
 * The second delivery of each message (test mode), its groups in reverse
 * order: a FIFO queue keeps the order within a group, and only there, so a
 * later group's message may come before an earlier group's.
 */
function secondCopies(messages: OutgoingMessage[]): OutgoingMessage[] {
  const copies = messages.map((m) => ({ ...m, dedupId: `${m.dedupId}#dup` }));
  const groups = [...new Set(copies.map((m) => m.group))].reverse();
  return groups.flatMap((g) => copies.filter((m) => m.group === g));
}
