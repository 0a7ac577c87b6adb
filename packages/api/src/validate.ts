import type { MiddlewareHandler } from "hono";
import { validator } from "hono/validator";
import type { z } from "zod";
import { invalid, stackNamePattern } from "@corral/core";

/**
 * Validate a route's JSON body with zod, as `query(...)` validates its query
 * string: the result is `c.req.valid("json")`. The body is read whatever its
 * content type says, and one that is absent or not JSON reads as `{}`, so its
 * schema answers: its defaults, or a ZodError (400 invalid_request naming
 * the first key amiss, see onError). (hono's own json validator would skip a
 * body not labelled JSON, and answer malformed JSON in words of its own.)
 */
export const body = <S extends z.ZodTypeAny>(schema: S): MiddlewareHandler<object, string, { in: { json: z.input<S> }; out: { json: z.output<S> } }> =>
  async function body(c, next) {
    c.req.addValidatedData("json", schema.parse(await c.req.json().catch(() => ({}))) as object);
    await next();
  };

/** A stack's name as a path names it, or 400. */
export function stackParam(name: string): string {
  if (!stackNamePattern.test(name)) {
    throw invalid(`invalid stack name "${name}": lower-case letters, digits and '-', starting with a letter or digit`, "stack");
  }
  return name;
}

/**
 * Check a route's path parameters (`check` throws the 400 naming the one
 * amiss) before its body is validated: a bad name is what such a request
 * answers, whatever its body. The result is `c.req.valid("param")`.
 */
export const params = <T extends Record<string, string>>(check: (given: Record<string, string>) => T) => validator("param", (given: Record<string, string>) => check(given));

/** `:stack` in the path, a stack's name. */
export const stackPath = () => params((p) => ({ ...p, stack: stackParam(p.stack ?? "") }));
