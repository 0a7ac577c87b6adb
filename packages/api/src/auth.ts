import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";

export interface Principal {
  name: string;
  admin: boolean;
  /** A user's groups; the first is the primary group, the one new stacks and secrets belong to. */
  groups: string[];
  /** Set when the caller is a host agent using its own token. */
  hostId?: string;
  /** A stable, non-secret key for this caller (scopes idempotency keys). */
  scope: string;
}

export const hashToken = (token: string) => createHash("sha256").update(token).digest("hex");

export const sameHash = (a: string, b: string) => {
  const x = Buffer.from(a, "hex");
  const y = Buffer.from(b, "hex");
  return x.length === y.length && timingSafeEqual(x, y);
};

/** Host tokens read `host.ID.RANDOM`, user tokens `user.NAME.RANDOM`: the middle says which stored hash to compare with. */
export const hostTokenPattern = /^host\.([a-zA-Z0-9][a-zA-Z0-9_-]{0,62})\.[A-Za-z0-9_-]+$/;
export const userTokenPattern = /^user\.([a-z][a-z0-9_-]{0,31})\.[A-Za-z0-9_-]+$/;

export interface AuthOptions {
  adminToken: string;
  /** The hash of a host's token; it may be remembered: on a mismatch it is asked again with `fresh`. */
  hostTokenHash: (hostId: string, fresh?: boolean) => Promise<string | undefined>;
  user: (name: string) => Promise<{ tokenHash: string; groups: string[] } | undefined>;
}

/** Owners see what they own, members what their groups own, the admin everything. */
export const canSee = (p: Principal, owner: string | undefined, group: string | undefined) =>
  p.admin || (owner !== undefined && owner === p.name) || (group !== undefined && p.groups.includes(group));

export const primaryGroup = (p: Principal) => p.groups[0] ?? p.name;

/** The token of an `Authorization: Bearer TOKEN` header, or undefined. */
export const bearerToken = (header: string | undefined) => /^Bearer\s+(\S+)$/i.exec(header ?? "")?.[1];

/** Bearer-token authentication; the principal lands in `c.get("principal")`. */
export const bearerAuth = ({ adminToken, hostTokenHash, user }: AuthOptions): MiddlewareHandler<{ Variables: { principal: Principal } }> => {
  const adminHash = hashToken(adminToken);
  return async function bearerAuth(c, next) {
    const token = bearerToken(c.req.header("authorization"));
    if (!token) throw new HTTPException(401, { message: "a bearer token is required (set CORRAL_TOKEN)" });
    const given = hashToken(token);
    if (sameHash(given, adminHash)) {
      c.set("principal", { name: "admin", admin: true, groups: [], scope: given.slice(0, 16) });
      return next();
    }
    const userName = userTokenPattern.exec(token)?.[1];
    const found = userName ? await user(userName) : undefined;
    if (userName && found && sameHash(given, found.tokenHash)) {
      c.set("principal", { name: userName, admin: false, groups: found.groups, scope: given.slice(0, 16) });
      return next();
    }
    const hostId = hostTokenPattern.exec(token)?.[1];
    const matches = (stored: string | undefined) => stored !== undefined && sameHash(given, stored);
    // a hash that does not match may be one remembered from before a registration elsewhere: the stored one decides
    // (no hash at all was read just now: an unknown host is never remembered)
    const stored = hostId ? await hostTokenHash(hostId) : undefined;
    if (hostId && (matches(stored) || (stored !== undefined && matches(await hostTokenHash(hostId, true))))) {
      c.set("principal", { name: `host:${hostId}`, admin: false, groups: [], hostId, scope: given.slice(0, 16) });
      return next();
    }
    throw new HTTPException(401, { message: "invalid token" });
  };
};

/** Only the admin (until users and groups arrive) may use this route. */
export const adminOnly = (): MiddlewareHandler<{ Variables: { principal: Principal } }> =>
  async function adminOnly(c, next) {
    if (!c.get("principal").admin) throw new HTTPException(403, { message: "this route is for the admin" });
    await next();
  };
