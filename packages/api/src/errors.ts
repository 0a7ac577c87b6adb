import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ZodError } from "zod";
import { ComposeError, DomainError, type Logger } from "@corral/core";
import { SubnetPoolExhaustedError, UntrustedCommitError, VersionConflictError } from "@corral/store";

/** Every error answers as JSON `{ error, message, path? }`. */
export function errorBody(error: string, message: string, path?: string) {
  return { error, message, ...(path ? { path } : {}) };
}

/**
 * The store is out of space: the embedded server's data folder is full
 * (dynalite answers its LevelDB's ENOSPC as DynamoDB's 500, see
 * @corral/local's dynalite-safe). Nothing of the request was written.
 */
export function storageFull(err: Error): boolean {
  return err.name === "InternalServerError" && /No space left on device|ENOSPC/.test(err.message);
}

export const onError = (log?: Logger) =>
  function onError(err: Error, c: Context) {
    const json = (status: ContentfulStatusCode, error: string, message: string, path?: string) => c.json(errorBody(error, message, path), status);
    if (err instanceof ComposeError) {
      return c.json({ ...errorBody("invalid_compose", err.message, err.path), issues: err.issues }, 400);
    }
    if (err instanceof ZodError) {
      const issue = err.issues[0];
      const path = issue?.path.join(".") ?? "";
      return json(400, "invalid_request", `${path ? `${path}: ` : ""}${issue?.message ?? "invalid request"}`, path);
    }
    if (err instanceof DomainError) {
      const status = err.code === "conflict" ? 409 : err.code === "not_found" ? 404 : 400;
      if (err.retryAfterS !== undefined) c.header("retry-after", String(err.retryAfterS));
      return json(status, err.code, err.message, err.path);
    }
    if (err instanceof VersionConflictError) return json(409, "conflict", `${err.message}; try again`);
    if (err instanceof SubnetPoolExhaustedError) return json(503, "pool_exhausted", err.message);
    if (err instanceof UntrustedCommitError) {
      log?.error("untrusted commit", { stack: err.stackName, version: err.version });
      return json(500, "untrusted_commit", err.message);
    }
    if (err instanceof HTTPException) {
      const error = err.status === 401 ? "unauthorized" : err.status === 403 ? "forbidden" : err.status === 429 ? "too_many_requests" : "error";
      if (err.status === 429) c.header("retry-after", String("retryAfterS" in err && typeof err.retryAfterS === "number" ? err.retryAfterS : 1));
      return json(err.status as ContentfulStatusCode, error, err.message);
    }
    if (storageFull(err)) {
      log?.error("the data folder is full", { error: err.message });
      return json(507, "storage_full", "the control plane's data folder is full: free space there and try again (nothing of this request was written)");
    }
    log?.error("unhandled", { error: String(err), stack: err.stack });
    return json(500, "internal", "internal error");
  };
