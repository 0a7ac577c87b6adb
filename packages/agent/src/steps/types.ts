import type { Step, StepAction, StepReport } from "@corral/core";
import type { AgentOptions } from "../options.js";
import type { NetworkAssignment } from "../runtime.js";

/** How a step went: its report, less what the runner adds (stack, step id, host). */
export type Outcome = Omit<StepReport, "kind" | "stack" | "stepId" | "host">;

/** A step of one action. */
export type StepOf<A extends StepAction> = Step & { action: A };

/** What a step's handler acts with: the agent's options, and what the runner shares between steps. */
export interface StepContext {
  options: AgentOptions;
  /** The stack's network here, made if missing; on the control plane's subnet when this host is on the overlay. */
  ensureNetwork(network: string, stack: string): Promise<NetworkAssignment | undefined>;
  /** Another action done within this step (a run's create and remove), by its handler. */
  execute(step: Step): Promise<Outcome>;
}

/**
 * Does one action on the host. Before acting it asks the engine whether the
 * step is done already (container labels), so that a step run twice acts once.
 */
export type StepHandler<A extends StepAction> = (step: StepOf<A>, ctx: StepContext) => Promise<Outcome>;
