/**
 * What a container runtime's failures say: the engine's own words, and
 * whether a failure is the engine's absence or something it answered. The
 * errors are dockerode's (and the fake runtime's, shaped alike), read here
 * without its types.
 */

/** Docker's own words for a failure, without dockerode's "(HTTP code 404) ..." wrapping. */
export function engineMessage(e: unknown): string {
  const err = e as { json?: { message?: string } | null; message?: string; statusCode?: number };
  const fromJson = err?.json && typeof err.json === "object" ? err.json.message : undefined;
  return (fromJson ?? err?.message ?? String(e)).trim();
}

/** The HTTP status the engine answered a call with, where it answered. */
export const statusOf = (e: unknown) => (e as { statusCode?: number })?.statusCode;

/** Socket errors that say nobody answers where the engine should be, or that it hung up mid-call. */
const goneCodes = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "ECONNABORTED"]);
/** What a stopping or starting dockerd answers for a call its containerd (or its own shutdown) cut off. */
const engineGoingAway = new RegExp(
  [
    "transport is closing",
    "grpc: the client connection is closing",
    "failed to update store for object type",
    "rpc error: code = Unavailable",
    "error reading from server: EOF",
    'connection error: desc = "transport',
    "the daemon is shutting down",
    "Cannot connect to the Docker daemon",
    "socket hang up",
    // a shim (or its containerd) gone with the engine mid-call: "failed to create shim task: ttrpc: closed"
    "ttrpc: closed",
  ].join("|"),
  "i",
);

/**
 * A start refused because containerd still holds a task for the container:
 * a dockerd stopped while it started it (its first start) leaves that task,
 * with its shim, and no later start replaces it (Docker 20.10), whatever the
 * retries. Only a new container gets past it.
 */
export function staleTask(e: unknown): boolean {
  return /task [0-9a-f]{12,}: already exists/i.test(engineMessage(e));
}

/**
 * A failure of an engine that has just started again and has not let go of
 * a container's files yet (a shim of its last life still holds its root
 * filesystem's mount): the same call does once it has. Worth waiting for,
 * as for an engine away.
 */
export function engineSettling(e: unknown): boolean {
  return /device or resource busy/i.test(engineMessage(e));
}

/**
 * Whether a failure says the engine itself could not be reached (not
 * running, restarting, its socket gone) rather than anything about the
 * step: worth waiting out, since the same step will do once it is back.
 * A missing file is the engine's only when connecting to its socket.
 */
export function engineUnreachable(e: unknown): boolean {
  const err = e as { code?: unknown; syscall?: unknown } | null;
  const code = typeof err?.code === "string" ? err.code : undefined;
  if (code && goneCodes.has(code)) return true;
  if (code === "ENOENT" || code === "EACCES") return err?.syscall === "connect";
  return engineGoingAway.test(engineMessage(e));
}
