import { notOurs } from "./ownership.js";
import { ensureImage } from "./pull.js";
import type { StepHandler } from "./types.js";

/** A scheduled job's run: a one-shot container, made, started, waited for, removed; its exit code reported. */
export const run: StepHandler<"run"> = async (step, { options: o, execute }) => {
  const rt = o.runtime;
  const name = step.container ?? "";
  // the run's container is its own: made by this very step (the create below labels it with the run's id)
  const own = { ...step, createdBy: step.id };
  let found = await rt.inspect(name);
  const refused = found && notOurs(own, found);
  if (refused) return { ok: false, error: refused };
  if (!found) {
    await ensureImage(step, false, o);
    const created = await execute({ ...step, action: "create" });
    if (!created.ok) return created;
    found = await rt.inspect(name);
  }
  if (found?.status === "created") await rt.start(name); // a redelivery finds a finished run and only collects it
  const exitCode = await rt.wait(name);
  await execute({ ...own, action: "remove" });
  return { ok: true, exitCode };
};
