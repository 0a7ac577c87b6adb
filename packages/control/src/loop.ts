import type { SQSClient } from "@aws-sdk/client-sqs";
import { controlMessageSchema, type ControlMessage, type Logger } from "@corral/core";
import { CONTROL, hostSender, receiveLoop, type Opener, type ReceiveLoopOptions, type Received } from "@corral/queue";
import type { Controller } from "./controller.js";

/**
 * Who may say what on the control queue: only the control plane announces a
 * stack change, and a report, a health verdict or an exit is believed from the host it
 * is about, the one whose key signed it.
 */
export function authorizeControlMessage(m: Received<ControlMessage>): string | undefined {
  if (!m.by) return "unsigned";
  if (m.body.kind === "stack-changed") return m.by === CONTROL ? undefined : `${m.by} may not announce a stack change`;
  if (m.body.kind === "host-started") return m.by === CONTROL ? undefined : `${m.by} may not announce a host's start`;
  return m.by === hostSender(m.body.host) ? undefined : `${m.by} may not speak for host ${m.body.host}`;
}

/**
 * How the control queue's messages are checked and handled: by the embedded
 * server's receive loop, and by a Lambda function subscribed to the queue
 * (see handleMessages), the same way.
 */
type ControlHandling = Pick<ReceiveLoopOptions<ControlMessage>, "schema" | "opener" | "authorize" | "onRefused" | "handle">;
export function controlMessages(options: { controller: Controller; opener: Opener; log?: Logger }): ControlHandling {
  return {
    schema: controlMessageSchema,
    opener: options.opener,
    authorize: authorizeControlMessage,
    onRefused: (r) => options.log?.error("control queue: message refused", { message: r.messageId, reason: r.reason }),
    handle: (batch) => options.controller.handleBatch(batch),
  };
}

export interface ControlLoopOptions {
  controller: Controller;
  sqs: SQSClient;
  controlQueueUrl: string;
  /** Checks every message's signature (the control plane's own, or a registered host's). */
  opener: Opener;
  signal: AbortSignal;
  tickMs?: number;
  /**
   * The queues are new and empty (the embedded server's stand-in keeps them
   * in memory, and this is a start): whatever was on them is lost. The first
   * tick comes at once and re-sends every step planned and not reported,
   * however recent, instead of waiting out the resend timeout.
   */
  queuesLost?: boolean;
  log?: Logger;
}

/** Run the controller on the control queue, with a reconcile tick, until the signal aborts. */
export function startControlLoop(options: ControlLoopOptions): Promise<void> {
  const { controller, signal } = options;
  let ticking: Promise<void> | undefined;
  const tick = (redrive: boolean) => {
    if (ticking || signal.aborted) return;
    const t0 = performance.now();
    ticking = controller
      .tick(redrive ? { resendAfterMs: 0 } : {})
      .then((outcome) => {
        options.log?.debug?.("reconcile tick", { ms: Math.round(performance.now() - t0), ...outcome });
        if (redrive) options.log?.info("steps in flight re-sent: the queues are new");
      })
      .catch((e: unknown) => options.log?.error("tick failed", { error: String(e) }))
      .finally(() => (ticking = undefined));
  };
  const timer = setInterval(() => tick(false), options.tickMs ?? 5000);
  if (options.queuesLost) tick(true);
  signal.addEventListener("abort", () => clearInterval(timer), { once: true });
  const loop = receiveLoop({
    sqs: options.sqs,
    queueUrl: options.controlQueueUrl,
    ...controlMessages(options),
    signal,
    waitSeconds: 10,
    onError: (e) => options.log?.error("control queue", { error: String(e) }),
  });
  // stopping waits for a tick in flight, so that the stores are not closed under it
  return loop.then(() => ticking);
}
