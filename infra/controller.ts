import { adminToken, controlKey, secrets } from "./keys";
import { sendToHostQueues } from "./permissions";
import { CONTROLLER_TIMEOUT_SECONDS, chat, control, controlDlq } from "./queues";
import { queuePrefix } from "./names";
import { table } from "./storage";

/**
 * The controller: the control queue's only subscriber. Batches of up to ten,
 * with partial responses: a message that fails alone is retried alone (and
 * holds up only its own FIFO group, a stack). `ControlDlq` is linked so that
 * a message that fails its checks (signature, replay) can be moved there at
 * once rather than retried ten times.
 */
export const controller = control.subscribe(
  {
    handler: "packages/aws/src/controller.handler",
    runtime: "nodejs22.x",
    memory: "1024 MB",
    timeout: `${CONTROLLER_TIMEOUT_SECONDS} seconds`,
    link: [table, control, controlDlq, chat, secrets, controlKey, adminToken],
    permissions: [sendToHostQueues()],
    environment: {
      CORRAL_QUEUE_PREFIX: queuePrefix(),
    },
  },
  { batch: { size: 10, partialResponses: true } },
);
