import type { ComposeIssue, Origins } from "./compose/issues.js";
import type { Healthcheck, Project, ServiceSpec } from "./model.js";
import { routedPorts } from "./ports.js";

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

/** Docker's defaults for what a health check leaves unset (ms). */
const DEFAULT_INTERVAL = 30_000;
const DEFAULT_RETRIES = 3;

const seconds = (ms: number) => `${Math.round(ms / 100) / 10}s`;

/**
 * Health settings that cannot work as written: warnings (the stack still
 * goes up) at `up --render` and `up`, each at the file, service and key.
 * A health check is the compose file's (healthcheck:, or rancher's
 * health_check:); an image's own HEALTHCHECK is not known before a host has
 * the image, so a service relying on one is warned about too.
 */
export function healthWarnings(project: Pick<Project, "services">, file: string, origins: Origins = {}): ComposeIssue[] {
  const out: ComposeIssue[] = [];
  for (const [name, spec] of Object.entries(project.services)) {
    const at = (key: string, path: string, reason: string) => out.push({ file: origins[name]?.[key] ?? file, path: `services.${name}.${path}`, reason });
    const check = effectiveHealthcheck(spec);
    const checked = check !== undefined && check.disable !== true && !(check.test?.[0] === "NONE");
    const update = spec.deploy?.update_config;
    if (checked && update?.monitor !== undefined) {
      const window = (check.start_period ?? 0) + (check.retries ?? DEFAULT_RETRIES) * (check.interval ?? DEFAULT_INTERVAL);
      if (update.monitor < window) {
        at(
          "deploy",
          "deploy.update_config.monitor",
          `${seconds(update.monitor)} ends before a failing health check can fail (start_period + retries × interval = ${seconds(window)}): a broken update passes as healthy`,
        );
      }
    }
    if (checked) continue;
    const routed = routedPorts(spec).length > 0;
    if (update?.order === "start-first" || routed) {
      const why = update?.order === "start-first" ? "updates start-first" : "has routed (ingress) ports";
      at("healthcheck", "healthcheck", `the service ${why} but has no health check: a new container joins before it can serve`);
    }
    if (update?.failure_action === "rollback") {
      at("deploy", "deploy.update_config.failure_action", "rollback needs a health check to tell a failed update: without one, only a container that exits rolls it back");
    }
  }
  return out;
}
