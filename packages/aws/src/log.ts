import type { Logger } from "@corral/core";

/** One JSON object a line on stdout, which Lambda sends to CloudWatch Logs: `{ level, message, ...fields }` (a field named like those two gets a `_`). */
export function jsonLogger(write: (line: string) => void = (l) => void process.stdout.write(l)): Logger {
  const line = (level: string) => (message: string, fields: Record<string, unknown> = {}) => {
    const rest = Object.fromEntries(Object.entries(fields).map(([k, v]) => [k === "level" || k === "message" ? `${k}_` : k, v]));
    write(`${JSON.stringify({ level, message, ...rest })}\n`);
  };
  return { info: line("info"), warn: line("warn"), error: line("error") };
}
