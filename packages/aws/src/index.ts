/**
 * @corral/aws: the Lambda entry points of the control plane `corral server`
 * runs, built by the same buildPlane (@corral/local/plane):
 *
 *   api.ts         function URL (payload 2.0), invoke mode BUFFERED
 *   api-stream.ts  the same, invoke mode RESPONSE_STREAM (event streams as they come)
 *   controller.ts  the control queue's subscriber, partial batch responses
 *   reconcile.ts   a scheduled tick
 *   chat.ts        the chat queue's subscriber: slash commands' work and follow-ups
 *
 * configured by SST's linked resources or the environment (config.ts).
 *
 * No state across invocations on this path. What the embedded server keeps
 * in its memory, and what stands for it here:
 *
 * - The change feed (ChangeFeed) wakes a long-poll when this process
 *   appends. Here the append comes from another instance: PollingFeed ends
 *   every wait within a second, and the waiter re-reads the table. So
 *   `GET /v1/stacks/S/events?wait=`, `GET /v1/sessions/ID?wait=` (logs, exec
 *   output) and an agent's `.../sessions/ID/input?wait=` poll the table
 *   once a second, each within its `wait` (at most 30 s, under the
 *   function's timeout).
 * - `GET /v1/events?follow=1` (server-sent events) polls the same way and
 *   ends after CORRAL_MAX_FOLLOW_MS (default 25 s); a client follows on by
 *   reconnecting with `since` (the CLI's `events -f` does not yet: it
 *   ends there). Under BUFFERED the lines arrive when the stream ends;
 *   under RESPONSE_STREAM (api-stream.ts) as they come. Nothing streams
 *   from the table itself: corral uses no DynamoDB Streams (dynalite has
 *   none).
 * - heardSince (a host is not disconnected for a silence that began before
 *   the control plane started) is unset: a cold start says nothing of the
 *   hosts, only their heartbeats (in the table) count.
 * - The opener's memory of handled envelopes (a replay is dropped) is in
 *   the table (TableReplays), until the envelope expires: any instance
 *   refuses a replay of what another handled. An SQS redelivery is a new
 *   handling, not a replay (a failed one is not remembered), and its
 *   effect is idempotent: step ids are deterministic, and the decider
 *   answers a known report or a second plan with nothing.
 * - The controller's placement cache (other stacks' containers, 2 s) is
 *   per instance: a cache by design, re-read past its age.
 * - Host ports are given out under a lease in the table (LeaseStore), as
 *   on the embedded server; Idempotency-Key records, sessions, join tokens
 *   are in the table too.
 * - The follows-per-token bound (429 past 8) counts per instance, and an
 *   instance serves one request at a time: on AWS, bound follows with the
 *   API function's reserved concurrency instead.
 * - The control plane's keys: an SST secret, or made once and kept in the
 *   table wrapped by KMS (control-key.ts); read on each cold start.
 *
 * What the infra (sst.config.ts, infra/) gives the functions:
 *
 * - links: Table (pk, sk strings; TTL on `expiresAt`), Control (FIFO;
 *   corral sets group and dedup ids), ControlDlq (FIFO, its redrive
 *   target), Chat (FIFO, chat commands' work: every function reads it; the
 *   API and the tick send to it), Secrets (the KMS key), AdminToken (a secret);
 *   ControlKey only to bring a key of one's own. Choose once: the event
 *   log's commit MAC key derives from the control key, so changing it
 *   leaves the old commits untrusted.
 * - CORRAL_QUEUE_PREFIX per stage; the API and controller functions may
 *   create and delete `PREFIX-host-*` queues (a host's queue is made at its
 *   registration); all three send to Control and the host queues (the
 *   controller to ControlDlq too), read and write the table, and call
 *   kms:Encrypt/Decrypt/GenerateDataKey on the key.
 * - controller: an event source mapping on Control with
 *   ReportBatchItemFailures, batch size up to 10; the queue's visibility
 *   timeout above the function's timeout.
 * - reconcile: a cron (each minute); a tick reads every stack.
 * - api: a function URL (auth NONE: corral checks bearer tokens), timeout
 *   above 30 s (the longest `wait`) and CORRAL_MAX_FOLLOW_MS; invoke mode
 *   BUFFERED with api.handler, RESPONSE_STREAM with api-stream.handler.
 */
export { ConfigError, readConfig } from "./config.js";
export type { AwsConfig } from "./config.js";
export { storedControlKeys } from "./control-key.js";
export { PollingFeed } from "./feed.js";
export { TableReplays } from "./replays.js";
export { jsonLogger } from "./log.js";
export { awsPlane } from "./plane.js";
export type { AwsPlane } from "./plane.js";
