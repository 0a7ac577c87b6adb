import { Hono } from "hono";
import { z } from "zod";
import { conflict, displayName, notFound } from "@corral/core";
import type { EventStore, SecretStore } from "@corral/store";
import { primaryGroup } from "../auth.js";
import type { Env } from "../env.js";
import { belongsToStack, mayName, mayUse, secretStack } from "../names.js";
import type { StackOps } from "../ops/index.js";
import { intParam, query, stackNameParam, textParam } from "../query.js";
import { body, params } from "../validate.js";

const secretBody = z.object({ value: z.string().base64().max(700_000) });

/** The stack a secret's name (SERVICE.STACK.FILE) names. */
const stackOfSecret = (name: string) => name.split(".")[1] ?? "";

/**
 * Secrets (`/v1/secrets`), named SERVICE.STACK.FILE: each the stack's
 * owner's (see names.ts). A value goes in and never comes out here; hosts
 * fetch it for a container they create (hostSecretRoutes).
 */
export function secretRoutes(ops: StackOps, deps: { secrets: SecretStore }) {

  return new Hono<Env>()
    .post("/:name", params((p) => ({ name: p.name ?? "", stack: secretStack(p.name ?? "") })), body(secretBody), async (c) => {
      const { name, stack } = c.req.valid("param");
      const given = c.req.valid("json");
      const principal = c.get("principal");
      const holder = await ops.holderOf(stack);
      if (!mayName(principal, holder)) throw notFound(`stack ${stack} not found (a secret SERVICE.${stack}.FILE is its owner's)`);
      const current = await deps.secrets.info(name);
      if (current && !mayUse(principal, current, holder)) {
        if (belongsToStack(current, holder)) throw notFound(`secret ${name} not found`);
        await deps.secrets.remove(name); // made before the stack was owned, by someone outside it: the stack's owner takes the name
      }
      const outcome = await deps.secrets.put(name, Buffer.from(given.value, "base64"), principal.name, holder.group ?? primaryGroup(principal));
      return c.json({ name, ...outcome }, outcome.kind === "unchanged" ? 200 : 201);
    })
    .get("/", async (c) => {
      const p = c.get("principal");
      const all = await deps.secrets.list();
      const holders = await ops.holdersOf(all.map((s) => stackOfSecret(s.name)));
      return c.json(all.filter((s) => mayUse(p, s, holders.get(stackOfSecret(s.name)) ?? {})));
    })
    .delete("/:name", async (c) => {
      const name = c.req.param("name");
      const p = c.get("principal");
      const info = await deps.secrets.info(name);
      const holder = info ? await ops.holderOf(stackOfSecret(name)) : {};
      // the stack's owner may also clear a stale record made before the stack was owned
      if (!info || !(mayUse(p, info, holder) || (!belongsToStack(info, holder) && mayName(p, holder)))) throw notFound(`secret ${name} not found`);
      const users: string[] = [];
      for (const s of await ops.existingStacks()) {
        for (const [service, { spec }] of Object.entries(s.services)) {
          const mounts = (spec.secrets ?? []).some((m) => (s.secrets[m.source]?.name ?? m.source) === name);
          if (!mounts) continue;
          users.push(...Object.values(s.containers).filter((k) => k.service === service && k.state === "running").map((k) => displayName(k.name)));
        }
      }
      if (users.length > 0) throw conflict(`secret ${name} is used by running containers: ${users.join(", ")}`);
      await deps.secrets.remove(name);
      return c.json({ name, removed: true });
    });
}

/**
 * A secret's value, for the host that is creating a container mounting it
 * (`/v1/hosts/ID/secrets/NAME`): only with that host's token, only for a
 * create step planned on that host and not yet done, only the version the
 * step names.
 */
export function hostSecretRoutes(deps: { secrets: SecretStore; store: Pick<EventStore, "load"> }) {
  return new Hono<Env>()
    .get("/:id/secrets/:name", query({ stack: stackNameParam, step: textParam(500), version: intParam(1, Number.MAX_SAFE_INTEGER) }), async (c) => {
      const id = c.req.param("id");
      const name = c.req.param("name");
      const q = c.req.valid("query");
      const state = await deps.store.load(q.stack);
      const record = state.steps[q.step];
      const mounts = record?.step.action === "create" && record.step.host === id && record.status === "planned" ? (record.step.secrets ?? []) : [];
      if (!mounts.some((m) => m.name === name && m.version === q.version)) throw notFound(`no container being created on ${id} mounts secret ${name} version ${q.version}`);
      const value = await deps.secrets.reveal(name, q.version);
      if (!value) throw notFound(`secret ${name} version ${q.version} not found`);
      return c.json({ name, version: q.version, value: value.toString("base64") });
    });
}
