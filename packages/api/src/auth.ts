import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";

export interface Principal {
  name: string;
  admin: boolean;
  /** A stable, non-secret key for this caller (scopes idempotency keys). */
  scope: string;
}

export const hashToken = (token: string) => createHash("sha256").update(token).digest("hex");

/** Bearer-token authentication; the principal lands in `c.get("principal")`. */
export const bearerAuth = ({ adminToken }: { adminToken: string }): MiddlewareHandler<{ Variables: { principal: Principal } }> => {
  const adminHash = Buffer.from(hashToken(adminToken), "hex");
  return async function bearerAuth(c, next) {
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match?.[1]) throw new HTTPException(401, { message: "a bearer token is required (set CORRAL_TOKEN)" });
    const given = Buffer.from(hashToken(match[1]), "hex");
    if (!timingSafeEqual(given, adminHash)) throw new HTTPException(401, { message: "invalid token" });
    c.set("principal", { name: "admin", admin: true, scope: hashToken(match[1]).slice(0, 16) });
    await next();
  };
};
