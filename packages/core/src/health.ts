import type { Healthcheck, ServiceSpec } from "./model.js";

/**
 * The health check a container gets: the compose `healthcheck:` if any, else
 * Rancher's `health_check` (rancher-compose.yml) as the equivalent command:
 * an HTTP request when it has a request_line, a TCP connect otherwise.
 */
export function effectiveHealthcheck(spec: ServiceSpec): Healthcheck | undefined {
  if (spec.healthcheck) return spec.healthcheck;
  const r = spec.health_check;
  if (!r) return undefined;
  const path = r.request_line ? (r.request_line.split(/\s+/)[1] ?? "/") : undefined;
  const probe = path
    ? `wget -q -O /dev/null http://127.0.0.1:${r.port}${path.startsWith("/") ? path : `/${path}`} || exit 1`
    : `nc -z 127.0.0.1 ${r.port} || exit 1`;
  return {
    test: ["CMD-SHELL", probe],
    ...(r.interval !== undefined ? { interval: r.interval } : {}),
    ...(r.response_timeout !== undefined ? { timeout: r.response_timeout } : {}),
    ...(r.unhealthy_threshold !== undefined ? { retries: r.unhealthy_threshold } : {}),
    ...(r.initializing_timeout !== undefined ? { start_period: r.initializing_timeout } : {}),
  };
}
