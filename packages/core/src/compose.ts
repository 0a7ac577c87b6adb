import { parse as parseYaml, YAMLParseError } from "yaml";
import { z } from "zod";
import { splitCommand } from "./shell.js";
import type { PortSpec, ServiceSpec } from "./model.js";

/** A refusal of user input: names the file, the path inside it, and what is wrong. */
export class ComposeError extends Error {
  override name = "ComposeError";
  constructor(
    readonly file: string,
    readonly path: string,
    readonly reason: string,
  ) {
    super(path ? `${file}: ${path}: ${reason}` : `${file}: ${reason}`);
  }
}

const stringOrList = z.union([z.string(), z.array(z.string())]);
const scalar = z.union([z.string(), z.number(), z.boolean()]);
const mapOrList = z.union([z.record(scalar.nullable()), z.array(z.string())]);

/** The service keys the skeleton honours. Anything else is refused by name. */
const serviceSchema = z
  .object({
    image: z.string().min(1),
    command: stringOrList.optional(),
    entrypoint: stringOrList.optional(),
    environment: mapOrList.optional(),
    ports: z.array(z.union([z.string(), z.number()])).optional(),
    labels: mapOrList.optional(),
    cap_add: z.array(z.string()).optional(),
    cap_drop: z.array(z.string()).optional(),
    user: z.union([z.string(), z.number()]).optional(),
    working_dir: z.string().optional(),
    restart: z.enum(["no", "always", "on-failure", "unless-stopped"]).optional(),
    scale: z.number().int().min(0).optional(),
  })
  .strict();

const topSchema = z
  .object({
    version: z.union([z.string(), z.number()]).optional(),
    name: z.string().optional(),
    services: z.record(z.unknown()),
  })
  .strict();

const serviceNamePattern = /^[a-z0-9][a-z0-9_.-]*$/;

/** Render a zod issue as `services.web.ports.0: reason`. */
function issueToError(file: string, prefix: string[], issue: z.ZodIssue): ComposeError {
  const path = [...prefix, ...issue.path.map(String)];
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0] ?? "";
    return new ComposeError(file, [...path, key].join("."), "not supported");
  }
  if (issue.code === "invalid_type" && issue.received === "undefined") {
    return new ComposeError(file, path.join("."), "is required");
  }
  return new ComposeError(file, path.join("."), issue.message.toLowerCase());
}

function withoutExtensions(doc: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(doc).filter(([k]) => !k.startsWith("x-")));
}

function toRecord(value: z.infer<typeof mapOrList> | undefined, file: string, path: string): Record<string, string> {
  if (value === undefined) return {};
  if (Array.isArray(value)) {
    const out: Record<string, string> = {};
    for (const [i, entry] of value.entries()) {
      const eq = entry.indexOf("=");
      if (eq === 0) throw new ComposeError(file, `${path}.${i}`, `"${entry}" has no name`);
      if (eq < 0) out[entry] = "";
      else out[entry.slice(0, eq)] = entry.slice(eq + 1);
    }
    return out;
  }
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, v === null ? "" : String(v)]));
}

function toArgv(value: string | string[] | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return typeof value === "string" ? splitCommand(value) : value;
}

const portPattern =
  /^(?:(?:(?<ip>\[[0-9a-fA-F:.]+\]|[0-9.]+):)?(?<published>\d+)?:)?(?<target>\d+)(?:\/(?<protocol>tcp|udp|sctp))?$/;

/** Short port syntax: `80`, `8080:80`, `127.0.0.1:8080:80`, `127.0.0.1::80`, `53/udp`. */
export function parsePort(entry: string | number, file: string, path: string): PortSpec {
  const text = String(entry);
  const m = portPattern.exec(text);
  const groups = m?.groups;
  if (!groups?.target) throw new ComposeError(file, path, `invalid port "${text}"`);
  const target = Number(groups.target);
  const published = groups.published === undefined ? undefined : Number(groups.published);
  for (const n of [target, published]) {
    if (n !== undefined && (n < 1 || n > 65535)) throw new ComposeError(file, path, `port ${n} out of range 1-65535`);
  }
  const port: PortSpec = { target, protocol: (groups.protocol as PortSpec["protocol"]) ?? "tcp" };
  if (published !== undefined) port.published = published;
  if (groups.ip) port.host_ip = groups.ip.replace(/^\[|\]$/g, "");
  return port;
}

function normalizeService(name: string, raw: z.infer<typeof serviceSchema>, file: string): ServiceSpec {
  const base = `services.${name}`;
  const spec: ServiceSpec = {
    image: raw.image,
    environment: toRecord(raw.environment, file, `${base}.environment`),
    labels: toRecord(raw.labels, file, `${base}.labels`),
    ports: (raw.ports ?? []).map((p, i) => parsePort(p, file, `${base}.ports.${i}`)),
    cap_add: raw.cap_add ?? [],
    cap_drop: raw.cap_drop ?? [],
    scale: raw.scale ?? 1,
  };
  const command = toArgv(raw.command);
  if (command) spec.command = command;
  const entrypoint = toArgv(raw.entrypoint);
  if (entrypoint) spec.entrypoint = entrypoint;
  if (raw.user !== undefined) spec.user = String(raw.user);
  if (raw.working_dir !== undefined) spec.working_dir = raw.working_dir;
  if (raw.restart !== undefined) spec.restart = raw.restart;
  for (const key of Object.keys(spec.labels)) {
    if (key.startsWith("io.corral.")) {
      throw new ComposeError(file, `${base}.labels.${key}`, "the io.corral. prefix is reserved for corral");
    }
  }
  return spec;
}

/**
 * Parse an already-interpolated compose document (as the API receives it) into
 * the normalized model. Pure: no I/O, no environment.
 */
export function parseComposeDocument(doc: unknown, file = "docker-compose.yml"): Record<string, ServiceSpec> {
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    throw new ComposeError(file, "", "a compose file must be a mapping with a services: key");
  }
  const top = topSchema.safeParse(withoutExtensions(doc as Record<string, unknown>));
  if (!top.success) throw issueToError(file, [], top.error.issues[0]!);
  const services: Record<string, ServiceSpec> = {};
  const entries = Object.entries(top.data.services);
  if (entries.length === 0) throw new ComposeError(file, "services", "no service is defined");
  for (const [name, rawService] of entries) {
    if (!serviceNamePattern.test(name)) {
      throw new ComposeError(file, `services.${name}`, "a service name is lower-case letters, digits, '.', '_' and '-'");
    }
    const cleaned =
      rawService && typeof rawService === "object" && !Array.isArray(rawService)
        ? withoutExtensions(rawService as Record<string, unknown>)
        : rawService;
    const parsed = serviceSchema.safeParse(cleaned);
    if (!parsed.success) throw issueToError(file, ["services", name], parsed.error.issues[0]!);
    services[name] = normalizeService(name, parsed.data, file);
  }
  return services;
}

/** Parse compose YAML text. YAML syntax errors name the file and the line. */
export function parseComposeYaml(text: string, file = "docker-compose.yml"): unknown {
  try {
    return parseYaml(text, { merge: true });
  } catch (e) {
    if (e instanceof YAMLParseError) {
      const line = e.linePos?.[0]?.line;
      throw new ComposeError(file, line ? `line ${line}` : "", e.message.split("\n")[0] ?? "invalid YAML");
    }
    throw e;
  }
}
