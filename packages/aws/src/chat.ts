import { CONTROL } from "@corral/queue";
import { z } from "zod";
import { log, plane } from "./shared.js";
import type { SqsBatchResponse, SqsEvent } from "./controller.js";

const records = z.object({ Records: z.array(z.object({ messageId: z.string().min(1), body: z.string().max(256 * 1024) })) });
const chatJob = z.object({ kind: z.literal("chat-job"), id: z.string().uuid() }).strict();

/**
 * The chat function, the chat queue's subscriber: runs the chat commands
 * the API stored and answered (Slack waits 3 s at most; what follows, such
 * as an upgrade's progress and outcome, is posted to the command's
 * response_url from here, within the function's timeout of 15 minutes). A
 * message is the control plane's own, signed (anything else is dropped and
 * logged), and names a stored job, which is taken under a lease: a second
 * delivery finds it taken, or done. A job whose message was lost, or whose
 * run died, is sent again by the reconcile tick (drainHooks).
 */
export async function handler(event: SqsEvent): Promise<SqsBatchResponse> {
  const { Records } = records.parse(event);
  const { opener, runChatJob } = await plane();
  const failed: string[] = [];
  for (const r of Records) {
    const verdict = await opener.open(r.body);
    const job = verdict.ok && verdict.by === CONTROL ? chatJob.safeParse(verdict.body) : undefined;
    if (!verdict.ok || !job?.success) {
      log.error("chat queue: dropped a message", { messageId: r.messageId, why: verdict.ok ? (verdict.by === CONTROL ? "not a chat job" : `sent by ${verdict.by}`) : verdict.reason });
      continue;
    }
    try {
      await runChatJob(job.data.id);
      await opener.handled(verdict.sig, verdict.exp); // remembered once handled: a failed run comes back and runs again
    } catch (e) {
      log.error("chat job", { job: job.data.id, error: String(e) });
      failed.push(r.messageId);
    }
  }
  return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
}
