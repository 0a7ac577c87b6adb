import { labels as L } from "@corral/core/host";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { secretFolder, stackNetwork } from "../names.js";
import { movedOn, notOurs } from "./ownership.js";
import type { StepHandler } from "./types.js";

/** Remove the container (drained from the router first) and its secret folder; with dropNetwork, the stack's network once nothing of it is left. */
export const remove: StepHandler<"remove"> = async (step, { options: o }) => {
  const rt = o.runtime;
  const name = step.container ?? "";
  const existing = await rt.inspect(name);
  if (existing && movedOn(step, existing)) return { ok: true, alreadyDone: true };
  const refused = existing && notOurs(step, existing);
  if (refused) return { ok: false, error: refused };
  const createdBy = existing?.labels[L.step];
  if (existing?.running && existing.labels[L.routes]) await o.router?.drain(existing.id);
  const removed = await rt.remove(name);
  if (o.secretsDir && createdBy) await rm(join(o.secretsDir, secretFolder(createdBy)), { recursive: true, force: true });
  // only a stack's removal takes its network: an upgrade's removals run beside creates that need it
  if (step.dropNetwork && (await rt.listByLabel(L.stack, step.stack)).length === 0) await rt.removeNetworkIfUnused(stackNetwork(step.stack));
  return { ok: true, ...(removed ? {} : { alreadyDone: true }) };
};
