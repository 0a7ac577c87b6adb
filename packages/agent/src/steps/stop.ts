import { labels as L } from "@corral/core/host";
import { movedOn, notOurs } from "./ownership.js";
import type { StepHandler } from "./types.js";

/** Stop the container, out of the router's rotation first; one already stopped (or gone) is done. */
export const stop: StepHandler<"stop"> = async (step, { options: o }) => {
  const name = step.container ?? "";
  const before = await o.runtime.inspect(name);
  if (before && movedOn(step, before)) return { ok: true, alreadyDone: true };
  const refused = before && notOurs(step, before);
  if (refused) return { ok: false, error: refused };
  if (!before?.running) return { ok: true, alreadyDone: true };
  if (before.labels[L.routes]) await o.router?.drain(before.id);
  await o.runtime.stop(name, o.stopGraceSeconds);
  return { ok: true };
};
