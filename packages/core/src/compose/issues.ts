import type { z } from "zod";

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

/** Gathers every problem of one parse (and, leniently, the keys corral does not support), each at the file its path came from. */
export class Collector {
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

export const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
