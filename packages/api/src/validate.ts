import type { MiddlewareHandler } from "hono";
import { validator } from "hono/validator";
import { ZodObject, type z } from "zod";
import { invalid, stackNamePattern } from "@corral/core";
import { described } from "./query.js";

/**
 * Validate a route's JSON body with zod, as `query(...)` validates its query
 * string: the result is `c.req.valid("json")`. The body is read whatever its
 * content type says (hono's own json validator would skip a body not
 * labelled JSON). An empty body reads as `{}`, so its schema answers with
 * its defaults or names the key it needs; one that is not JSON, or that
 * carries a key the route does not know, is refused with 400 naming it (a
 * typo must not pass for "no options", and `stop` with a garbled body must
 * not stop the whole stack).
 */
export const body = <S extends z.ZodTypeAny>(schema: S): MiddlewareHandler<object, string, { in: { json: z.input<S> }; out: { json: z.output<S> } }> => {
  const strict = schema instanceof ZodObject ? schema.strict() : schema;
  const middleware: MiddlewareHandler<object, string, { in: { json: z.input<S> }; out: { json: z.output<S> } }> = async function body(c, next) {
    const text = await c.req.text();
    let value: unknown = {};
    if (text.trim() !== "") {
      try {
        value = JSON.parse(text);
      } catch (e) {
        throw invalid(`the request body is not JSON: ${(e as Error).message.slice(0, 200)}`, "body");
      }
    }
    c.req.addValidatedData("json", strict.parse(value) as object);
    await next();
  };
  described.set(middleware, { in: "json", schema: strict });
  return middleware;
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
export const params = <T extends Record<string, string>>(check: (given: Record<string, string>) => T) =>
  // typed as taking the path's own parameters (hono adds them from the route's path), not what `check` derives from them
  validator("param", (given: Record<string, string>) => check(given)) as unknown as MiddlewareHandler<object, string, { in: object; out: { param: T } }>;

/** `:stack` in the path, a stack's name. */
export const stackPath = () => params((p) => ({ ...p, stack: stackParam(p.stack ?? "") }));
