import { log, plane } from "./shared.js";

/**
 * The reconcile function, on a schedule (a cron each minute, say): one tick
 * of what `corral server` runs every few seconds. It plans operations whose
 * "stack changed" message was lost, re-sends steps planned and not reported
 * within CORRAL_RESEND_AFTER_MS (default 30 s), and moves containers off
 * draining or disconnected hosts. A tick that fails is logged and thrown:
 * the next one starts over, from the table.
 */
export async function handler(): Promise<void> {
  const { controller } = await plane();
  const started = Date.now();
  // every stack, every time: a function's controller did not see what the others decided since its last tick
  const outcome = await controller.tick({ full: true });
  log.info("reconcile tick", { ms: Date.now() - started, ...outcome });
}
