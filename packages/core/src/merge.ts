import { toMap, type Origins } from "./compose.js";

export interface NamedDocument {
  name: string;
  document: unknown;
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** Service keys whose list entries are keyed: an override replaces the entry with the same key. */
const keyedLists: Record<string, (entry: unknown) => string> = {
  volumes: (e) => (typeof e === "string" ? (e.split(":")[1] ?? e.split(":")[0]!) : String((e as { target?: string }).target)),
  secrets: (e) => (typeof e === "string" ? e : String((e as { target?: string; source?: string }).target ?? (e as { source?: string }).source)),
};
/** Lists that are appended to (duplicates dropped). */
const appendedLists = new Set(["ports", "expose", "dns", "dns_search", "cap_add", "cap_drop", "group_add", "tmpfs", "env_file", "security_opt", "extra_hosts"]);
/** `KEY=VALUE` lists merged as mappings. */
const mappingLists = new Set(["environment", "labels", "sysctls", "extra_hosts_map"]);
/** Replaced as a whole. */
const replaced = new Set(["command", "entrypoint"]);

function deepMerge(base: unknown, over: unknown): unknown {
  if (isRecord(base) && isRecord(over)) {
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(over)) out[k] = k === "test" ? v : deepMerge(base[k], v);
    return out;
  }
  return over;
}

function mergeService(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const prev = base[key];
    if (prev === undefined || replaced.has(key)) {
      out[key] = value;
    } else if (mappingLists.has(key) && (isRecord(prev) || Array.isArray(prev)) && (isRecord(value) || Array.isArray(value))) {
      out[key] = { ...toMap(prev as never), ...toMap(value as never) };
    } else if (key === "depends_on" && (Array.isArray(prev) || isRecord(prev))) {
      const asMap = (v: unknown) => (Array.isArray(v) ? Object.fromEntries(v.map((s) => [String(s), {}])) : (v as Record<string, unknown>));
      out[key] = deepMerge(asMap(prev), asMap(value));
    } else if (keyedLists[key] && Array.isArray(prev) && Array.isArray(value)) {
      const keyOf = keyedLists[key]!;
      const byKey = new Map(prev.map((e) => [keyOf(e), e] as const));
      for (const e of value) byKey.set(keyOf(e), e);
      out[key] = [...byKey.values()];
    } else if (appendedLists.has(key) && Array.isArray(prev) && Array.isArray(value)) {
      const seen = new Set(prev.map((e) => JSON.stringify(e)));
      out[key] = [...prev, ...value.filter((e) => !seen.has(JSON.stringify(e)))];
    } else {
      out[key] = deepMerge(prev, value);
    }
  }
  return out;
}

/**
 * Merge compose documents with the Compose Specification's override rules:
 * later files override earlier ones; mappings merge, most lists append,
 * volumes and secrets replace by target, command and entrypoint replace.
 * Records which file last set each service key, for error messages.
 */
export function mergeDocuments(docs: NamedDocument[]): { document: Record<string, unknown>; origins: Origins } {
  const document: Record<string, unknown> = {};
  const origins: Origins = {};
  for (const { name, document: doc } of docs) {
    if (!isRecord(doc)) {
      if (docs.length === 1) return { document: doc as Record<string, unknown>, origins };
      continue;
    }
    for (const [top, value] of Object.entries(doc)) {
      if (top === "services" && isRecord(value)) {
        const services = (isRecord(document.services) ? document.services : {}) as Record<string, unknown>;
        for (const [svc, raw] of Object.entries(value)) {
          const prev = services[svc];
          services[svc] = isRecord(prev) && isRecord(raw) ? mergeService(prev, raw) : raw;
          for (const key of isRecord(raw) ? Object.keys(raw) : []) (origins[svc] ??= {})[key] = name;
        }
        document.services = services;
      } else {
        document[top] = deepMerge(document[top], value);
      }
    }
  }
  return { document, origins };
}
