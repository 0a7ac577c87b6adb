import { broken, byId, indexPlaced, refusal, sameService, type Ctx } from "./placement/fit.js";
import { compare, explain, nowhere, score } from "./placement/rank.js";
import type { GlobalPlan, Placed, Placement, PlacementHost, PlacementRules, PlaceRequest, PlaceResult } from "./placement/types.js";

/**
 * Placement: which host a new container of a service lands on, and why.
 * Pure and deterministic: the same hosts, containers and rules give the same
 * answer whatever order the hosts come in (ties go to the lowest host id).
 *
 * One rule set, read from two spellings:
 *
 * - Rancher 1.6 scheduling labels on the service, `io.corral.scheduler.*` or
 *   `io.rancher.scheduler.*` (same meaning). Values are comma-separated
 *   `key=value` pairs and every pair is a rule of its own; all rules hold at once.
 *   - `affinity:host_label`: the host has every label;
 *     `affinity:host_label_ne`: the host has none of them;
 *     `_soft` / `_soft_ne`: the same as preferences.
 *   - `affinity:container_label[_soft][_ne]`: the host runs (does not run) a
 *     container carrying that label. See `containerLabels` for the labels a
 *     container is matched on.
 *   - `global: "true"`: one container on every host that fits (see globalSlots).
 *   - `${stack_name}` and `${service_name}` in a value stand for the service's
 *     stack and name, as in Rancher (write `$${stack_name}` in a compose file).
 * - Compose / Swarm `deploy`:
 *   - `placement.constraints`: `node.labels.K==V` / `!=` (a host without K
 *     passes `!=`, as in Swarm), `engine.labels.K` (the same host labels: corral
 *     has one set), `node.id`, `node.hostname` (the host's name, its id when it
 *     has none), `node.role` (`manager` when the host is labelled `role=manager`,
 *     else `worker`: corral's control plane runs on no host, so this is only a
 *     label), `node.platform.os` (label `platform.os`, `linux` when unset: agents
 *     run on Linux engines) and `node.platform.arch` (label `platform.arch`).
 *   - `placement.preferences: [{ spread: node.labels.K }]`: even out the
 *     service's containers over the values of K (hosts without K are one
 *     group), in order, before the default rule.
 *   - `placement.max_replicas_per_node`: at most that many of the service's
 *     containers on a host (0 or unset: no limit).
 *   - `mode: global`: as `global: "true"`.
 *
 * A service whose image no registry gives (built or loaded on some hosts),
 * once a host could not pull it, goes first to the hosts it ran on, then to
 * the hosts not known either way, last to those that lack it (`localImage`).
 *
 * Then the default rule: only active hosts, no host port published twice on a
 * host, fewest of the service's containers, then fewest containers overall,
 * then the lowest host id. Ports are told apart by number only (tcp and udp,
 * or two host IPs, count as one port): that refuses a few placements that
 * would have worked, and never allows a clash. Preferences (soft rules) rank
 * before spreading: hosts meeting more of them win, as Rancher dropped soft
 * rules only when nothing met them.
 *
 * Texts (a placement's `why`, the reason nothing fits) name hosts by id.
 */

// its parts, in placement/: types.ts, rules.ts (reading the rules), fit.ts (can a host take one), rank.ts (which host is best)

export { hostBreaks } from "./placement/fit.js";
export { containerLabels, isSchedulingLabel, placementRules, schedulingLabels } from "./placement/rules.js";
export type { GlobalPlan, HostState, LocalImage, Placed, PlaceRequest, PlaceResult, Placement, PlacementHost, PlacementRules, Rule } from "./placement/types.js";

function newContainer(request: { stack: string; service: string; rules: PlacementRules }, slot: number, host: string): Placed {
  const { rules } = request;
  return { stack: request.stack, service: request.service, slot, host, labels: rules.labels, ports: rules.ports, ...(rules.routedPorts.length ? { routedPorts: rules.routedPorts } : {}) };
}

/**
 * Place new containers (slots) of a service. `placed` are the containers that
 * exist and stay (of every stack: ports and container labels span stacks).
 * Slots are placed lowest first, each accounting for those placed before it.
 * `rules.global` is not looked at here: globalSlots places global services.
 */
export function place(request: PlaceRequest, hosts: PlacementHost[], placed: Placed[]): PlaceResult {
  const sorted = [...hosts].sort(byId);
  const ctx: Ctx = { stack: request.stack, service: request.service, rules: request.rules, byHost: indexPlaced(placed), ...(request.localImage ? { localImage: request.localImage } : {}) };
  const placements: Placement[] = [];
  for (const slot of [...request.slots].sort((a, b) => a - b)) {
    const fits = sorted.filter((h) => refusal(h, ctx) === undefined);
    if (fits.length === 0) return { placements, unplaced: { slot, reason: nowhere(`${request.service}-${slot}`, sorted, ctx) } };
    const ranked = fits.map((h) => score(h, ctx, sorted)).sort(compare);
    const best = ranked[0]!;
    const lacks = best.lacks === 2 ? `; ${best.host.id} could not pull the ${request.service} image before (no registry has it)` : "";
    placements.push({ slot, host: best.host.id, why: explain(ranked, ctx, sorted) + lacks });
    const c = newContainer(request, slot, best.host.id);
    ctx.byHost.set(c.host, [...(ctx.byHost.get(c.host) ?? []), c]);
  }
  return { placements };
}

/**
 * A global service: one container on every active host that meets its rules.
 * A host that is not active keeps what it runs (it is neither placed on nor
 * reported as surplus): draining it is the caller's business.
 */
export function globalSlots(request: { stack: string; service: string; rules: PlacementRules }, hosts: PlacementHost[], placed: Placed[]): GlobalPlan {
  const sorted = [...hosts].sort(byId);
  const mine = placed.filter((c) => sameService(c, request.stack, request.service)).sort((a, b) => a.slot - b.slot);
  const others = placed.filter((c) => !sameService(c, request.stack, request.service));
  // rules are checked against the host without this service's own containers (its own ports, a "not with myself" rule)
  const { maxPerHost: _max, ...rules } = request.rules;
  const ctx: Ctx = { stack: request.stack, service: request.service, rules, byHost: indexPlaced(others) };
  const used = new Set(mine.map((c) => c.slot));
  let next = 1;
  const freeSlot = () => {
    while (used.has(next)) next++;
    used.add(next);
    return next;
  };
  const plan: GlobalPlan = { placements: [], skipped: [], surplus: [] };
  for (const h of sorted) {
    const here = mine.filter((c) => c.host === h.id);
    if (h.state !== "active") {
      if (here.length === 0) plan.skipped.push({ host: h.id, reason: h.state });
      // a drained host runs nothing of corral's, global services included (as Swarm's drain); inactive and disconnected ones keep theirs
      if (h.state === "draining") for (const c of here) plan.surplus.push({ slot: c.slot, host: h.id, reason: `${h.id}: draining` });
      continue;
    }
    if (here.length > 0) {
      // what runs stays unless the host no longer meets the rules (a port taken since is the newcomer's clash, not this one's)
      const rule = broken(h, ctx);
      here.forEach((c, i) => {
        if (rule) plan.surplus.push({ slot: c.slot, host: h.id, reason: `${h.id}: ${rule}` });
        else if (i > 0) plan.surplus.push({ slot: c.slot, host: h.id, reason: `${h.id}: a second ${request.service} container (global: one per host)` });
      });
      continue;
    }
    const why = refusal(h, ctx);
    if (why) plan.skipped.push({ host: h.id, reason: why });
    else plan.placements.push({ slot: freeSlot(), host: h.id, why: `${h.id}: global, one ${request.service} container per host` });
  }
  const known = new Set(sorted.map((h) => h.id));
  for (const c of mine) if (!known.has(c.host)) plan.surplus.push({ slot: c.slot, host: c.host, reason: `${c.host}: not a registered host` });
  return plan;
}
