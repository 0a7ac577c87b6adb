import { movedOn, notOurs } from "./ownership.js";
import type { StepHandler } from "./types.js";

/** Move a container aside (an upgrade's old one) to step.renameTo; found there already, it is done. */
export const rename: StepHandler<"rename"> = async (step, { options: o }) => {
  const rt = o.runtime;
  const name = step.container ?? "";
  const to = step.renameTo ?? "";
  const [found, target] = [await rt.inspect(name), await rt.inspect(to)];
  // the name holds another container of the service now (a create after the rename): ours went on to the new name
  const from = found && movedOn(step, found) ? undefined : found;
  const refused = (from && notOurs(step, from)) || (target && notOurs(step, target));
  if (refused) return { ok: false, error: refused };
  if (!from && target) return { ok: true, alreadyDone: true }; // renamed before: a redelivery
  if (!from) return { ok: false, error: `container ${name} does not exist` };
  if (target) return { ok: false, error: `cannot rename ${name} to ${to}: the name is taken` };
  await rt.rename(name, to);
  return { ok: true };
};
