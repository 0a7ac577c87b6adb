import { createHash } from "node:crypto";
import type { ServiceSpec } from "./model.js";

/** JSON with object keys sorted, so that key order never changes a hash. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * The per-service config hash: everything that shapes the container, not
 * the scale (scaling is not an upgrade).
 */
export function configHash(spec: ServiceSpec): string {
  const { scale: _scale, ...shape } = spec;
  return createHash("sha256").update(canonicalJson(shape)).digest("hex").slice(0, 16);
}
