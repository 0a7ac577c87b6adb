import type { Step, StepAction } from "@corral/core";
import { create } from "./create.js";
import { pull } from "./pull.js";
import { removeVolume } from "./remove-volume.js";
import { remove } from "./remove.js";
import { rename } from "./rename.js";
import { run } from "./run.js";
import { start } from "./start.js";
import { stop } from "./stop.js";
import type { Outcome, StepContext, StepHandler } from "./types.js";

export type { Outcome, StepContext, StepHandler, StepOf } from "./types.js";

/** One handler per step action: a new action does not compile until it has one. */
export const stepHandlers = { pull, create, start, stop, rename, "remove-volume": removeVolume, remove, run } satisfies { [A in StepAction]: StepHandler<A> };

/** Do a step's action, by its handler. */
export function executeStep(step: Step, ctx: StepContext): Promise<Outcome> {
  // the table holds each action's handler under the action's name: the step's own
  const handler = stepHandlers[step.action] as StepHandler<StepAction>;
  return handler(step, ctx);
}
