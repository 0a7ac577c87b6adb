import type { StepHandler } from "./types.js";

/** Remove the named volume the step names as its service; none there, it is done. */
export const removeVolume: StepHandler<"remove-volume"> = async (step, { options: o }) =>
  (await o.runtime.removeVolume(step.service)) ? { ok: true } : { ok: true, alreadyDone: true };
