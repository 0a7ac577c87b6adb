import { z } from "zod";
import type { DeploySpec, Healthcheck, UpdateConfig } from "../model.js";
import type { Collector } from "./issues.js";
import { byteSize, bytes, cpus, definedValues, duration, durationMs, mapOrList, stringOrList, toMap } from "./values.js";

// ---- healthcheck --------------------------------------------------------------

const rawHealthcheck = z
  .object({
    test: stringOrList.optional(),
    interval: duration.optional(),
    timeout: duration.optional(),
    retries: z.number().int().min(0).optional(),
    start_period: duration.optional(),
    start_interval: duration.optional(),
    disable: z.boolean().optional(),
  })
  .strict();

export function healthcheck(c: Collector, value: unknown, path: string): Healthcheck | undefined {
  const h = c.check(rawHealthcheck, value, path);
  if (!h) return undefined;
  const out: Healthcheck = {};
  if (h.test !== undefined) {
    if (typeof h.test === "string") out.test = ["CMD-SHELL", h.test];
    else if (h.test.length === 0 || !["CMD", "CMD-SHELL", "NONE"].includes(h.test[0]!)) {
      c.fail(`${path}.test`, 'a list must start with "CMD", "CMD-SHELL" or "NONE"');
    } else out.test = h.test;
  }
  if (out.test?.[0] === "NONE" || h.disable) return { disable: true };
  for (const k of ["interval", "timeout", "start_period", "start_interval"] as const) {
    const ms = durationMs(c, h[k], `${path}.${k}`);
    if (ms !== undefined) out[k] = ms;
  }
  if (h.retries !== undefined) out.retries = h.retries;
  return out;
}

const rawUpdateConfig = z
  .object({
    parallelism: z.number().int().min(0).optional(),
    delay: duration.optional(),
    failure_action: z.enum(["pause", "continue", "rollback"]).optional(),
    monitor: duration.optional(),
    max_failure_ratio: z.number().min(0).max(1).optional(),
    order: z.enum(["stop-first", "start-first"]).optional(),
  })
  .strict();

function updateConfig(c: Collector, value: unknown, path: string): UpdateConfig | undefined {
  const u = c.check(rawUpdateConfig, value, path);
  if (!u) return undefined;
  const out: UpdateConfig = {};
  if (u.parallelism !== undefined) out.parallelism = u.parallelism;
  if (u.failure_action) out.failure_action = u.failure_action;
  if (u.max_failure_ratio !== undefined) out.max_failure_ratio = u.max_failure_ratio;
  if (u.order) out.order = u.order;
  const delay = durationMs(c, u.delay, `${path}.delay`);
  if (delay !== undefined) out.delay = delay;
  const monitor = durationMs(c, u.monitor, `${path}.monitor`);
  if (monitor !== undefined) out.monitor = monitor;
  return out;
}

// ---- deploy -------------------------------------------------------------------

const rawDeploy = z
  .object({
    mode: z.enum(["replicated", "global"]).optional(),
    replicas: z.number().int().min(0).optional(),
    labels: mapOrList.optional(),
    update_config: z.unknown().optional(),
    rollback_config: z.unknown().optional(),
    restart_policy: z
      .object({ condition: z.enum(["none", "on-failure", "any"]).optional(), delay: duration.optional(), max_attempts: z.number().int().optional(), window: duration.optional() })
      .strict()
      .optional(),
    placement: z
      .object({
        constraints: z.array(z.string()).optional(),
        preferences: z.array(z.object({ spread: z.string() }).strict()).optional(),
        max_replicas_per_node: z.number().int().optional(),
      })
      .strict()
      .optional(),
    resources: z
      .object({
        limits: z.object({ cpus: cpus.optional(), memory: bytes.optional(), pids: z.number().int().optional() }).strict().optional(),
        reservations: z.object({ memory: bytes.optional() }).strict().optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export function deploy(c: Collector, value: unknown, path: string): DeploySpec | undefined {
  const d = c.check(rawDeploy, value, path);
  if (!d) return undefined;
  const out: DeploySpec = {};
  if (d.mode) out.mode = d.mode;
  if (d.mode === "global" && d.replicas !== undefined) c.fail(`${path}.replicas`, "a global service runs one container per host: it takes no replicas");
  if (d.replicas !== undefined) out.replicas = d.replicas;
  if (d.labels) out.labels = definedValues(toMap(d.labels));
  if (d.update_config !== undefined) {
    const u = updateConfig(c, d.update_config, `${path}.update_config`);
    if (u) out.update_config = u;
  }
  if (d.rollback_config !== undefined) {
    const u = updateConfig(c, d.rollback_config, `${path}.rollback_config`);
    if (u) out.rollback_config = u;
  }
  if (d.restart_policy) {
    const r = d.restart_policy;
    out.restart_policy = {
      ...(r.condition ? { condition: r.condition } : {}),
      ...(r.max_attempts !== undefined ? { max_attempts: r.max_attempts } : {}),
    };
    const delay = durationMs(c, r.delay, `${path}.restart_policy.delay`);
    if (delay !== undefined) out.restart_policy.delay = delay;
    const window = durationMs(c, r.window, `${path}.restart_policy.window`);
    if (window !== undefined) out.restart_policy.window = window;
  }
  if (d.placement) out.placement = d.placement; // read and checked with the service's scheduling labels: see placementProblems
  if (d.resources) {
    const res: NonNullable<DeploySpec["resources"]> = {};
    for (const kind of ["limits", "reservations"] as const) {
      const r = d.resources[kind];
      if (!r) continue;
      const memory = byteSize(c, r.memory, `${path}.resources.${kind}.memory`);
      res[kind] = { ...("cpus" in r && r.cpus !== undefined ? { cpus: r.cpus } : {}), ...(memory !== undefined ? { memory } : {}), ...("pids" in r && r.pids !== undefined ? { pids: r.pids } : {}) };
    }
    out.resources = res;
  }
  return out;
}
