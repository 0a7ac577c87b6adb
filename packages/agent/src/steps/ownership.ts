import { labels as L, type Step } from "@corral/core/host";
import type { ContainerInfo } from "../runtime.js";

/**
 * Why a step may not touch a container found under its name: the container
 * must carry the step's stack and service labels, and, where the step knows
 * the create that made it, that create's step label. Undefined when it may.
 * A name alone proves nothing: another stack's container, or one corral does
 * not manage, may hold it.
 */
export function notOurs(step: Step, c: ContainerInfo): string | undefined {
  const expected: Array<[string, string]> = [[L.stack, step.stack], [L.service, step.service], ...(step.createdBy ? [[L.step, step.createdBy] as [string, string]] : [])];
  const wrong = expected.find(([label, value]) => c.labels[label] !== value);
  if (!wrong) return undefined;
  const [label, value] = wrong;
  const has = c.labels[label] === undefined ? "no such label" : `${label}=${c.labels[label]}`;
  return `refusing to ${step.action} container ${c.name} (${c.id.slice(0, 12)}): it does not belong to this step (expected ${label}=${value}, found ${has})`;
}

/**
 * The container under the step's name is another of the same service's (a
 * later create's, or an older one renamed back by a rollback): the one the
 * step is about has left the name, which the plan gives on only after this
 * step. A stop or removal delivered again finds it so, and is done; it must
 * not act on the container that holds the name now.
 */
export function movedOn(step: Step, c: ContainerInfo): boolean {
  return step.createdBy !== undefined && c.labels[L.stack] === step.stack && c.labels[L.service] === step.service && c.labels[L.step] !== step.createdBy;
}
