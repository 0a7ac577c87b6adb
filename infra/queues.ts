import { chatQueueName, controlDeadLetterName, controlQueueName } from "./names";

/**
 * How long a control message taken by the controller stays hidden. Lambda
 * needs it at least the subscriber's timeout; AWS advises six times that,
 * so that retries of a throttled batch do not count the message towards
 * the dead-letter queue.
 */
export const CONTROLLER_TIMEOUT_SECONDS = 30;
const CONTROL_VISIBILITY_SECONDS = 6 * CONTROLLER_TIMEOUT_SECONDS;

/** A control message received this often goes to the dead-letter queue (the embedded server's `maxReceiveCount: 10`). */
const CONTROL_MAX_RECEIVE_COUNT = 10;

/** Dead letters of the control queue: a FIFO queue (the dead-letter queue of a FIFO queue must be one). */
export const controlDlq = new sst.aws.Queue("ControlDlq", {
  fifo: true,
  transform: {
    queue: { name: controlDeadLetterName(), messageRetentionSeconds: 14 * 24 * 3600 },
  },
});

/**
 * The control queue: commands and agents' reports, FIFO with group = stack.
 * Every sender sets its own MessageDeduplicationId (derived from what caused
 * the message: packages/queue QueueSender), so content-based deduplication
 * stays off: two different reports with the same body must both arrive.
 */
export const control = new sst.aws.Queue("Control", {
  fifo: true,
  visibilityTimeout: `${CONTROL_VISIBILITY_SECONDS} seconds`,
  dlq: { queue: controlDlq.arn, retry: CONTROL_MAX_RECEIVE_COUNT },
  transform: {
    queue: { name: controlQueueName() },
  },
});

/**
 * How long the chat function may run: a chat command's follow-up watches its
 * operation to the end, for up to 15 minutes (packages/api routes/chat.ts).
 */
export const CHAT_TIMEOUT_SECONDS = 15 * 60;

/**
 * Chat commands' work (packages/aws/src/chat.ts): a signed `{kind:
 * "chat-job", id}` per command, the job itself sealed in the table. FIFO, a
 * group per job. No dead-letter queue: a job whose message is lost or fails
 * is sent again by the reconcile tick once its lease runs out.
 */
export const chat = new sst.aws.Queue("Chat", {
  fifo: true,
  visibilityTimeout: `${CHAT_TIMEOUT_SECONDS + 60} seconds`,
  transform: {
    queue: { name: chatQueueName() },
  },
});
