import { Hono } from "hono";
import { z } from "zod";
import { conflict, invalid, notFound, registryOf, registryServerProblem, type StackState } from "@corral/core";
import { REGISTRY_LIMITS, type EventStore, type RegistryLogin, type RegistryRecord, type RegistryStore } from "@corral/store";
import { canSee, primaryGroup } from "../auth.js";
import type { Env } from "../env.js";
import { holdsCredential } from "../idempotency.js";
import { query, stackNameParam, textParam } from "../query.js";
import { body } from "../validate.js";

export interface RegistryDeps {
  registries: RegistryStore;
  store: Pick<EventStore, "load">;
}

const serverParam = z.string().max(REGISTRY_LIMITS.server + 40).superRefine((s, ctx) => {
  const problem = registryServerProblem(s);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});
/** A user name as tokens carry it, or the admin. */
const ownerParam = z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, "a user name");
// a username is shown (registry ls): printable, no control characters (a terminal escape)
const printable = /^[^\p{Cc}]+$/u;
const loginBody = z.object({
  server: serverParam,
  username: z.string().min(1, "a username is required").max(REGISTRY_LIMITS.username, `at most ${REGISTRY_LIMITS.username} characters`).regex(printable, "no control characters"),
  password: z
    .string()
    .min(1, "a password is required (on standard input: --password-stdin)")
    .refine((p) => Buffer.byteLength(p, "utf8") <= REGISTRY_LIMITS.passwordBytes, `at most ${REGISTRY_LIMITS.passwordBytes} bytes`),
});

/** What a listing shows of a login: never its password. */
const row = (r: RegistryRecord) => ({ server: r.server, username: r.username, owner: r.owner, group: r.group, created: r.created, updated: r.updated });

/**
 * The login a stack's pulls from `server` use: its owner's own, else the
 * earliest one made within the stack's group (as a secret of the group's is
 * the stack's to mount). Nobody else's.
 */
export async function loginForStack(registries: RegistryStore, stack: Pick<StackState, "owner" | "group">, server: string): Promise<RegistryLogin | undefined> {
  if (!stack.owner) return undefined;
  const own = await registries.reveal(stack.owner, server);
  if (own) return own;
  if (!stack.group) return undefined;
  const oldestFirst = (a: RegistryRecord, b: RegistryRecord) => (a.created < b.created ? -1 : a.created > b.created ? 1 : a.owner < b.owner ? -1 : 1);
  const ofGroup = (await registries.list()).filter((r) => r.server === server && r.group === stack.group).sort(oldestFirst);
  for (const r of ofGroup) {
    const found = await registries.reveal(r.owner, server);
    if (found) return found;
  }
  return undefined;
}

/**
 * `corral registry add | ls | rm`: a user's logins to private registries,
 * theirs and their primary group's, as secrets are. A password goes in
 * and never comes out of these routes.
 */
export function registryRoutes(deps: RegistryDeps) {

  return new Hono<Env>()
    .post("/", body(loginBody), async (c) => {
      const login = c.req.valid("json");
      const p = c.get("principal");
      const { kind, record } = await deps.registries.put({ server: login.server, username: login.username, password: login.password, owner: p.name, group: primaryGroup(p) });
      return c.json({ ...row(record), kind }, kind === "created" ? 201 : 200);
    })
    .get("/", async (c) => {
      const p = c.get("principal");
      const all = await deps.registries.list();
      return c.json(all.filter((r) => canSee(p, r.owner, r.group)).sort((a, b) => (a.server === b.server ? (a.owner < b.owner ? -1 : 1) : a.server < b.server ? -1 : 1)).map(row));
    })
    // the caller's own login, or with ?owner= one of their group's (any, for the admin)
    .delete("/:server", query({ owner: ownerParam.optional() }), async (c) => {
      const server = c.req.param("server");
      const problem = registryServerProblem(server);
      if (problem) throw invalid(problem, "server");
      const p = c.get("principal");
      const owner = c.req.valid("query").owner ?? p.name;
      const found = await deps.registries.get(owner, server);
      const whose = owner === p.name ? "you have" : `${owner} has`;
      if (!found || !canSee(p, found.owner, found.group)) throw notFound(`${whose} no login for registry ${server}`);
      await deps.registries.remove(owner, server);
      return c.json({ server, owner, removed: true });
    });
}

/**
 * A login for the host that is pulling an image of a stack: only with that
 * host's token (the API's scope middleware), only for a pull (or a
 * scheduled run, which pulls) planned on that host and not yet reported,
 * only for the registry that step's image names, and only the stack
 * owner's (or its group's) login. The queue carries none of it. A stack
 * without a login for a registry others have logins for gets
 * `{anonymous: true}`: the host pulls without one even when the image is
 * there, so one tenant's pulled copy is no way in for another. A stack
 * whose registry nobody has a login for gets 404 (a public image). Such a
 * pull this host has already reported done gets `{reported: true}` and no
 * login: the message came again (to an agent restarted since, which no
 * longer remembers it), the image is the one that host pulled with the
 * login then, and the steps after it go on. A step that is no such pull
 * gets 409, so that the host fails it instead of taking it for the 404.
 */
export function hostRegistryRoute(deps: RegistryDeps) {
  return new Hono<Env>()
    .get("/:id/registry-auth", query({ stack: stackNameParam, step: textParam(500), server: serverParam }), async (c) => {
      const id = c.req.param("id");
      const q = c.req.valid("query");
      const state = await deps.store.load(q.stack);
      const record = state.steps[q.step];
      const pulls = record && (record.step.action === "pull" || record.step.action === "run");
      const thisPull = pulls && record.step.host === id && registryOf(record.step.image) === q.server;
      const stepPulling = thisPull && record.status === "planned";
      if (thisPull && record.status === "succeeded" && record.step.action === "pull") return c.json({ server: q.server, reported: true as const });
      // a scheduled job's run is no step of the plan: it is in its service's runs, running on this host, of the service's image
      const cronPulling = Object.entries(state.cron ?? {}).some(
        ([service, c]) =>
          c.runs.some((r) => r.stepId === q.step && r.host === id && r.status === "running") && registryOf(state.services[service]?.spec.image ?? "") === q.server,
      );
      const pulling = stepPulling || cronPulling;
      // 409, not 404: a 404 tells the host nobody has a login (it pulls as a public image); this is a pull not planned here
      if (!pulling) throw conflict(`no pull of an image from ${q.server} is planned on ${id} for step ${q.step.slice(0, 200)}`);
      const login = await loginForStack(deps.registries, state, q.server);
      if (!login) {
        // others hold logins for it: a private registry, whose images one stack's pull may have left on the host; the host pulls
        // anyway, without a login, so that the registry (not that copy) decides whether this stack may have the image
        if ((await deps.registries.list()).some((r) => r.server === q.server)) return c.json({ server: q.server, anonymous: true });
        throw notFound(`stack ${q.stack}'s owner has no login for registry ${q.server}`);
      }
      holdsCredential(c);
      return c.json({ server: login.server, username: login.username, password: login.password });
    });
}
