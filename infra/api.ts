import { adminToken, controlKey, secrets } from "./keys";
import { manageHostQueues } from "./permissions";
import { chat, control } from "./queues";
import { queuePrefix } from "./names";
import { table } from "./storage";

/**
 * The API (Hono) behind a function URL. Auth is corral's own (bearer tokens,
 * HMAC for hooks), so the URL itself is public; no browser calls it, so no
 * CORS. Responses are buffered (no `streaming`): a follow (`logs -f`,
 * `events -f`) lasts at most the timeout, then the CLI asks again.
 */
export const api = new sst.aws.Function("Api", {
  handler: "packages/aws/src/api.handler",
  runtime: "nodejs22.x",
  memory: "1024 MB",
  // above the longest wait a request may ask for (30 s) and an event stream's life (CORRAL_MAX_FOLLOW_MS)
  timeout: "45 seconds",
  url: { cors: false },
  link: [table, control, chat, secrets, controlKey, adminToken],
  permissions: [manageHostQueues()],
  environment: {
    CORRAL_QUEUE_PREFIX: queuePrefix(),
    CORRAL_MAX_FOLLOW_MS: "25000",
  },
});
