import { adminToken, controlKey, secrets } from "./keys";
import { sendToHostQueues } from "./permissions";
import { CHAT_TIMEOUT_SECONDS, chat, control } from "./queues";
import { queuePrefix } from "./names";
import { table } from "./storage";

/**
 * The chat function: the chat queue's only subscriber. The API answers a
 * slash command at once (Slack waits 3 s) and leaves its work here: the
 * command runs as the mapped user through the API's own routes, and its
 * progress and outcome go to the command's response_url. One message at a
 * time: a batch's jobs would wait on each other's follow-ups.
 */
export const chatWorker = chat.subscribe(
  {
    handler: "packages/aws/src/chat.handler",
    runtime: "nodejs22.x",
    memory: "1024 MB",
    timeout: `${CHAT_TIMEOUT_SECONDS} seconds`,
    link: [table, control, chat, secrets, controlKey, adminToken],
    permissions: [sendToHostQueues()],
    environment: {
      CORRAL_QUEUE_PREFIX: queuePrefix(),
    },
  },
  { batch: { size: 1, partialResponses: true } },
);
