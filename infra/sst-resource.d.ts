/**
 * What the functions read at runtime with `import { Resource } from "sst"`:
 * the links of infra/*.ts, typed as `sst deploy` would type them in the
 * sst-env.d.ts it generates (which nobody runs here). Keep it in step with
 * the `link` lists in infra/api.ts, controller.ts and reconcile.ts:
 *
 *   Api:        Table, Control, Chat, Secrets, ControlKey, AdminToken
 *   controller: Table, Control, ControlDlq, Chat, Secrets, ControlKey, AdminToken
 *   Reconcile:  Table, Control, Chat, Secrets, ControlKey, AdminToken
 *   chat:       Table, Control, Chat, Secrets, ControlKey, AdminToken
 *
 * Also in each function's environment: CORRAL_QUEUE_PREFIX (`corral-STAGE`),
 * the prefix of the host queues the API makes (packages/queue hostQueueName).
 */
import "sst";

declare module "sst" {
  export interface Resource {
    /** The table (pk, sk strings; TTL on expiresAt, epoch seconds). */
    Table: { type: "sst.aws.Dynamo"; name: string };
    /** The control queue, `corral-STAGE-control.fifo`. */
    Control: { type: "sst.aws.Queue"; url: string };
    /** Chat commands' work, `corral-STAGE-chat.fifo` (packages/aws/src/chat.ts). */
    Chat: { type: "sst.aws.Queue"; url: string };
    /** Its dead letters, `corral-STAGE-control-dlq.fifo` (packages/queue deadLetterUrlOf of Control). */
    ControlDlq: { type: "sst.aws.Queue"; url: string };
    /** The KMS key for secrets at rest: `KmsMasterKey.open(kms, Resource.Secrets.arn, ...)`. */
    Secrets: { type: "sst.sst.Linkable"; arn: string; id: string };
    /** The control plane's Ed25519 private key, PKCS#8 PEM. */
    ControlKey: { type: "sst.sst.Secret"; value: string };
    /** The admin's bearer token. */
    AdminToken: { type: "sst.sst.Secret"; value: string };
  }
}
