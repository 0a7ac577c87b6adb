import { dirname, isAbsolute, join, resolve as resolvePath } from "node:path";
import { ComposeError, parseComposeYaml } from "./compose.js";
import { parseDotenv } from "./dotenv.js";
import { interpolate, type Lookup } from "./interpolate.js";
import type { NamedDocument } from "./merge.js";

export interface SourceFile {
  /** As the user named it, for messages. */
  name: string;
  /** Absolute path. */
  path: string;
  text: string;
}

export interface ResolveInput {
  files: SourceFile[];
  /** The CLI's environment: only the variables the files use leave the machine. */
  env: Record<string, string | undefined>;
  home: string;
  /** Reads a file next to a compose file; undefined when it does not exist. */
  readFile: (path: string) => string | undefined;
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * What the CLI does before sending files to the API (Compose does the same
 * where the environment is): parse YAML, interpolate variables from the
 * environment and a `.env` beside the first file, fold `env_file:` entries
 * into `environment:`, and make relative paths absolute. Pure, given its ports.
 */
export function resolveComposeFiles(input: ResolveInput): NamedDocument[] {
  const first = input.files[0];
  if (!first) return [];
  const dotenvPath = join(dirname(first.path), ".env");
  const dotenvText = input.readFile(dotenvPath);
  const dotenv = dotenvText === undefined ? {} : parseDotenv(dotenvText, ".env");
  const lookup: Lookup = (name) => input.env[name] ?? dotenv[name];
  return input.files.map((f) => {
    const raw = parseComposeYaml(f.text, f.name);
    const doc = interpolate(raw, lookup, f.name);
    if (!isRecord(doc)) return { name: f.name, document: doc };
    const dir = dirname(f.path);
    const abs = (p: string) => (p.startsWith("~") ? join(input.home, p.slice(1)) : isAbsolute(p) ? p : resolvePath(dir, p));
    if (isRecord(doc.services)) {
      for (const [svc, service] of Object.entries(doc.services)) {
        if (!isRecord(service)) continue;
        resolveEnvironment(service, `services.${svc}`, f.name, abs, input.readFile, lookup);
        resolveLabels(service, `services.${svc}`, f.name, abs, input.readFile);
        resolvePaths(service, abs);
      }
    }
    if (isRecord(doc.secrets)) {
      for (const secret of Object.values(doc.secrets)) {
        if (isRecord(secret) && typeof secret.file === "string") secret.file = abs(secret.file);
      }
    }
    return { name: f.name, document: doc };
  });
}

/** `env_file:` and `label_file:` entries: read and parsed in order, later files winning. */
function readKeyValueFiles(
  value: unknown,
  path: string,
  file: string,
  abs: (p: string) => string,
  readFile: (p: string) => string | undefined,
): Record<string, string> {
  const merged: Record<string, string> = {};
  const entries = Array.isArray(value) ? value : [value];
  entries.forEach((entry, i) => {
    const spec = typeof entry === "string" ? { path: entry, required: true } : isRecord(entry) ? { path: String(entry.path), required: entry.required !== false } : undefined;
    if (!spec) throw new ComposeError(file, `${path}.${i}`, "must be a path or {path, required}");
    const text = readFile(abs(spec.path));
    if (text === undefined) {
      if (spec.required) throw new ComposeError(file, `${path}.${i}`, `${spec.path}: no such file`);
      return;
    }
    Object.assign(merged, parseDotenv(text, spec.path));
  });
  return merged;
}

function resolveLabels(service: Record<string, unknown>, path: string, file: string, abs: (p: string) => string, readFile: (p: string) => string | undefined) {
  if (service.label_file === undefined) return;
  const fromFiles = readKeyValueFiles(service.label_file, `${path}.label_file`, file, abs, readFile);
  const own = service.labels;
  const ownMap = Array.isArray(own)
    ? Object.fromEntries(own.map((e) => String(e)).map((e) => (e.includes("=") ? [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)] : [e, ""])))
    : isRecord(own)
      ? own
      : {};
  service.labels = { ...fromFiles, ...ownMap };
  delete service.label_file;
}

function resolveEnvironment(
  service: Record<string, unknown>,
  path: string,
  file: string,
  abs: (p: string) => string,
  readFile: (p: string) => string | undefined,
  lookup: Lookup,
) {
  const hadFiles = service.env_file !== undefined;
  const merged: Record<string, string> = hadFiles ? readKeyValueFiles(service.env_file, `${path}.env_file`, file, abs, readFile) : {};
  delete service.env_file;
  const own = service.environment;
  const entries: Array<[string, unknown]> = Array.isArray(own)
    ? own.map((e) => {
        const s = String(e);
        const at = s.indexOf("=");
        return at < 0 ? [s, null] : [s.slice(0, at), s.slice(at + 1)];
      })
    : isRecord(own)
      ? Object.entries(own)
      : [];
  for (const [k, v] of entries) {
    if (v === null || v === undefined) {
      const fromEnv = lookup(k);
      if (fromEnv !== undefined) merged[k] = fromEnv;
      else delete merged[k];
    } else merged[k] = String(v);
  }
  if (hadFiles || own !== undefined) service.environment = merged;
}

function resolvePaths(service: Record<string, unknown>, abs: (p: string) => string) {
  if (Array.isArray(service.volumes)) {
    service.volumes = service.volumes.map((v) => {
      if (typeof v === "string") {
        const [source, ...rest] = v.split(":");
        if (rest.length > 0 && source && (source.startsWith(".") || source.startsWith("~"))) return [abs(source), ...rest].join(":");
        return v;
      }
      if (isRecord(v) && v.type === "bind" && typeof v.source === "string") return { ...v, source: abs(v.source) };
      return v;
    });
  }
  if (typeof service.build === "string") service.build = { context: abs(service.build) };
  else if (isRecord(service.build)) service.build = { ...service.build, context: abs(typeof service.build.context === "string" ? service.build.context : ".") };
}
