import { Hono } from "hono";
import { stringify as toYaml } from "yaml";
import {
  containerRows,
  currentProject,
  inspectContainer,
  inspectService,
  inspectStack,
  notFound,
  serviceRows,
  stackHistory,
  stackState,
  toComposeDocuments,
  type InspectContext,
  type SitePolicy,
} from "@corral/core";
import type { EventStore, HostStore } from "@corral/store";
import { canSee } from "../auth.js";
import type { Env } from "../env.js";
import { namedHosts, type StackOps } from "../ops/index.js";
import { flagParam, query, textParam } from "../query.js";
import { stackParam } from "../validate.js";

export interface ReadDeps {
  store: Pick<EventStore, "load">;
  hosts: Pick<HostStore, "list">;
  policy: Pick<SitePolicy, "environment" | "domain">;
}

/** What runs, as the caller may see it: stacks, one stack, its history and export, services, and `inspect`. */
export function readRoutes(ops: StackOps, deps: ReadDeps) {

  return new Hono<Env>()
    .get("/stacks", async (c) => {
      const stacks = await ops.existingStacks(c.get("principal"));
      return c.json(
        stacks.map((s) => {
          return { id: s.name, name: s.name, state: stackState(s), services: Object.keys(s.services).length, revision: s.revision, owner: s.owner ?? "", group: s.group ?? "", version: s.version };
        }),
      );
    })
    .get("/stacks/:stack", async (c) => {
      const s = await ops.existing(c.req.param("stack"), c.get("principal"));
      const containers = namedHosts(containerRows(s), await ops.hostNames());
      return c.json({ name: s.name, owner: s.owner ?? null, group: s.group ?? null, revision: s.revision, version: s.version, operation: s.op ?? null, services: serviceRows(s), containers });
    })
    /**
     * History: what changed what runs, per life of the stack (revisions count
     * from 1 again in a stack made anew after a removal): revisions committed
     * and rollbacks, with when, who, from where, which services and keys.
     * The current (or last) life; all=1: every earlier one before it.
     */
    .get("/stacks/:stack/history", query({ all: flagParam.optional() }), async (c) => {
      const s = await deps.store.load(stackParam(c.req.param("stack")));
      const lives = stackHistory(s, { all: c.req.valid("query").all ?? false });
      if (lives.length === 0 || !canSee(c.get("principal"), s.owner, s.group)) throw notFound(`stack ${s.name} not found`);
      return c.json({ stack: s.name, lives });
    })
    /** `export`: the current revision as docker-compose.yml and rancher-compose.yml (secret references only). */
    .get("/stacks/:stack/export", query({ pinned: flagParam.optional() }), async (c) => {
      const s = await ops.existing(c.req.param("stack"), c.get("principal"));
      const { compose, rancher } = toComposeDocuments(currentProject(s, c.req.valid("query").pinned ?? false));
      return c.json({ stack: s.name, revision: s.revision, files: { "docker-compose.yml": toYaml(compose), "rancher-compose.yml": toYaml(rancher) } });
    })
    .get("/services", async (c) => c.json((await ops.existingStacks(c.get("principal"))).flatMap(serviceRows)))
    /** `inspect STACK | STACK/SERVICE | CONTAINER`: one object; what the caller may not see answers 404. */
    .get("/inspect", query({ target: textParam(300) }), async (c) => {
      const t = await ops.resolveTarget(c.req.valid("query").target, c.get("principal"));
      const known = await deps.hosts.list();
      const ctx: InspectContext = {
        environment: deps.policy.environment,
        domain: deps.policy.domain,
        hostAddresses: Object.fromEntries(known.flatMap((h) => (h.address ? [[h.id, h.address]] : []))),
        hostNames: Object.fromEntries(known.map((h) => [h.id, h.name])),
      };
      if (t.container) return c.json(inspectContainer(t.stack, t.container.name, ctx));
      return c.json(t.service ? inspectService(t.stack, t.service, ctx) : inspectStack(t.stack, ctx));
    });
}
