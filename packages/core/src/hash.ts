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

/** The store names of the secrets a service mounts (a compose key, or its `name:`). */
export function mountedSecrets(spec: ServiceSpec, secrets: Record<string, { name?: string }> = {}): string[] {
  return [...new Set((spec.secrets ?? []).map((m) => secrets[m.source]?.name ?? m.source))].sort();
}

/**
 * The per-service config hash: everything that shapes the container,
 * including the versions of the secrets it mounts; not the scale, nor the
 * rollout settings (scaling is not an upgrade).
 */
export function configHash(spec: ServiceSpec, secretVersions: Record<string, number> = {}, secrets: Record<string, { name?: string }> = {}): string {
  const { scale: _scale, extensions: _x, deploy, ...shape } = spec;
  const { replicas: _r, update_config: _u, rollback_config: _rb, ...container } = deploy ?? {};
  const versions = Object.fromEntries(mountedSecrets(spec, secrets).map((n) => [n, secretVersions[n] ?? 0]));
  return createHash("sha256")
    .update(canonicalJson({ ...shape, deploy: container, secretVersions: versions }))
    .digest("hex")
    .slice(0, 16);
}
