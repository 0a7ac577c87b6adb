import { Hono } from "hono";
import { z } from "zod";
import { conflict, displayName, invalid, notFound, volumeProblems, type SitePolicy } from "@corral/core";
import type { QueueSender } from "@corral/queue";
import type { HostStore, VolumeStore } from "@corral/store";
import { primaryGroup } from "../auth.js";
import type { Env } from "../env.js";
import { belongsToStack, mayName, mayUse, volumeStack } from "../names.js";
import type { StackOps } from "../ops/index.js";
import { body } from "../validate.js";

const volumeNamePattern = /^[a-z0-9][a-z0-9_-]*\.[a-z0-9][a-z0-9-]*$/;
const volumeBody = z.object({
  name: z.string().max(128).regex(volumeNamePattern, "a volume is named SERVICE.STACK"),
  driver: z.enum(["local", "nfs"]).default("local"),
  opts: z.record(z.string().max(256), z.string().max(4096)).default({}),
});

export interface VolumeDeps {
  volumes: VolumeStore;
  hosts: Pick<HostStore, "list">;
  sender: Pick<QueueSender, "send">;
  policy: SitePolicy;
  clock: () => number;
}

/** The options Docker's local driver is given for a volume: an NFS one is mounted by it, as `docker service create --mount type=volume,volume-opt=type=nfs,...` does. */
function driverOpts(driver: "local" | "nfs", opts: Record<string, string>): Record<string, string> {
  if (driver !== "nfs") return opts;
  if (!opts.addr || !opts.device) throw invalid("an nfs volume needs --opt addr=HOST and --opt device=:/path", "opts");
  const { addr, device, o, ...rest } = opts;
  return { ...rest, type: "nfs", o: [`addr=${addr}`, o].filter(Boolean).join(","), device };
}

/** Named volumes (`/v1/volumes`), SERVICE.STACK: the stack's owner's, made on each host where a container mounting one lands. */
export function volumeRoutes(ops: StackOps, deps: VolumeDeps) {

  return new Hono<Env>()
    .post("/", body(volumeBody), async (c) => {
      const given = c.req.valid("json");
      const p = c.get("principal");
      const opts = driverOpts(given.driver, given.opts);
      // the site's rules, as for a compose file's volumes: local takes no options but NFS to a server the site names
      const problems = volumeProblems("local", opts, deps.policy).map((x) => ({ key: x.key.replace(/^driver_opts/, "opts"), reason: x.reason }));
      if (problems.length > 0) throw invalid(`volume ${given.name}: ${problems.map((x) => `${x.key}: ${x.reason}`).join("; ")}`, problems[0]!.key);
      const holder = await ops.holderOf(volumeStack(given.name));
      if (!mayName(p, holder)) throw notFound(`stack ${volumeStack(given.name)} not found (a volume SERVICE.${volumeStack(given.name)} is its owner's)`);
      const current = await deps.volumes.get(given.name);
      if (current && !mayUse(p, current, holder) && !belongsToStack(current, holder)) await deps.volumes.remove(given.name); // stale: the stack's owner takes the name
      const created = await deps.volumes.create({ name: given.name, driver: "local", opts, kind: given.driver, owner: p.name, group: holder.group ?? primaryGroup(p) });
      if (!created) throw conflict(`volume ${given.name} exists`);
      return c.json({ name: given.name, driver: given.driver }, 201);
    })
    .get("/", async (c) => {
      const p = c.get("principal");
      const rows = [];
      const all = await deps.volumes.list();
      const holders = await ops.holdersOf(all.map((v) => volumeStack(v.name)));
      for (const v of all.filter((x) => mayUse(p, x, holders.get(volumeStack(x.name)) ?? {}))) {
        const users = await ops.volumeUsers(v.name);
        const running = users.filter((u) => u.running).map((u) => displayName(u.name));
        const detail = running.length ? `used by ${running.join(", ")}` : "";
        rows.push({ id: `1v${v.name}`, name: v.name, state: running.length > 0 ? "active" : "inactive", driver: v.kind, detail, owner: v.owner, group: v.group });
      }
      return c.json(rows);
    })
    .delete("/:name", async (c) => {
      const name = c.req.param("name");
      const p = c.get("principal");
      const v = volumeNamePattern.test(name) ? await deps.volumes.get(name) : undefined;
      const holder = v ? await ops.holderOf(volumeStack(name)) : {};
      if (!v || !(mayUse(p, v, holder) || (!belongsToStack(v, holder) && mayName(p, holder)))) throw notFound(`volume ${name} not found`);
      const users = await ops.volumeUsers(name);
      if (users.length > 0) throw conflict(`volume ${name} is in use by ${users.map((u) => displayName(u.name)).join(", ")}`);
      await deps.volumes.remove(name);
      // every host drops its copy (a volume is made where a container landed)
      const hosts = await deps.hosts.list();
      const at = deps.clock();
      for (const h of hosts) {
        const step = { id: `volume-rm.${name}.${at}`, op: `volume-rm-${at}`, stack: "_volumes", service: name, revision: 0, action: "remove-volume" as const, host: h.id, image: "", after: [] };
        await deps.sender.send(h.queueUrl, [{ body: { kind: "step", step, attempt: 1 }, group: `_volumes/${name}`, dedupId: `${step.id}#${h.id}`, to: h.id }]);
      }
      return c.json({ name, removed: true, hosts: hosts.length });
    });
}
