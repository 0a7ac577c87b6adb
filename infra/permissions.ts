import { hostQueuesPattern, queueArn } from "./names";

/**
 * What the API needs on host queues, and nothing on any other queue: make a
 * host's queue and its dead-letter queue when it registers (packages/queue
 * `ensureFifoQueue`: CreateQueue twice, GetQueueAttributes for the DLQ's ARN),
 * send it requests (logs, exec, volume steps), delete both when the host is
 * removed (`deleteFifoQueue`).
 */
export const manageHostQueues = () => ({
  actions: [
    "sqs:CreateQueue",
    "sqs:GetQueueUrl",
    "sqs:GetQueueAttributes",
    "sqs:SetQueueAttributes",
    "sqs:SendMessage",
    "sqs:DeleteQueue",
  ],
  resources: [queueArn(hostQueuesPattern())],
});

/** What the controller and the reconcile tick need on host queues: send steps. */
export const sendToHostQueues = () => ({
  actions: ["sqs:SendMessage"],
  resources: [queueArn(hostQueuesPattern())],
});
