import type { MiddlewareHandler } from "hono";
import type { Logger } from "@corral/core";

/**
 * What a user of `corral server` does not want to read at the default level: an agent's heartbeat and reconcile (every
 * 10 s) and its session traffic, and the long-polls a following command repeats.
 */
export function routine(method: string, path: string, query: URLSearchParams): boolean {
  if (/^\/v1\/hosts\/[^/]+\/(heartbeat|wanted$|sessions\/)/.test(path)) return true;
  return method === "GET" && query.has("wait");
}

/** A path as the log shows it: a webhook's URL secret (`/hooks/ID/SECRET`, for senders that cannot sign) left out. */
export const shownPath = (path: string) => path.replace(/^(\/hooks\/[^/]+)\/.+$/, "$1/(secret)");

/** An access line per answered request: method, path, status, time (paths carry names, never values); routine ones at debug. */
export const accessLog = (log: Logger): MiddlewareHandler =>
  async function accessLog(c, next) {
    const started = Date.now();
    await next();
    const url = new URL(c.req.url);
    const line = `${c.req.method} ${shownPath(url.pathname)} ${c.res.status} ${Date.now() - started}ms`;
    if (routine(c.req.method, url.pathname, url.searchParams)) log.debug?.(line);
    else log.info(line);
  };
