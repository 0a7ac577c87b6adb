/** Domain refusals. Adapters map them to HTTP statuses; nothing is written when one is thrown. */
export class DomainError extends Error {
  override name = "DomainError";
  constructor(
    readonly code: "invalid" | "conflict" | "not_found",
    message: string,
    readonly path?: string,
    /** A conflict that passes by itself (an operation in progress ends): ask again after this many seconds. */
    readonly retryAfterS?: number,
  ) {
    super(message);
  }
}

export const conflict = (message: string) => new DomainError("conflict", message);
/** The stack is busy with an operation, its own or corral's: the same command will do once it settles. */
export const busy = (message: string) => new DomainError("conflict", message, undefined, 5);
export const notFound = (message: string) => new DomainError("not_found", message);
export const invalid = (message: string, path?: string) => new DomainError("invalid", message, path);

/** Someone else appended first: reload and decide again. */
export class VersionConflictError extends Error {
  override name = "VersionConflictError";
  constructor(
    readonly stackName: string,
    readonly version: number,
  ) {
    super(`stack ${stackName} changed concurrently (version ${version} already exists)`);
  }
}
