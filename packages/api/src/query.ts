import type { MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import { validator } from "hono/validator";
import { z, type ZodError } from "zod";
import { invalid, stackNamePattern } from "@corral/core";

/** The longest a long-poll holds a request (`wait=S`). */
export const MAX_WAIT_SECONDS = 30;

/** Each query parameter is a short string: longer ones are refused before any parsing. */
const MAX_PARAM = 2048;

const param = z.string().max(MAX_PARAM, `at most ${MAX_PARAM} characters`);

/** A whole number written in digits (no sign, exponent or hex), within [min, max]. */
export const intParam = (min: number, max: number) =>
  param
    .regex(min < 0 ? /^-?\d{1,15}$/ : /^\d{1,15}$/, "expected a whole number")
    .transform(Number)
    .pipe(z.number().min(min, `at least ${min}`).max(max, `at most ${max}`));

/** `wait=S`: seconds a long-poll may hold the request, 0 to MAX_WAIT_SECONDS (decimals allowed). */
export const waitParam = param
  .regex(/^\d{1,6}(\.\d{1,3})?$/, "expected seconds, such as 20 or 0.5")
  .transform(Number)
  .pipe(z.number().max(MAX_WAIT_SECONDS, `at most ${MAX_WAIT_SECONDS} seconds`))
  .default("0");

/** A non-empty string of at most `max` characters. */
export const textParam = (max: number) => z.string().min(1, "must not be empty").max(max, `at most ${max} characters`);

export const stackNameParam = param.regex(stackNamePattern, "lower-case letters, digits and '-', starting with a letter or digit");

/** `1`/`true` or `0`/`false` (an empty value is false). */
export const flagParam = z.enum(["", "0", "1", "false", "true"], { message: "expected 1, true, 0 or false" }).transform((v) => v === "1" || v === "true");

/** Epoch milliseconds or an ISO time. */
export const timeParam = param.transform((raw, ctx) => {
  const at = /^\d{1,15}$/.test(raw) ? Number(raw) : Date.parse(raw);
  if (Number.isNaN(at)) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `expected epoch milliseconds or an ISO time, got "${raw.slice(0, 40)}"` });
    return z.NEVER;
  }
  return at;
});

/** A JSON object given as a parameter (`cursor={"h1":3}`), checked against `schema`. */
export const jsonParam = <T extends z.ZodTypeAny>(schema: T) =>
  param
    .transform((raw, ctx) => {
      try {
        return JSON.parse(raw) as unknown;
      } catch {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: "expected JSON" });
        return z.NEVER;
      }
    })
    .pipe(schema);

const describe = (error: ZodError, known: string[]) => {
  const issue = error.issues.find((i) => i.code === "unrecognized_keys") ?? error.issues[0];
  if (issue?.code === "unrecognized_keys") {
    const key = issue.keys[0] ?? "";
    return invalid(`unknown query parameter "${key.slice(0, 40)}" (${known.length ? `this route takes: ${known.join(", ")}` : "this route takes none"})`, key.slice(0, 40));
  }
  const name = String(issue?.path[0] ?? "");
  const message = issue?.code === "invalid_type" && issue.received === "array" ? "given more than once" : (issue?.message ?? "invalid");
  return invalid(`query parameter ${name}: ${message}`, name);
};

/**
 * Validate a route's query string with zod: every parameter known and well
 * formed, or 400 naming the parameter; unknown ones are refused too. The
 * result is `c.req.valid("query")`.
 */
export const query = <S extends z.ZodRawShape>(shape: S) => {
  const schema = z.object(shape).strict();
  const known = Object.keys(shape);
  // typed as the strings a caller sends (the input side of the schema: `all: "1"`, `after: "12"`), for a typed client
  type Checks = MiddlewareHandler<object, string, { in: { query: z.input<typeof schema> }; out: { query: z.output<typeof schema> } }>;
  const check = validator("query", (value) => {
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw describe(parsed.error, known);
    return parsed.data as z.output<typeof schema>;
  }) as unknown as Checks; // the same middleware: hono's own type for it has each parameter `string | string[]`
  validators.add(check);
  described.set(check, { in: "query", schema });
  return check;
};

const validators = new WeakSet<object>();

/** What a validating middleware checks, for GET /openapi.json (see openapi.ts): the query of `query(...)`, the body of `body(...)`. */
export const described = new WeakMap<object, { in: "query" | "json"; schema: z.ZodTypeAny }>();

/**
 * Mounted before the routes: a route that declares no `query(...)` takes no
 * query parameters, so any given to it is refused (400 naming it) rather
 * than silently ignored.
 */
export const queryGuard = (): MiddlewareHandler =>
  async function queryGuard(c, next) {
    const given = Object.keys(c.req.queries());
    if (given.length === 0) return next();
    const declared = matchedRoutes(c).some((r) => validators.has(r.handler));
    if (!declared) {
      const key = given[0]!.slice(0, 40);
      throw invalid(`unknown query parameter "${key}" (${c.req.method} ${c.req.path} takes none)`, key);
    }
    return next();
  };
