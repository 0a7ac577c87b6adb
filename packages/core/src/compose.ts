import { parse as parseYaml, YAMLParseError } from "yaml";
import { z } from "zod";
import type { Project, ServiceSpec } from "./model.js";
import { serviceNamePattern } from "./names.js";
import { boundsIssues } from "./compose/bounds.js";
import { Collector, ComposeError, isRecord, type Origins } from "./compose/issues.js";
import { normalizeService } from "./compose/service.js";
import { topNetworks, topSecrets, topVolumes } from "./compose/top-level.js";

/*
 * The compose parser. Its parts, in compose/: issues.ts (ComposeError and
 * the collector of problems), bounds.ts (size limits, checked first),
 * values.ts (shared value shapes), ports.ts, mounts.ts (volumes, secrets),
 * deploy.ts (healthcheck, deploy), service-keys.ts (what each service key
 * does), service.ts (a whole service), top-level.ts (volumes, secrets,
 * networks). This file reads a document from the top.
 */

export { ComposeError } from "./compose/issues.js";
export type { ComposeIssue, Origins } from "./compose/issues.js";
export { boundsIssues, inputLimits } from "./compose/bounds.js";
export { parsePort, parsePorts } from "./compose/ports.js";
export { toMap } from "./compose/values.js";

export interface ParseOptions {
  /** File name for messages (the first -f file). */
  file?: string;
  origins?: Origins;
  /** Collect unsupported keys instead of refusing them (the conformance test). */
  lenient?: boolean;
}

export interface ParseResult {
  project: Project;
  /** Paths of keys corral does not support (only with `lenient`). */
  unsupported: string[];
}

const topKeys = new Set(["version", "name", "services", "volumes", "secrets", "networks"]);

/**
 * Parse an already-interpolated, merged compose document (as the API
 * receives it) into the normalized model. Pure: no I/O, no environment.
 * Every problem is reported at once.
 */
export function parseProject(doc: unknown, options: ParseOptions = {}): ParseResult {
  const file = options.file ?? "docker-compose.yml";
  const c = new Collector(file, options.origins ?? {}, options.lenient ?? false);
  if (!isRecord(doc)) throw new ComposeError(file, "", "a compose file must be a mapping with a services: key");
  const tooBig = boundsIssues(doc, (path) => c.fileOf(path));
  if (tooBig.length > 0) throw new ComposeError(tooBig); // nothing else reads an unbounded input
  for (const key of Object.keys(doc)) if (!key.startsWith("x-") && !topKeys.has(key)) c.unknown(key);
  const services: Record<string, ServiceSpec> = {};
  const rawServices = c.check(z.record(z.unknown()), doc.services, "services") ?? {};
  if (doc.services !== undefined && Object.keys(rawServices).length === 0) c.fail("services", "no service is defined");
  for (const [name, raw] of Object.entries(rawServices)) {
    if (!serviceNamePattern.test(name)) {
      c.fail(`services.${name}`, "a service name is a DNS label: lower-case letters, digits and '-', at most 63 (it names SERVICE.STACK.ENVIRONMENT.DOMAIN and the service's containers)");
      continue;
    }
    const spec = normalizeService(c, name, raw);
    if (spec) services[name] = spec;
  }
  const volumes = topVolumes(c, doc.volumes);
  const secrets = topSecrets(c, doc.secrets);
  topNetworks(c, doc.networks);
  // references between parts of the file (a lenient parse reads fragments, as compose-go's consistency-free load)
  for (const [name, spec] of Object.entries(options.lenient ? {} : services)) {
    for (const [i, m] of (spec.volumes ?? []).entries()) {
      if (m.type === "volume" && m.source && !volumes[m.source]) c.fail(`services.${name}.volumes.${i}`, `volume "${m.source}" is not declared under the top-level volumes:`);
    }
    for (const [i, m] of (spec.secrets ?? []).entries()) {
      if (!secrets[m.source]) c.fail(`services.${name}.secrets.${i}`, `secret "${m.source}" is not declared under the top-level secrets:`);
    }
    for (const dep of Object.keys(spec.depends_on ?? {})) {
      if (!services[dep] && rawServices[dep] === undefined) c.fail(`services.${name}.depends_on`, `service "${dep}" is not defined`);
    }
  }
  if (!options.lenient) {
    const cycle = dependencyCycle(services);
    if (cycle) c.fail(`services.${cycle[0]}.depends_on`, `dependency cycle ${cycle.join(" → ")}`);
  }
  if (c.issues.length > 0) throw new ComposeError(c.issues);
  return { project: { services, volumes, secrets }, unsupported: c.unsupported };
}

/** A depends_on cycle, as the list of services around it, if there is one. */
function dependencyCycle(services: Record<string, ServiceSpec>): string[] | undefined {
  const state = new Map<string, "visiting" | "done">();
  const path: string[] = [];
  const visit = (name: string): string[] | undefined => {
    if (state.get(name) === "done") return undefined;
    if (state.get(name) === "visiting") return [...path.slice(path.indexOf(name)), name];
    state.set(name, "visiting");
    path.push(name);
    for (const dep of Object.keys(services[name]?.depends_on ?? {})) {
      const found = services[dep] ? visit(dep) : undefined;
      if (found) return found;
    }
    path.pop();
    state.set(name, "done");
    return undefined;
  };
  for (const name of Object.keys(services)) {
    const found = visit(name);
    if (found) return found;
  }
  return undefined;
}

/** The services of a document (callers that only need those). */
export function parseComposeDocument(doc: unknown, file = "docker-compose.yml"): Record<string, ServiceSpec> {
  return parseProject(doc, { file }).project.services;
}

/** Parse compose YAML text. YAML syntax errors name the file and the line. */
export function parseComposeYaml(text: string, file = "docker-compose.yml"): unknown {
  try {
    return parseYaml(text, { merge: true, logLevel: "error" });
  } catch (e) {
    if (e instanceof YAMLParseError) {
      const line = e.linePos?.[0]?.line;
      throw new ComposeError(file, line ? `line ${line}` : "", e.message.split("\n")[0] ?? "invalid YAML");
    }
    // the YAML library also throws plain errors (an alias before its anchor, too many aliases)
    throw new ComposeError(file, "", `invalid YAML: ${(e as Error).message}`);
  }
}
