import type { ComposeIssue } from "./issues.js";

/**
 * Every string a compose document carries is bounded, checked before
 * anything else reads it, so that no input makes the parser, the store or a
 * terminal work without end. Any value: 64 KiB (a command, an environment or
 * label value, a health check). Any key: 1 KiB (an environment or label
 * name); the name of a service, volume or secret: 256. Values that are names
 * or references get short caps (below; ports: 64, in parsePorts). Documents
 * nest at most 32 levels (a compose file needs about 7).
 */
export const inputLimits = { value: 65_536, key: 1024, name: 256, depth: 32, issues: 20 } as const;
const serviceValueLimits: Record<string, number> = {
  image: 1024,
  user: 64,
  hostname: 253,
  working_dir: 4096,
  stop_signal: 32,
  stop_grace_period: 32,
  restart: 32,
  network_mode: 256,
  pid: 256,
  ipc: 256,
  mem_limit: 32,
  shm_size: 32,
  cpus: 32,
  scale: 32,
};
const serviceListLimits: Record<string, number> = { volumes: 8200, cap_add: 64, cap_drop: 64, group_add: 64, dns: 253, expose: 32, tmpfs: 4200, secrets: 256 };

function valueLimit(path: string[]): number {
  if (path[0] !== "services" || path.length < 3) return inputLimits.value;
  const key = path[2]!;
  if (path.length === 3) return (Object.hasOwn(serviceValueLimits, key) ? serviceValueLimits[key] : undefined) ?? inputLimits.value;
  if (path.length === 4) return (Object.hasOwn(serviceListLimits, key) ? serviceListLimits[key] : undefined) ?? inputLimits.value;
  return inputLimits.value;
}

const namedKeys = new Set(["services", "volumes", "secrets", "networks"]);

/** Strings, keys and nesting over the limits above, each named by its path (the first few). Pure and linear. */
export function boundsIssues(doc: unknown, fileOf: (path: string) => string): ComposeIssue[] {
  const issues: ComposeIssue[] = [];
  const add = (path: string[], reason: string) => {
    const at = path.join(".");
    if (issues.length < inputLimits.issues) issues.push({ file: fileOf(at), path: at, reason });
  };
  const visit = (value: unknown, path: string[]) => {
    if (issues.length >= inputLimits.issues) return;
    if (typeof value === "string") {
      const max = valueLimit(path);
      if (value.length > max) add(path, `is ${value.length} characters long (at most ${max})`);
      return;
    }
    if (value === null || typeof value !== "object") return;
    if (path.length >= inputLimits.depth) return add(path, `nested deeper than ${inputLimits.depth} levels`);
    if (Array.isArray(value)) {
      value.forEach((v, i) => visit(v, [...path, String(i)]));
      return;
    }
    const maxKey = path.length === 1 && namedKeys.has(path[0]!) ? inputLimits.name : inputLimits.key;
    for (const [k, v] of Object.entries(value)) {
      if (k.length > maxKey) add(path, `a key is ${k.length} characters long (at most ${maxKey})`);
      else visit(v, [...path, k]);
    }
  };
  visit(doc, []);
  return issues;
}
