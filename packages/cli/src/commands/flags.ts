import { Option } from "commander";
import { CliError } from "../client.js";

// Options and flag parsers several verbs share.

/** `--format`: a listing as a table (or, for hook create, text) or as JSON; the first choice is the default. */
export const formatOption = (choices: [string, ...string[]] = ["table", "json"]) => new Option("--format <format>", "output format").choices(choices).default(choices[0]);

/** A repeatable flag's values, in the order given. */
export const many = (v: string, prev: string[] = []) => [...prev, v];

export function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`${flag}: expected a positive whole number, got "${value}"`);
  return n;
}
