/** What every adapter logs through. Fields never carry secret values. */
export interface Logger {
  /** The routine a user does not want to read at the default level (heartbeats, polls); optional for adapters. */
  debug?(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  /** Something an operator should fix, that corral works around (else said with error). */
  warn?(message: string, fields?: Record<string, unknown>): void;
}

export const silentLogger: Logger = { info() {}, error() {} };

export type LogLevel = "debug" | "info" | "warn" | "error";
export const logLevels: readonly LogLevel[] = ["debug", "info", "warn", "error"];

/**
 * A line logger: `TIME level message key=value ...`, each line handed to
 * `write`. Lines below `level` are dropped: info (the default) is what a user
 * wants to read, debug adds the routine (agent heartbeats, each chunk of a session).
 */
export function lineLogger(level: LogLevel, write: (line: string) => void): Logger {
  const rank = logLevels.indexOf(level);
  const line = (at: LogLevel, message: string, fields?: Record<string, unknown>) => {
    if (logLevels.indexOf(at) < rank) return;
    const rest = Object.entries(fields ?? {})
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
      .join(" ");
    write(`${new Date().toISOString()} ${at} ${message}${rest ? ` ${rest}` : ""}\n`);
  };
  return { debug: (m, f) => line("debug", m, f), info: (m, f) => line("info", m, f), warn: (m, f) => line("warn", m, f), error: (m, f) => line("error", m, f) };
}
