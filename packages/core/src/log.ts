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
