import { randomBytes } from "node:crypto";
import { Hono } from "hono";
import { z } from "zod";
import { conflict, notFound } from "@corral/core";
import type { EventStore, RegistryStore, SecretStore, UserStore, VolumeStore } from "@corral/store";
import { hashToken } from "../auth.js";
import type { Env } from "../env.js";
import { holdsCredential } from "../idempotency.js";
import { body } from "../validate.js";

const userName = z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, "lower-case letters, digits, '_' and '-', starting with a letter");
const userBody = z.object({ name: userName, groups: z.array(z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/)).default([]) });
const newUserToken = (name: string) => `user.${name}.${randomBytes(24).toString("base64url")}`;

export interface UserDeps {
  users: UserStore;
  store: Pick<EventStore, "load" | "stackNames">;
  secrets: Pick<SecretStore, "list">;
  volumes: Pick<VolumeStore, "list">;
  registries: Pick<RegistryStore, "list">;
}

/**
 * Ownership is by name (a stack's owner and group, a secret's, a volume's):
 * a new user must not inherit what a removed one left, nor join a
 * personal group. So a name that still owns something (stacks, removed
 * ones too: their history stays) is not given again, a group may not be
 * named like a user (live or removed) or the admin, and a user's own
 * group may not be one that others already hold.
 */
async function mayNameUser(deps: UserDeps, name: string, groups: string[]): Promise<void> {
  const owners = new Map<string, string[]>();
  const groupsHeld = new Map<string, string[]>();
  const note = (map: Map<string, string[]>, key: string | undefined, what: string) => key && map.set(key, [...(map.get(key) ?? []), what]);
  const states = await Promise.all((await deps.store.stackNames()).map((n) => deps.store.load(n)));
  for (const s of states) {
    note(owners, s.owner, `stack ${s.name}${s.exists ? "" : " (removed)"}`);
    if (s.group !== s.owner) note(groupsHeld, s.group, `stack ${s.name}`);
  }
  for (const x of await deps.secrets.list()) {
    note(owners, x.owner, `secret ${x.name}`);
    if (x.group !== x.owner) note(groupsHeld, x.group, `secret ${x.name}`);
  }
  for (const x of await deps.volumes.list()) {
    note(owners, x.owner, `volume ${x.name}`);
    if (x.group !== x.owner) note(groupsHeld, x.group, `volume ${x.name}`);
  }
  for (const x of await deps.registries.list()) {
    note(owners, x.owner, `a login for registry ${x.server}`);
    if (x.group !== x.owner) note(groupsHeld, x.group, `a login for registry ${x.server}`);
  }
  const users = await deps.users.list();
  for (const u of users) for (const g of u.groups) if (g !== u.name) note(groupsHeld, g, `user ${u.name}`);
  const some = (list: string[]) => `${list.slice(0, 5).join(", ")}${list.length > 5 ? `, and ${list.length - 5} more` : ""}`;
  const held = owners.get(name);
  if (held) throw conflict(`the name ${name} still owns ${some(held)}, left by a removed user: a new user ${name} would inherit them; choose another name`);
  for (const g of groups) {
    if (g === name) continue;
    const whose = g === "admin" ? "the admin" : users.some((u) => u.name === g) ? `user ${g}` : owners.has(g) ? `a removed user who still owns ${some(owners.get(g)!)}` : undefined;
    if (whose) throw conflict(`group ${g} is the name of ${whose}: a group may not be named like a user, its members would share that user's own stacks`);
  }
  if (groups.includes(name) && groupsHeld.has(name)) {
    throw conflict(`${name} is already a group (of ${some(groupsHeld.get(name)!)}): a user ${name} would join it; choose another name, or give the groups with --group`);
  }
}

/** Users (`/v1/users`, the admin's): each with a token, shown once. */
export function userRoutes(deps: UserDeps) {

  return new Hono<Env>()
    .post("/", body(userBody), async (c) => {
      const given = c.req.valid("json");
      if (given.name === "admin") throw conflict("the name admin is taken");
      const groups = given.groups.length > 0 ? given.groups : [given.name];
      await mayNameUser(deps, given.name, groups);
      const token = newUserToken(given.name);
      if (!(await deps.users.create(given.name, groups, hashToken(token)))) throw conflict(`user ${given.name} exists; 'corral user token ${given.name}' gives a new token`);
      holdsCredential(c);
      return c.json({ name: given.name, groups, token }, 201);
    })
    .get("/", async (c) => c.json(await deps.users.list()))
    .delete("/:name", async (c) => {
      const name = c.req.param("name");
      if (!(await deps.users.get(name))) throw notFound(`user ${name} not found`);
      await deps.users.remove(name);
      return c.json({ name, removed: true });
    })
    .post("/:name/token", async (c) => {
      const name = c.req.param("name");
      const token = newUserToken(name);
      if (!(await deps.users.setToken(name, hashToken(token)))) throw notFound(`user ${name} not found`);
      holdsCredential(c);
      return c.json({ name, token });
    });
}
