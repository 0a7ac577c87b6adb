import { z } from "zod";
import { splitCommand } from "../shell.js";
import { parseBytes, parseDuration } from "../units.js";
import type { Collector } from "./issues.js";

// the shapes compose values come in, and the readings shared by several keys
export const scalar = z.union([z.string(), z.number(), z.boolean()]);
export const stringOrList = z.union([z.string(), z.array(z.string())]);
export const stringList = z.array(z.union([z.string(), z.number()]).transform(String));
export const mapOrList = z.union([z.record(scalar.nullable()), z.array(z.union([z.string(), z.number()]).transform(String))]);
export const duration = z.union([z.string(), z.number()]);
export const bytes = z.union([z.string(), z.number()]);
export const cpus = z.union([z.number(), z.string()]).transform(Number);

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

export const definedValues = (m: Record<string, string | null>): Record<string, string> =>
  Object.fromEntries(Object.entries(m).filter((e): e is [string, string] => e[1] !== null));

export function toArgv(value: string | string[]): string[] {
  return typeof value === "string" ? splitCommand(value) : value;
}

export function durationMs(c: Collector, value: string | number | undefined, path: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === undefined) c.fail(path, `invalid duration "${value}" (examples: 10s, 1m30s, 500ms)`);
  return ms;
}

export function byteSize(c: Collector, value: string | number | undefined, path: string): number | undefined {
  if (value === undefined) return undefined;
  const n = parseBytes(value);
  if (n === undefined) c.fail(path, `invalid size "${value}" (examples: 512m, 1g, 1048576)`);
  return n;
}
