import { labels as L, type Step } from "@corral/core";
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
