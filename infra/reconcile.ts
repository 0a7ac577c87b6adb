import { adminToken, controlKey, secrets } from "./keys";
import { sendToHostQueues } from "./permissions";
import { chat, control } from "./queues";
import { queuePrefix } from "./names";
import { table } from "./storage";

/** The reconcile tick: re-drives what was planned and not reported, notices silent hosts. */
export const reconcile = new sst.aws.Cron("Reconcile", {
  schedule: "rate(1 minute)",
  function: {
    handler: "packages/aws/src/reconcile.handler",
    runtime: "nodejs22.x",
    memory: "1024 MB",
    timeout: "50 seconds",
    link: [table, control, chat, secrets, controlKey, adminToken],
    permissions: [sendToHostQueues()],
    environment: {
      CORRAL_QUEUE_PREFIX: queuePrefix(),
    },
  },
});
