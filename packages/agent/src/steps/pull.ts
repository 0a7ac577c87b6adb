import { registryOf, type Step } from "@corral/core";
import type { AgentOptions } from "../options.js";
import type { StepHandler } from "./types.js";

/**
 * Make sure a step's image is on the host: pulled when missing or forced,
 * and always from a private registry (one corral holds logins for), with
 * the login the API gives this host for this step, if any. False when it
 * was there already and nothing was pulled.
 */
export async function ensureImage(step: Step, force: boolean, o: AgentOptions): Promise<boolean> {
  const access = o.registryAuth ? await o.registryAuth(step, registryOf(step.image)) : undefined;
  if (!force && access === undefined && (await o.runtime.imageExists(step.image))) return false;
  await o.runtime.pull(step.image, typeof access === "object" ? access : undefined);
  return true;
}

export const pull: StepHandler<"pull"> = async (step, { options }) =>
  (await ensureImage(step, step.forcePull ?? false, options)) ? { ok: true } : { ok: true, alreadyDone: true };
