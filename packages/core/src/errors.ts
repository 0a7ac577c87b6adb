/** Domain refusals. Adapters map them to HTTP statuses; nothing is written when one is thrown. */
export class DomainError extends Error {
  override name = "DomainError";
  constructor(
    readonly code: "invalid" | "conflict" | "not_found",
    message: string,
    readonly path?: string,
  ) {
    super(message);
  }
}

export const conflict = (message: string) => new DomainError("conflict", message);
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
