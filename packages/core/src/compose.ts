import { isIP, isIPv6 } from "node:net";
import { parse as parseYaml, YAMLParseError } from "yaml";
import { z } from "zod";
import { cronLabels } from "./cron.js";
import { splitCommand } from "./shell.js";
import { parseBytes, parseDuration } from "./units.js";
import type { DeploySpec, Healthcheck, PortSpec, Project, SecretMount, SecretSpec, ServiceSpec, UpdateConfig, VolumeMount, VolumeSpec } from "./model.js";
import { serviceNamePattern } from "./names.js";
import { isSchedulingLabel, placementRules } from "./placement.js";
import { perContainerPorts } from "./host-ports.js";

export interface ComposeIssue {
  file: string;
  path: string;
  reason: string;
}

const issueText = (i: ComposeIssue) => (i.path ? `${i.file}: ${i.path}: ${i.reason}` : `${i.file}: ${i.reason}`);

/** A refusal of user input: every problem found, each naming the file, the path inside it, and what is wrong. */
export class ComposeError extends Error {
  override name = "ComposeError";
  readonly issues: ComposeIssue[];
  constructor(issues: ComposeIssue[] | ComposeIssue);
  constructor(file: string, path: string, reason: string);
  constructor(a: ComposeIssue[] | ComposeIssue | string, path?: string, reason?: string) {
    const issues = typeof a === "string" ? [{ file: a, path: path ?? "", reason: reason ?? "" }] : Array.isArray(a) ? a : [a];
    super(issues.map(issueText).join("\n"));
    this.issues = issues;
  }
  get file() {
    return this.issues[0]?.file ?? "";
  }
  get path() {
    return this.issues[0]?.path ?? "";
  }
  get reason() {
    return this.issues[0]?.reason ?? "";
  }
}

/** Where each service key came from, when several files were merged. */
export type Origins = Record<string, Record<string, string>>;

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

class Collector {
  issues: ComposeIssue[] = [];
  unsupported: string[] = [];
  constructor(
    readonly file: string,
    readonly origins: Origins,
    readonly lenient: boolean,
  ) {}
  fileOf(path: string): string {
    const [top, service, key] = path.split(".");
    if (top === "services" && service && key) return this.origins[service]?.[key] ?? this.file;
    return this.file;
  }
  fail(path: string, reason: string) {
    this.issues.push({ file: this.fileOf(path), path, reason });
  }
  unknown(path: string, hint?: string) {
    if (this.lenient) this.unsupported.push(path);
    else this.fail(path, hint ? `not supported: ${hint}` : "not supported");
  }
  /** Validate `value` with `schema`; on failure record an issue under `path` and return undefined. */
  check<S extends z.ZodTypeAny>(schema: S, value: unknown, path: string): z.output<S> | undefined {
    let current = value;
    for (let round = 0; round < 50; round++) {
      const r = schema.safeParse(current);
      if (r.success) return r.data;
      const issue = r.error.issues[0]!;
      const at = [path, ...issue.path.map(String)].filter(Boolean).join(".");
      if (issue.code !== "unrecognized_keys") {
        this.fail(at, describeIssue(issue));
        return undefined;
      }
      for (const k of issue.keys) this.unknown(`${at}.${k}`);
      if (!this.lenient) return undefined;
      current = withoutKeys(current, issue.path, issue.keys); // read the rest, as a lenient parse does
    }
    return undefined;
  }
}

/** A copy of `value` without `keys` in the object at `path`. */
function withoutKeys(value: unknown, path: (string | number)[], keys: string[]): unknown {
  if (path.length === 0) {
    return isRecord(value) ? Object.fromEntries(Object.entries(value).filter(([k]) => !keys.includes(k))) : value;
  }
  const [head, ...rest] = path;
  if (Array.isArray(value)) return value.map((v, i) => (i === head ? withoutKeys(v, rest, keys) : v));
  if (isRecord(value)) return { ...value, [head as string]: withoutKeys(value[head as string], rest, keys) };
  return value;
}

function describeIssue(issue: z.ZodIssue): string {
  if (issue.code === "invalid_type") {
    if (issue.received === "undefined") return "is required";
    return `must be ${issue.expected.replace(/ \| /g, " or ")}, not ${issue.received}`;
  }
  if (issue.code === "invalid_union") return "has an unexpected form";
  if (issue.code === "invalid_enum_value") return `must be one of ${issue.options.join(", ")}`;
  return issue.message.toLowerCase();
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
const scalar = z.union([z.string(), z.number(), z.boolean()]);
const stringOrList = z.union([z.string(), z.array(z.string())]);
const stringList = z.array(z.union([z.string(), z.number()]).transform(String));
const mapOrList = z.union([z.record(scalar.nullable()), z.array(z.union([z.string(), z.number()]).transform(String))]);
const duration = z.union([z.string(), z.number()]);
const bytes = z.union([z.string(), z.number()]);

/** `KEY=VALUE` lists and mappings as one mapping (`null` entries kept as null: unset). */
export function toMap(value: z.infer<typeof mapOrList>, sep = "="): Record<string, string | null> {
  if (!Array.isArray(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, v === null ? null : String(v)]));
  }
  const out: Record<string, string | null> = {};
  for (const entry of value) {
    const at = entry.indexOf(sep);
    if (at < 0) out[entry] = null;
    else out[entry.slice(0, at)] = entry.slice(at + 1);
  }
  return out;
}

const definedValues = (m: Record<string, string | null>): Record<string, string> =>
  Object.fromEntries(Object.entries(m).filter((e): e is [string, string] => e[1] !== null));

function toArgv(value: string | string[]): string[] {
  return typeof value === "string" ? splitCommand(value) : value;
}

function durationMs(c: Collector, value: string | number | undefined, path: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === undefined) c.fail(path, `invalid duration "${value}" (examples: 10s, 1m30s, 500ms)`);
  return ms;
}

function byteSize(c: Collector, value: string | number | undefined, path: string): number | undefined {
  if (value === undefined) return undefined;
  const n = parseBytes(value);
  if (n === undefined) c.fail(path, `invalid size "${value}" (examples: 512m, 1g, 1048576)`);
  return n;
}

// ---- bounds ---------------------------------------------------------------

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
  if (path.length === 3) return serviceValueLimits[key] ?? inputLimits.value;
  if (path.length === 4) return serviceListLimits[key] ?? inputLimits.value;
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

// ---- ports ----------------------------------------------------------------

/** A short port entry is at most this long: `[ffff:...:ffff]:65535-65535:65535-65535/sctp` fits. */
const maxPortText = 64;
const portNumber = /^\d{1,5}(?:-\d{1,5})?$/;

function range(text: string): [number, number] {
  const [a, b] = text.split("-").map(Number);
  return [a!, b ?? a!];
}

/**
 * The parts of a short port entry, `[IP:][PUBLISHED]:TARGET[/PROTOCOL]`, read
 * from the right by position (no regular expression that could backtrack):
 * the target after the last colon, the published port after the one before,
 * and the address is what is left (`[::1]`, `127.0.0.1`, `fe80::1`).
 */
function portParts(text: string): { ip?: string; published?: string; target: string; protocol?: string } | undefined {
  const slash = text.indexOf("/");
  const protocol = slash < 0 ? undefined : text.slice(slash + 1);
  if (protocol !== undefined && !["tcp", "udp", "sctp"].includes(protocol)) return undefined;
  const body = slash < 0 ? text : text.slice(0, slash);
  const last = body.lastIndexOf(":");
  const target = body.slice(last + 1);
  if (!portNumber.test(target)) return undefined;
  if (last < 0) return { target, ...(protocol ? { protocol } : {}) };
  const head = body.slice(0, last);
  let ip: string | undefined;
  let published: string;
  if (head.startsWith("[")) {
    const close = head.indexOf("]");
    if (close < 0 || head[close + 1] !== ":") return undefined;
    ip = head.slice(1, close);
    published = head.slice(close + 2);
    if (!isIPv6(ip)) return undefined;
  } else {
    const sep = head.lastIndexOf(":");
    published = head.slice(sep + 1);
    if (sep >= 0) ip = head.slice(0, sep);
    if (ip !== undefined && isIP(ip) === 0) return undefined;
  }
  if (published !== "" && !portNumber.test(published)) return undefined;
  return { target, ...(ip ? { ip } : {}), ...(published ? { published } : {}), ...(protocol ? { protocol } : {}) };
}

/** The widest range one entry may expand to. */
const maxPortRange = 1000;

/** Short port syntax, ranges expanded: `80`, `8080:80`, `127.0.0.1:8080:80`, `127.0.0.1::80`, `9090-9091:8080-8081`, `53/udp`. */
export function parsePorts(entry: string | number, file: string, path: string): PortSpec[] {
  const text = String(entry);
  const shown = text.length > 40 ? `${text.slice(0, 40)}...` : text;
  if (text.length > maxPortText) throw new ComposeError(file, path, `invalid port "${shown}" (at most ${maxPortText} characters; examples: 80, 8080:80, 127.0.0.1:8080:80/udp)`);
  const groups = portParts(text);
  if (!groups) throw new ComposeError(file, path, `invalid port "${shown}" (examples: 80, 8080:80, 127.0.0.1:8080:80/udp)`);
  const [t0, t1] = range(groups.target);
  const pub = groups.published ? range(groups.published) : undefined;
  if (t1 < t0 || (pub && pub[1] < pub[0])) throw new ComposeError(file, path, `port range "${text}" runs backwards`);
  if (t1 - t0 >= maxPortRange) throw new ComposeError(file, path, `port range "${text}" is wider than ${maxPortRange} ports`);
  if (pub && pub[1] - pub[0] !== t1 - t0 && pub[0] !== pub[1]) {
    throw new ComposeError(file, path, `port ranges "${text}" differ in length`);
  }
  const out: PortSpec[] = [];
  for (let i = 0; i <= t1 - t0; i++) {
    const target = t0 + i;
    const published = pub ? (pub[0] === pub[1] && t1 > t0 ? undefined : pub[0] + i) : undefined;
    for (const n of [target, published]) {
      if (n !== undefined && (n < 1 || n > 65535)) throw new ComposeError(file, path, `port ${n} out of range 1-65535`);
    }
    const port: PortSpec = { target, protocol: (groups.protocol as PortSpec["protocol"]) ?? "tcp" };
    if (published !== undefined) port.published = published;
    if (groups.ip) port.host_ip = groups.ip.replace(/^\[|\]$/g, "");
    out.push(port);
  }
  return out;
}

/** Kept for callers that parse one short entry. */
export const parsePort = (entry: string | number, file: string, path: string): PortSpec => parsePorts(entry, file, path)[0]!;

const longPort = z
  .object({
    target: z.union([z.number(), z.string()]).transform(Number),
    published: z.union([z.number(), z.string()]).optional(),
    host_ip: z.string().optional(),
    protocol: z.enum(["tcp", "udp", "sctp"]).optional(),
    mode: z.enum(["ingress", "host"]).optional(),
    name: z.string().optional(),
    app_protocol: z.string().optional(),
  })
  .strict();

function ports(c: Collector, value: unknown, path: string): PortSpec[] {
  const list = c.check(z.array(z.unknown()), value, path) ?? [];
  const out: PortSpec[] = [];
  list.forEach((entry, i) => {
    const at = `${path}.${i}`;
    if (typeof entry === "string" || typeof entry === "number") {
      try {
        out.push(...parsePorts(entry, c.fileOf(path), at));
      } catch (e) {
        if (e instanceof ComposeError) c.issues.push(...e.issues);
        else throw e;
      }
      return;
    }
    const p = c.check(longPort, entry, at);
    if (!p) return;
    const port: PortSpec = { target: p.target, protocol: p.protocol ?? "tcp" };
    if (p.published !== undefined) {
      const published = Number(p.published);
      if (!Number.isInteger(published)) return c.fail(`${at}.published`, `invalid port "${p.published}"`);
      port.published = published;
    }
    if (p.host_ip) port.host_ip = p.host_ip;
    if (p.mode) port.mode = p.mode;
    out.push(port);
  });
  const seen = new Set<string>();
  return out.filter((p) => {
    const key = `${p.host_ip ?? ""}:${p.published ?? ""}:${p.target}/${p.protocol}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

// ---- volumes --------------------------------------------------------------

const longVolume = z
  .object({
    type: z.enum(["bind", "volume", "tmpfs"]),
    source: z.string().optional(),
    target: z.string(),
    read_only: z.boolean().optional(),
    consistency: z.string().optional(),
    bind: z.object({ propagation: z.string().optional(), create_host_path: z.boolean().optional(), selinux: z.string().optional() }).strict().optional(),
    volume: z.object({ nocopy: z.boolean().optional() }).strict().optional(),
    tmpfs: z.object({ size: bytes.optional(), mode: z.number().optional() }).strict().optional(),
  })
  .strict();

const isPath = (s: string) => s.startsWith("/") || s.startsWith(".") || s.startsWith("~");

function volumeMounts(c: Collector, value: unknown, path: string): VolumeMount[] {
  const list = c.check(z.array(z.unknown()), value, path) ?? [];
  const out: VolumeMount[] = [];
  list.forEach((entry, i) => {
    const at = `${path}.${i}`;
    if (typeof entry === "string") {
      const parts = entry.split(":");
      if (parts.length > 3 || parts.some((p) => p === "")) return c.fail(at, `invalid volume "${entry}" (examples: data:/var/lib/data, ./site:/www:ro)`);
      const [first, second, mode] = parts as [string, string | undefined, string | undefined];
      if (second === undefined) {
        out.push({ type: "volume", target: first, volume: {} });
        return;
      }
      const modes = (mode ?? "").split(",").filter(Boolean);
      for (const m of modes) if (!["ro", "rw", "z", "Z", "cached", "delegated", "consistent", "nocopy"].includes(m)) return c.fail(at, `unknown volume mode "${m}"`);
      const mount: VolumeMount = isPath(first) ? { type: "bind", source: first, target: second } : { type: "volume", source: first, target: second };
      if (modes.includes("ro")) mount.read_only = true;
      if (mount.type === "bind") mount.bind = {};
      else mount.volume = modes.includes("nocopy") ? { nocopy: true } : {};
      out.push(mount);
      return;
    }
    const v = c.check(longVolume, entry, at);
    if (!v) return;
    const mount: VolumeMount = { type: v.type, target: v.target };
    if (v.source !== undefined) mount.source = v.source;
    if (v.read_only !== undefined) mount.read_only = v.read_only;
    if (v.consistency !== undefined) mount.consistency = v.consistency;
    if (v.bind) mount.bind = { ...(v.bind.propagation ? { propagation: v.bind.propagation } : {}), ...(v.bind.create_host_path !== undefined ? { create_host_path: v.bind.create_host_path } : {}) };
    if (v.volume) mount.volume = v.volume;
    if (v.tmpfs) {
      const size = byteSize(c, v.tmpfs.size, `${at}.tmpfs.size`);
      mount.tmpfs = { ...(size !== undefined ? { size } : {}), ...(v.tmpfs.mode !== undefined ? { mode: v.tmpfs.mode } : {}) };
    }
    if (v.type !== "tmpfs" && !v.source && v.type === "bind") return c.fail(`${at}.source`, "is required for a bind mount");
    out.push(mount);
  });
  return out;
}

// ---- secrets --------------------------------------------------------------

const octal = z.union([z.number(), z.string()]);
const longSecret = z
  .object({ source: z.string(), target: z.string().optional(), uid: scalar.optional(), gid: scalar.optional(), mode: octal.optional() })
  .strict();

/** A YAML `0440` reads as octal 288 in YAML 1.1, or as decimal 440 in YAML 1.2: accept both, as Compose does. */
function fileMode(c: Collector, value: number | string | undefined, path: string): number | undefined {
  if (value === undefined) return undefined;
  const text = typeof value === "number" ? value.toString(10) : value;
  if (typeof value === "number" && !/[89]/.test(text) && value > 7 && value <= 777) return parseInt(text, 8);
  if (typeof value === "number") return value;
  if (/^0?[0-7]{1,4}$/.test(text)) return parseInt(text, 8);
  c.fail(path, `invalid file mode "${value}" (example: 0440)`);
  return undefined;
}

function secretMounts(c: Collector, value: unknown, path: string): SecretMount[] {
  const list = c.check(z.array(z.unknown()), value, path) ?? [];
  const out: SecretMount[] = [];
  list.forEach((entry, i) => {
    const at = `${path}.${i}`;
    if (typeof entry === "string") return void out.push({ source: entry });
    const s = c.check(longSecret, entry, at);
    if (!s) return;
    const mount: SecretMount = { source: s.source };
    if (s.target) mount.target = s.target;
    for (const k of ["uid", "gid"] as const) {
      if (s[k] === undefined) continue;
      if (!/^\d+$/.test(String(s[k]))) c.fail(`${at}.${k}`, `must be a number, not "${s[k]}"`);
      else mount[k] = String(s[k]);
    }
    const mode = fileMode(c, s.mode, `${at}.mode`);
    if (mode !== undefined) mount.mode = mode;
    out.push(mount);
  });
  return out;
}

// ---- healthcheck, deploy ----------------------------------------------------

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

function healthcheck(c: Collector, value: unknown, path: string): Healthcheck | undefined {
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

const cpus = z.union([z.number(), z.string()]).transform(Number);
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

function deploy(c: Collector, value: unknown, path: string): DeploySpec | undefined {
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

// ---- services -------------------------------------------------------------

const restartPattern = /^(no|always|unless-stopped|on-failure(:\d+)?)$/;
const dependsOn = z.union([
  z.array(z.string()),
  z.record(
    z
      .object({
        condition: z.enum(["service_started", "service_healthy", "service_completed_successfully"]).default("service_started"),
        required: z.boolean().default(true),
        restart: z.boolean().optional(),
      })
      .strict(),
  ),
]);
const ulimits = z.record(z.union([z.number().int(), z.object({ soft: z.number().int(), hard: z.number().int() }).strict()]));
const logging = z.object({ driver: z.string().optional(), options: z.record(scalar.nullable()).optional() }).strict();
const serviceNetworks = z.union([z.array(z.string()), z.record(z.union([z.null(), z.object({ aliases: z.array(z.string()).optional() }).strict()]))]);

/** What to do with each service key: validate, normalize, set on the spec. */
type KeyHandler = (c: Collector, spec: Partial<ServiceSpec>, value: unknown, path: string) => void;

const str = (key: keyof ServiceSpec): KeyHandler => (c, spec, value, path) => {
  const v = c.check(z.union([z.string(), z.number()]).transform(String), value, path);
  if (v !== undefined) (spec as Record<string, unknown>)[key] = v;
};
const bool = (key: keyof ServiceSpec): KeyHandler => (c, spec, value, path) => {
  const v = c.check(z.boolean(), value, path);
  if (v !== undefined) (spec as Record<string, unknown>)[key] = v;
};
const list = (key: keyof ServiceSpec, single = false): KeyHandler => (c, spec, value, path) => {
  const v = c.check(single ? z.union([z.string().transform((s) => [s]), stringList]) : stringList, value, path);
  if (v !== undefined) (spec as Record<string, unknown>)[key] = v;
};
const argv = (key: "command" | "entrypoint"): KeyHandler => (c, spec, value, path) => {
  const v = c.check(stringOrList, value, path);
  if (v === undefined) return;
  try {
    spec[key] = toArgv(v);
  } catch (e) {
    c.fail(path, (e as Error).message);
  }
};
const map = (key: "environment" | "labels" | "sysctls"): KeyHandler => (c, spec, value, path) => {
  const v = c.check(mapOrList, value, path);
  if (v === undefined) return;
  // an environment entry without a value takes the CLI's environment (resolved before the API) or stays unset;
  // a label without a value is an empty label
  const m = toMap(v);
  spec[key] = key === "environment" ? definedValues(m) : Object.fromEntries(Object.entries(m).map(([k, x]) => [k, x ?? ""]));
};

const serviceKeys: Record<string, KeyHandler> = {
  image: str("image"),
  build: (c, spec, value, path) => {
    const v = c.check(z.union([z.string().transform((context) => ({ context })), z.record(z.unknown())]), value, path);
    if (v) spec.build = v;
  },
  command: argv("command"),
  entrypoint: argv("entrypoint"),
  environment: map("environment"),
  labels: map("labels"),
  sysctls: map("sysctls"),
  ports: (c, spec, value, path) => void (spec.ports = ports(c, value, path)),
  expose: list("expose"),
  volumes: (c, spec, value, path) => void (spec.volumes = volumeMounts(c, value, path)),
  secrets: (c, spec, value, path) => void (spec.secrets = secretMounts(c, value, path)),
  cap_add: list("cap_add"),
  cap_drop: list("cap_drop"),
  user: str("user"),
  group_add: list("group_add"),
  working_dir: str("working_dir"),
  healthcheck: (c, spec, value, path) => {
    const h = healthcheck(c, value, path);
    if (h) spec.healthcheck = h;
  },
  restart: (c, spec, value, path) => {
    const v = c.check(z.string(), value, path);
    if (v === undefined) return;
    if (!restartPattern.test(v)) return c.fail(path, `must be one of no, always, on-failure[:N], unless-stopped`);
    spec.restart = v;
  },
  stop_signal: str("stop_signal"),
  stop_grace_period: (c, spec, value, path) => {
    const ms = durationMs(c, c.check(duration, value, path), path);
    if (ms !== undefined) spec.stop_grace_period = ms;
  },
  read_only: bool("read_only"),
  tmpfs: list("tmpfs", true),
  ulimits: (c, spec, value, path) => {
    const v = c.check(ulimits, value, path);
    if (v) spec.ulimits = v;
  },
  mem_limit: (c, spec, value, path) => {
    const n = byteSize(c, c.check(bytes, value, path), path);
    if (n !== undefined) spec.mem_limit = n;
  },
  shm_size: (c, spec, value, path) => {
    const n = byteSize(c, c.check(bytes, value, path), path);
    if (n !== undefined) spec.shm_size = n;
  },
  cpus: (c, spec, value, path) => {
    const n = c.check(cpus.pipe(z.number().min(0)), value, path);
    if (n !== undefined) spec.cpus = n;
  },
  init: bool("init"),
  hostname: str("hostname"),
  dns: list("dns", true),
  extra_hosts: (c, spec, value, path) => {
    const v = c.check(z.union([z.record(z.string()), z.array(z.string())]), value, path);
    if (v === undefined) return;
    const pairs = Array.isArray(v) ? v.map((e) => e.replace(/^([^:=]+)[:=]/, "$1=")) : Object.entries(v).map(([h, ip]) => `${h}=${ip}`);
    const bad = pairs.find((p) => !/^[^=]+=.+$/.test(p));
    if (bad) return c.fail(path, `invalid host entry "${bad}" (example: somehost:162.242.195.82)`);
    spec.extra_hosts = pairs;
  },
  logging: (c, spec, value, path) => {
    const v = c.check(logging, value, path);
    if (v) spec.logging = { ...(v.driver ? { driver: v.driver } : {}), ...(v.options ? { options: definedValues(toMap(v.options)) } : {}) };
  },
  depends_on: (c, spec, value, path) => {
    const v = c.check(dependsOn, value, path);
    if (v === undefined) return;
    spec.depends_on = Array.isArray(v)
      ? Object.fromEntries(v.map((s) => [s, { condition: "service_started" as const, required: true }]))
      : Object.fromEntries(Object.entries(v).map(([s, d]) => [s, { condition: d.condition, required: d.required }]));
  },
  scale: (c, spec, value, path) => {
    const v = c.check(z.number().int().min(0), value, path);
    if (v !== undefined) spec.scale = v;
  },
  deploy: (c, spec, value, path) => {
    const d = deploy(c, value, path);
    if (d) spec.deploy = d;
  },
  retain_ip: bool("retain_ip"),
  privileged: bool("privileged"),
  network_mode: str("network_mode"),
  pid: str("pid"),
  ipc: str("ipc"),
  networks: (c, _spec, value, path) => {
    const v = c.check(serviceNetworks, value, path);
    if (v === undefined) return;
    const names = Array.isArray(v) ? v : Object.keys(v);
    for (const n of names) if (n !== "default") c.unknown(`${path}.${n}`, "a stack has one network, default");
    if (!Array.isArray(v)) {
      const aliases = (v.default as { aliases?: string[] } | null | undefined)?.aliases;
      if (aliases && aliases.length > 0) c.unknown(`${path}.default.aliases`, "services are reached by their name");
    }
  },
};

/** The io.corral.* labels a user may set on purpose (scheduled jobs); every other one is corral's own, on every label source. */
const userCorralLabels: ReadonlySet<string> = new Set(Object.values(cronLabels));

/**
 * io.corral.* labels are corral's own, except the scheduled jobs' and, on a
 * service's own labels (`scheduling`), the scheduler's (io.corral.scheduler.*):
 * those only steer where the control plane places containers, which the
 * user may choose; nothing on a host reads them.
 */
function reservedLabels(c: Collector, labels: Record<string, string> | undefined, path: string, scheduling = false) {
  for (const key of Object.keys(labels ?? {})) {
    if (key.toLowerCase().startsWith("io.corral.") && !userCorralLabels.has(key) && !(scheduling && isSchedulingLabel(key))) {
      c.fail(`${path}.${key}`, `the io.corral. prefix is reserved for corral (a user may set ${[...userCorralLabels].join(" and ")}${scheduling ? ", and io.corral.scheduler.* on a service" : ""})`);
    }
  }
}

/**
 * A service's placement, as the scheduler reads it (scheduling labels,
 * deploy.placement, deploy.mode): each bad rule refused at its key. A
 * global service's ports need their host port: it has no slots to give
 * each container its own from the range.
 */
function placementProblems(c: Collector, name: string, spec: ServiceSpec, base: string) {
  const rules = placementRules(spec, { stack: "stack", service: name });
  if ("problems" in rules) {
    for (const problem of rules.problems) {
      const at = problem.indexOf(": ");
      const key = problem.slice(0, at).replace(/\[(\d+)\]/g, ".$1");
      // a constraint or preference corral cannot read is one it does not support (a lenient parse goes on); a bad label is an error
      if (key.startsWith("deploy.placement.")) c.unknown(`${base}.${key}`, problem.slice(at + 2));
      else c.fail(`${base}.${key}`, problem.slice(at + 2));
    }
    return;
  }
  if (rules.global) {
    const index = spec.ports.findIndex((p) => perContainerPorts(spec).includes(p));
    if (index >= 0) c.fail(`${base}.ports.${index}`, `a global service's port needs a host port (write "8080:${spec.ports[index]!.target}"): it runs one container per host`);
  }
}


function normalizeService(c: Collector, name: string, raw: unknown): ServiceSpec | undefined {
  const base = `services.${name}`;
  if (!isRecord(raw)) {
    c.fail(base, "must be a mapping");
    return undefined;
  }
  const spec: Partial<ServiceSpec> = {};
  const extensions: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (key.startsWith("x-")) {
      extensions[key] = value;
      continue;
    }
    const handler = serviceKeys[key];
    if (!handler) {
      c.unknown(`${base}.${key}`);
      continue;
    }
    if (value === null && key !== "image") continue; // `key:` with nothing is as good as absent
    handler(c, spec, value, `${base}.${key}`);
  }
  if (spec.image === undefined && spec.build === undefined) c.fail(`${base}.image`, "is required");
  reservedLabels(c, spec.labels, `${base}.labels`, true);
  reservedLabels(c, spec.deploy?.labels, `${base}.deploy.labels`);
  const scale = spec.deploy?.replicas ?? spec.scale ?? 1;
  if (spec.deploy?.replicas !== undefined && spec.scale !== undefined && spec.deploy.replicas !== spec.scale) {
    c.fail(`${base}.scale`, `scale (${spec.scale}) and deploy.replicas (${spec.deploy.replicas}) disagree`);
  }
  const out: ServiceSpec = {
    ...spec,
    image: spec.image ?? "",
    environment: spec.environment ?? {},
    labels: spec.labels ?? {},
    ports: spec.ports ?? [],
    cap_add: spec.cap_add ?? [],
    cap_drop: spec.cap_drop ?? [],
    scale,
  };
  if (Object.keys(extensions).length > 0) out.extensions = extensions;
  placementProblems(c, name, out, base);
  return out;
}

// ---- top level --------------------------------------------------------------

const externalFlag = z.union([z.boolean(), z.object({ name: z.string() }).strict()]);
const rawVolume = z
  .object({ name: z.string().optional(), driver: z.string().optional(), driver_opts: z.record(scalar).optional(), external: externalFlag.optional(), labels: mapOrList.optional() })
  .strict();
const rawSecret = z
  .object({ name: z.string().optional(), file: z.string().optional(), external: externalFlag.optional(), environment: z.string().optional(), labels: mapOrList.optional() })
  .strict();

function topVolumes(c: Collector, value: unknown): Record<string, VolumeSpec> {
  const out: Record<string, VolumeSpec> = {};
  const entries = c.check(z.record(z.unknown()), value ?? {}, "volumes") ?? {};
  for (const [name, raw] of Object.entries(entries)) {
    const path = `volumes.${name}`;
    const v = c.check(rawVolume, raw === null ? {} : withoutExtensions(raw), path);
    if (!v) continue;
    const spec: VolumeSpec = { ...extensionsOf(raw) };
    if (v.name) spec.name = v.name;
    if (v.driver) spec.driver = v.driver;
    if (v.driver_opts) spec.driver_opts = Object.fromEntries(Object.entries(v.driver_opts).map(([k, x]) => [k, String(x)]));
    if (v.external) {
      spec.external = true;
      if (typeof v.external === "object") spec.name = v.external.name;
    }
    if (v.labels) spec.labels = definedValues(toMap(v.labels));
    reservedLabels(c, spec.labels, `${path}.labels`);
    out[name] = spec;
  }
  return out;
}

function topSecrets(c: Collector, value: unknown): Record<string, SecretSpec> {
  const out: Record<string, SecretSpec> = {};
  const entries = c.check(z.record(z.unknown()), value ?? {}, "secrets") ?? {};
  for (const [name, raw] of Object.entries(entries)) {
    const path = `secrets.${name}`;
    const s = c.check(rawSecret, raw === null ? {} : withoutExtensions(raw), path);
    if (!s) continue;
    if (s.labels) c.unknown(`${path}.labels`);
    const spec: SecretSpec = { ...extensionsOf(raw) };
    if (s.name) spec.name = s.name;
    if (s.file) spec.file = s.file;
    if (s.environment) spec.environment = s.environment;
    if (s.external) {
      spec.external = true;
      if (typeof s.external === "object") spec.name = s.external.name;
    }
    if (!spec.file && !spec.external && !spec.environment) c.fail(path, "needs file:, environment: or external: true");
    out[name] = spec;
  }
  return out;
}

function extensionsOf(value: unknown): { extensions?: Record<string, unknown> } {
  const ext = isRecord(value) ? Object.fromEntries(Object.entries(value).filter(([k]) => k.startsWith("x-"))) : {};
  return Object.keys(ext).length > 0 ? { extensions: ext } : {};
}

function withoutExtensions(value: unknown): unknown {
  return isRecord(value) ? Object.fromEntries(Object.entries(value).filter(([k]) => !k.startsWith("x-"))) : value;
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
  if (isRecord(doc.networks)) {
    for (const [name, raw] of Object.entries(doc.networks)) {
      if (name !== "default") c.unknown(`networks.${name}`, "a stack has one network, default");
      else if (raw !== null && !(isRecord(raw) && Object.keys(raw).length === 0)) c.unknown(`networks.default.${Object.keys(raw as object)[0] ?? ""}`);
    }
  }
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
