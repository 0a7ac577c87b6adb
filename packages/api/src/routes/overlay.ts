import { Hono } from "hono";
import { gatewayOf, invalid, notFound, stackBridge, stackNamePattern, stackNames, type HostInfo, type OverlayPeer, type StackState } from "@corral/core";
import { SubnetPoolExhaustedError, type HostRecord, type SubnetStore } from "@corral/store";
import { hostIdPattern } from "./hosts.js";

export interface OverlayRoutesDeps {
  hosts: { list(options?: { maxAgeMs?: number }): Promise<HostRecord[]> };
  /** Each stack's subnet per host. */
  subnets: SubnetStore;
  /** Each host's VTEP address: the same store over the VTEP pool, under the stack name `vtep`. */
  vteps: SubnetStore;
  /** The hosts with their states, as placement sees them: a disconnected host's containers drop out of the names. */
  liveHosts: () => Promise<HostInfo[]>;
  stacks: () => Promise<StackState[]>;
  load: (stack: string) => Promise<StackState>;
  clock?: () => number;
}

/** A stack removed this long ago gives its subnets back when the pool runs out (one made again at once keeps its own). */
export const RECLAIM_AFTER_MS = 60_000;

/**
 * `store.assign`, and when the pool is spent, what removed stacks and hosts
 * still hold (`gone`) given back first, then once more. Subnets are not
 * given back as stacks go: a host that was away when its stack was removed
 * may still have the bridge, and a subnet given out again at once would
 * overlap it there.
 */
async function assignReclaiming(store: SubnetStore, stack: string, host: string, judge: () => Promise<(holder: { stack: string; host: string }) => Promise<boolean>>): Promise<string> {
  try {
    return await store.assign(stack, host);
  } catch (e) {
    if (!(e instanceof SubnetPoolExhaustedError)) throw e;
    let freed = 0;
    const gone = await judge();
    for (const h of await store.holders()) {
      if (!(await gone(h))) continue;
      await store.releaseOne(h.stack, h.host);
      freed++;
    }
    if (freed === 0) throw e;
    return store.assign(stack, host);
  }
}

/** How long a host's VTEP, once read, is answered without asking the store again. */
const VTEP_KEPT_MS = 30_000;

/** The VTEP key in the VTEP store (not a stack name: stack names have no '#'). */
const VTEP = "#vtep";

/** Whether a stack has, or is about to have, a container on `host`: only then may the host make its network. */
export function stackOnHost(state: StackState, host: string): boolean {
  if (!state.exists) return false;
  if (Object.values(state.containers).some((c) => c.host === host)) return true;
  if (Object.values(state.inflight).some((c) => c.host === host)) return true;
  return state.op?.status === "running" && Object.values(state.steps).some((r) => r.step.host === host && r.status === "planned");
}

/**
 * The stack networks' routes under `/v1/hosts/:id` (a host's own token, or
 * the admin's: the scope middleware keeps other hosts and users out):
 *
 * - `POST /:id/networks/:stack`: the stack's subnet on this host (assigned
 *   now if it has none), its bridge and gateway: the agent makes the stack's
 *   network with them before the stack's first container lands there;
 * - `GET /:id/overlay`: what this host's overlay holds (its VTEP, the other
 *   hosts', the subnets of the stacks it runs on every host) and those
 *   stacks' names, for its name servers.
 */
export function overlayRoutes(deps: OverlayRoutesDeps) {
  const clock = deps.clock ?? Date.now;
  // what removed hosts hold, and (subnets) removed stacks: judged with one listing of the hosts
  const hostGone = async () => {
    const registered = new Set((await deps.hosts.list()).map((h) => h.id));
    return async (h: { host: string }) => !registered.has(h.host);
  };
  const stackGone = async () => {
    const gone = await hostGone();
    return async (h: { stack: string; host: string }) => {
      if (await gone(h)) return true;
      const state = await deps.load(h.stack);
      return !state.exists && Object.keys(state.containers).length === 0 && clock() - (state.removed?.at ?? 0) >= RECLAIM_AFTER_MS;
    };
  };
  // each host's VTEP, as assigned (at most VTEP_KEPT_MS ago): every answer lists every host's, and every host asks every
  // 2 s; a VTEP changes only when its host was removed, and a removed host is in no answer
  const vtepOf = new Map<string, { vtep: string; at: number }>();
  const vtep = async (id: string) => {
    const kept = vtepOf.get(id);
    if (kept && clock() - kept.at < VTEP_KEPT_MS) return kept.vtep;
    const assigned = (await assignReclaiming(deps.vteps, VTEP, id, hostGone)).replace(/\/32$/, "");
    vtepOf.set(id, { vtep: assigned, at: clock() });
    return assigned;
  };
  const peerOf = async (h: HostRecord): Promise<OverlayPeer | undefined> => (h.address ? { id: h.id, underlay: h.address, vtep: await vtep(h.id) } : undefined);

  return new Hono()
    .post("/:id/networks/:stack", async (c) => {
      const id = c.req.param("id");
      const stack = c.req.param("stack");
      if (!hostIdPattern.test(id)) throw invalid(`invalid host id "${id.slice(0, 80)}"`, "id");
      if (!stackNamePattern.test(stack)) throw invalid(`invalid stack name "${stack.slice(0, 80)}"`, "stack");
      const state = await deps.load(stack);
      // a host makes the network of a stack it runs (or is about to), no other
      if (!stackOnHost(state, id)) throw notFound(`stack ${stack} has nothing on host ${id}`);
      const subnet = await assignReclaiming(deps.subnets, stack, id, stackGone);
      return c.json({ stack, subnet, bridge: stackBridge(stack), gateway: gatewayOf(subnet) });
    })
    .get("/:id/overlay", async (c) => {
      const id = c.req.param("id");
      if (!hostIdPattern.test(id)) throw invalid(`invalid host id "${id.slice(0, 80)}"`, "id");
      // every host asks every 2 s: a listing up to 1 s old answers them all (a change made here is seen at once)
      const hosts = await deps.hosts.list({ maxAgeMs: 1_000 });
      const self = hosts.find((h) => h.id === id);
      if (!self) throw notFound(`host ${id} is not registered`);
      const me = await peerOf(self);
      if (!me) throw invalid(`host ${id} registered no address: the overlay needs one ('corral agent --address IP')`, "address");
      const peers = (await Promise.all(hosts.map(peerOf))).filter((p): p is OverlayPeer => p !== undefined);
      const up = new Set((await deps.liveHosts()).filter((h) => h.state !== "disconnected").map((h) => h.id));
      const mine = (await deps.stacks()).filter((s) => stackOnHost(s, id));
      const stacks = await Promise.all(mine.map(async (s) => ({ stack: s.name, subnets: await deps.subnets.ofStack(s.name) })));
      const names = Object.fromEntries(mine.map((s) => [s.name, stackNames(s, (h) => up.has(h))]));
      return c.json({ view: { me, peers, stacks: stacks.filter((s) => s.subnets[id] !== undefined) }, names });
    });
}
