import { canonicalJson } from "./hash.js";
import type { ServiceSpec } from "./model.js";

/** The top-level keys whose values differ between two specs of a service (what an upgrade changes). */
export function changedKeys(before: ServiceSpec | undefined, after: ServiceSpec | undefined): string[] {
  if (!before || !after) return before || after ? [before ? "removed" : "added"] : [];
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys]
    .filter((k) => canonicalJson((before as Record<string, unknown>)[k]) !== canonicalJson((after as Record<string, unknown>)[k]))
    .sort();
}
