import { byId, check, refusal, sameService, type Ctx } from "./fit.js";
import type { PlacementHost, Rule } from "./types.js";

// which of the hosts that fit is best, and why, in plain words

interface Score {
  host: PlacementHost;
  /** For a local image (see PlaceRequest.localImage): 0 ran on the host, 1 not known, 2 its pull failed there; else 0. */
  lacks: number;
  met: Rule[];
  spread: number[];
  own: number;
  total: number;
}

export function score(h: PlacementHost, ctx: Ctx, hosts: PlacementHost[]): Score {
  const on = ctx.byHost.get(h.id) ?? [];
  const met = ctx.rules.preferred.filter((r) => check(r, h, on) === undefined);
  const spread = ctx.rules.spreadOver.map((_, i) => {
    const keys = ctx.rules.spreadOver.slice(0, i + 1);
    const group = hosts.filter((o) => keys.every((k) => o.labels[k] === h.labels[k]));
    return group.reduce((n, o) => n + (ctx.byHost.get(o.id) ?? []).filter((c) => sameService(c, ctx.stack, ctx.service)).length, 0);
  });
  const image = ctx.localImage;
  const lacks = !image ? 0 : image.lacking.includes(h.id) ? 2 : image.on.includes(h.id) ? 0 : 1;
  return { host: h, lacks, met, spread, own: on.filter((c) => sameService(c, ctx.stack, ctx.service)).length, total: on.length };
}

/** The keys a candidate is ranked by, best first: has the local image, then more preferences met, then emptier spread groups, then fewer own, then fewer overall. */
const keys = (s: Score): number[] => [s.lacks, -s.met.length, ...s.spread, s.own, s.total];

export function compare(a: Score, b: Score): number {
  const ka = keys(a);
  const kb = keys(b);
  for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i]! - kb[i]!;
  return byId(a.host, b.host);
}

/**
 * Why the best candidate won, in the order of the keys: each key that ruled
 * out some other candidate still tied with it, then "first by id" if a tie was left.
 */
export function explain(ranked: Score[], ctx: Ctx, hosts: PlacementHost[]): string {
  const best = ranked[0]!;
  const id = best.host.id;
  if (ranked.length === 1) {
    const others = hosts.filter((h) => h.id !== id).map((h) => `${h.id}: ${refusal(h, ctx) ?? "fits"}`);
    return `${id}: the only host that fits${others.length ? ` (${others.join(", ")})` : ""}`;
  }
  const kb = keys(best);
  const spreadGroup = (i: number) =>
    ctx.rules.spreadOver
      .slice(0, i + 1)
      .map((k) => (best.host.labels[k] === undefined ? `no ${k} label` : `${k}=${best.host.labels[k]}`))
      .join(", ");
  const say = (i: number): string => {
    if (i === 0) {
      const lacking = ctx.localImage?.lacking.join(", ") ?? "";
      if (best.lacks === 0) return `ran the ${ctx.service} image before (no registry has it, and ${lacking} could not pull it)`;
      return `${lacking} could not pull the ${ctx.service} image (no registry has it)`;
    }
    i -= 1;
    if (i === 0) return `meets preference${best.met.length === 1 ? "" : "s"} ${best.met.map((r) => (r.negate ? `not ${r.text}` : r.text)).join(", ")}`;
    if (i <= ctx.rules.spreadOver.length) return `${spreadGroup(i - 1)} has fewest ${ctx.service} containers (${best.spread[i - 1]})`;
    if (i === kb.length - 3) return `fewest ${ctx.service} containers (${best.own})`;
    return `fewest overall (${best.total})`;
  };
  const reasons: string[] = [];
  let tied = ranked.slice(1);
  for (let i = 0; i < kb.length && tied.length > 0; i++) {
    const still = tied.filter((s) => keys(s)[i] === kb[i]);
    if (still.length < tied.length) reasons.push(say(i));
    tied = still;
  }
  if (tied.length === 0) return `${id}: ${reasons.join(", then ")}`;
  if (reasons.length === 0) return `${id}: first by id among equals (${best.own} ${ctx.service} containers, ${best.total} overall)`;
  return `${id}: ${reasons.join(", then ")}, then first by id`;
}

/** Plain words for why no host takes the container: `h1: port 8080 in use, h2: label zone=b missing`. */
export function nowhere(name: string, hosts: PlacementHost[], ctx: Ctx): string {
  if (hosts.length === 0) return `no host can run ${name}: no hosts are registered`;
  return `no host can run ${name}: ${hosts.map((h) => `${h.id}: ${refusal(h, ctx) ?? "fits"}`).join(", ")}`;
}
