import { z } from "zod";
import { ComposeError, type ComposeIssue } from "./compose.js";
import type { Project } from "./model.js";

const rancherService = z
  .object({
    scale: z.number().int().min(0).optional(),
    retain_ip: z.boolean().optional(),
    upgrade_strategy: z
      .object({ start_first: z.boolean().optional(), batch_size: z.number().int().min(1).optional(), interval_millis: z.number().int().min(0).optional() })
      .strict()
      .optional(),
    health_check: z
      .object({
        port: z.number().int().min(1).max(65535),
        request_line: z.string().optional(),
        interval: z.number().int().min(1).optional(),
        response_timeout: z.number().int().min(1).optional(),
        healthy_threshold: z.number().int().min(1).optional(),
        unhealthy_threshold: z.number().int().min(1).optional(),
        initializing_timeout: z.number().int().min(0).optional(),
        reinitializing_timeout: z.number().int().min(0).optional(),
        strategy: z.enum(["none", "recreate"]).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

const rancherFile = z.object({ version: z.union([z.string(), z.number()]).optional(), services: z.record(z.union([rancherService, z.null()])).optional() }).strict();

/**
 * Fold a rancher-compose.yml into a parsed project: `scale`, `retain_ip`,
 * `upgrade_strategy` (as deploy.update_config) and `health_check`.
 */
export function applyRancherCompose(project: Project, doc: unknown, file = "rancher-compose.yml"): Project {
  if (doc === null || doc === undefined) return project;
  const parsed = rancherFile.safeParse(doc);
  if (!parsed.success) {
    const issues: ComposeIssue[] = parsed.error.issues.map((i) => {
      const path = i.path.map(String).join(".");
      if (i.code === "unrecognized_keys") return { file, path: [path, i.keys[0]].filter(Boolean).join("."), reason: "not supported" };
      return { file, path, reason: i.message.toLowerCase() };
    });
    throw new ComposeError(issues);
  }
  const services = { ...project.services };
  const issues: ComposeIssue[] = [];
  for (const [name, r] of Object.entries(parsed.data.services ?? {})) {
    const spec = services[name];
    if (!spec) {
      issues.push({ file, path: `services.${name}`, reason: "no such service in the compose file" });
      continue;
    }
    if (!r) continue;
    const next = { ...spec };
    if (r.scale !== undefined) next.scale = r.scale;
    if (r.retain_ip !== undefined) next.retain_ip = r.retain_ip;
    if (r.upgrade_strategy) {
      const u = r.upgrade_strategy;
      next.deploy = {
        ...next.deploy,
        update_config: {
          ...next.deploy?.update_config,
          ...(u.batch_size !== undefined ? { parallelism: u.batch_size } : {}),
          ...(u.interval_millis !== undefined ? { delay: u.interval_millis } : {}),
          ...(u.start_first !== undefined ? { order: u.start_first ? ("start-first" as const) : ("stop-first" as const) } : {}),
        },
      };
    }
    if (r.health_check) {
      const { reinitializing_timeout: _r, ...h } = r.health_check;
      next.health_check = h;
    }
    services[name] = next;
  }
  if (issues.length > 0) throw new ComposeError(issues);
  return { ...project, services };
}
