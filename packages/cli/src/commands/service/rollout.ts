import { CliError, type ApiClient } from "../../client.js";
import { ExitError, type Out } from "../../output.js";
import { followOp } from "../op.js";

/** What a service verb's request answers: the operation it started, if it changed anything. */
export interface ServiceOp {
  stack: string;
  op?: string;
  version: number;
  service?: string;
}

/** Until the service's update is final: an error when it paused, or when it still rolls after 10 minutes. */
async function untilUpdated(client: ApiClient, stack: string, service: string, name: string): Promise<void> {
  const until = Date.now() + 10 * 60_000;
  for (;;) {
    const spec = await client.get("/v1/stacks/:stack/services/:service/spec", { param: { stack, service } });
    const state = spec.UpdateStatus?.State ?? "completed";
    if (state === "paused") throw new CliError(`${name}: the update is paused: ${spec.UpdateStatus?.Message ?? ""}`);
    if (state !== "updating" && state !== "rollback_started") break;
    if (Date.now() > until) throw new CliError(`${name}: still updating after 10 minutes: ${spec.UpdateStatus?.Message ?? ""}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/**
 * Follow the operation, then (as `docker service update` waits for the
 * service to converge) until the upgrade is final: its old containers gone
 * once the rollout stayed well, or the upgrade paused.
 */
export async function rollout(client: ApiClient, io: Out, res: ServiceOp, name: string, detach: boolean | undefined): Promise<void> {
  if (!res.op) return io.out(`${name}: nothing to change`);
  if (detach) return io.out(name);
  const ok = await followOp(client, io, res.stack, { op: res.op, version: res.version });
  if (!ok) throw new ExitError(1);
  if (res.service) await untilUpdated(client, res.stack, res.service, name);
  io.out(name);
}
