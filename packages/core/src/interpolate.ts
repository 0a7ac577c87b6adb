import { ComposeError } from "./compose.js";

export type Lookup = (name: string) => string | undefined;

const namePattern = /^[_a-zA-Z][_a-zA-Z0-9]*/;

/**
 * Compose interpolation of one string: `$VAR`, `${VAR}`, `${VAR:-default}`,
 * `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`,
 * `${VAR+alt}`, and `$$` for a literal `$`. Defaults nest.
 */
export function interpolateString(text: string, lookup: Lookup, file: string, path: string): string {
  let out = "";
  let i = 0;
  const fail = (reason: string): never => {
    throw new ComposeError(file, path, reason);
  };
  while (i < text.length) {
    const ch = text[i]!;
    if (ch !== "$") {
      out += ch;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === "$") {
      out += "$";
      i += 2;
      continue;
    }
    if (next === "{") {
      // find the matching brace (defaults may hold nested ${...})
      let depth = 1;
      let j = i + 2;
      for (; j < text.length && depth > 0; j++) {
        if (text[j] === "{" && text[j - 1] === "$") depth++;
        else if (text[j] === "}") depth--;
      }
      if (depth !== 0) fail(`invalid interpolation format for "${text}": unterminated \${`);
      const body = text.slice(i + 2, j - 1);
      const name = namePattern.exec(body)?.[0];
      if (!name) fail(`invalid interpolation format for "${text}": "\${${body}}" needs a variable name`);
      const rest = body.slice(name!.length);
      const value = lookup(name!);
      const op = /^(:?[-?+])/.exec(rest)?.[1];
      if (!op) {
        if (rest !== "") fail(`invalid interpolation format for "${text}": unexpected "${rest}"`);
        out += value ?? "";
      } else {
        const arg = rest.slice(op.length);
        const unsetOrEmpty = value === undefined || (op.startsWith(":") && value === "");
        const inner = () => interpolateString(arg, lookup, file, path);
        switch (op.replace(":", "")) {
          case "-":
            out += unsetOrEmpty ? inner() : value!;
            break;
          case "?":
            if (unsetOrEmpty) fail(`required variable ${name} is missing a value${arg ? `: ${inner()}` : ""}`);
            out += value!;
            break;
          case "+":
            out += unsetOrEmpty ? "" : inner();
            break;
        }
      }
      i = j;
      continue;
    }
    const name = namePattern.exec(text.slice(i + 1))?.[0];
    if (!name) fail(`invalid interpolation format for "${text}": a lone "$" (write "$$" for a literal "$")`);
    out += lookup(name!) ?? "";
    i += 1 + name!.length;
  }
  return out;
}

/** Interpolate every string value of a YAML document (keys are left alone). */
export function interpolate(doc: unknown, lookup: Lookup, file: string, path = ""): unknown {
  if (typeof doc === "string") return interpolateString(doc, lookup, file, path);
  if (Array.isArray(doc)) return doc.map((v, i) => interpolate(v, lookup, file, path ? `${path}.${i}` : String(i)));
  if (doc && typeof doc === "object") {
    return Object.fromEntries(Object.entries(doc).map(([k, v]) => [k, interpolate(v, lookup, file, path ? `${path}.${k}` : k)]));
  }
  return doc;
}
