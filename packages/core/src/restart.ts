import type { ServiceSpec } from "./model.js";

/** The container's restart policy: `restart:`, else deploy.restart_policy (Swarm's conditions in Docker's words). */
export function restartOf(spec: ServiceSpec): string | undefined {
  if (spec.restart) return spec.restart;
  const p = spec.deploy?.restart_policy;
  if (!p?.condition) return undefined;
  if (p.condition === "none") return "no";
  if (p.condition === "any") return "always";
  return p.max_attempts !== undefined ? `on-failure:${p.max_attempts}` : "on-failure";
}

/**
 * Whether the service's restart policy wants a container that ended with
 * `exitCode` running again: always and unless-stopped, whatever the code;
 * on-failure (with no count of attempts, which only its engine keeps) when
 * the code is not 0. The engine does that itself; corral does it when the
 * engine did not (an engine restart cut a start or a stop short).
 */
export function restartWanted(spec: ServiceSpec, exitCode: number): boolean {
  const policy = restartOf(spec);
  return policy === "always" || policy === "unless-stopped" || (policy === "on-failure" && exitCode !== 0);
}
