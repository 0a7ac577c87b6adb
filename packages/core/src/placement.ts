import type { ServiceSpec } from "./model.js";
import { directPorts, routedPorts } from "./ports.js";

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

export type HostState = "active" | "disconnected" | "draining" | "inactive";

export interface PlacementHost {
  id: string;
  name?: string;
  state: HostState;
  labels: Record<string, string>;
}

/** A container that exists (or will, planned) and stays where it is. */
export interface Placed {
  stack: string;
  service: string;
  slot: number;
  host: string;
  /** The container's own labels (its service's); corral's io.corral.* ones are derived, see containerLabels. */
  labels: Record<string, string>;
  /** Host ports the container publishes itself: no other container on the host may publish them. */
  ports: number[];
  /** Host ports the agent routes to the service's containers on this host: shared by that service only. */
  routedPorts?: number[];
}

/**
 * One requirement or preference. `hostLabel`: a host label; `hostAttr`: a
 * host attribute (`id`, `hostname`, `role`, `platform.os`, `platform.arch`);
 * `containerLabel`: a label of some container on the host. `negate` turns
 * "has" into "has not". `text` is the rule as written, `from` the key it came from.
 */
export interface Rule {
  kind: "hostLabel" | "hostAttr" | "containerLabel";
  key: string;
  value: string;
  negate: boolean;
  text: string;
  from: string;
}

export interface PlacementRules {
  required: Rule[];
  preferred: Rule[];
  /** Host label keys to spread over, outermost first. */
  spreadOver: string[];
  maxPerHost?: number;
  global: boolean;
  /** Host ports each container publishes itself. */
  ports: number[];
  /** Host ports the agent routes to the service (shared between its containers on a host). */
  routedPorts: number[];
  /** The labels the service's new containers carry (for container-label rules of later placements). */
  labels: Record<string, string>;
}

export interface Placement {
  slot: number;
  host: string;
  why: string;
}

export interface PlaceRequest {
  stack: string;
  service: string;
  slots: number[];
  rules: PlacementRules;
}

export interface PlaceResult {
  placements: Placement[];
  /** The first slot that fits on no host; the slots after it are not placed either. */
  unplaced?: { slot: number; reason: string };
}

const prefixes = ["io.corral.scheduler.", "io.rancher.scheduler."] as const;
const affinityKinds = ["host_label", "host_label_ne", "host_label_soft", "host_label_soft_ne", "container_label", "container_label_ne", "container_label_soft", "container_label_soft_ne"] as const;

/** Is this a scheduling label (for compose validation: a user may set these io.corral.* keys)? */
export const isSchedulingLabel = (key: string): boolean => prefixes.some((p) => key.startsWith(p));

/** The scheduling labels corral understands, in its own spelling. */
export const schedulingLabels: readonly string[] = ["io.corral.scheduler.global", ...affinityKinds.map((k) => `io.corral.scheduler.affinity:${k}`)];

/**
 * The labels a container is matched on by container-label rules: its own
 * labels, then corral's, which win over any of the same name:
 * `io.corral.stack=STACK`, `io.corral.service=SERVICE` and
 * `io.corral.stack_service=STACK/SERVICE`.
 *
 * In a rule, `io.corral.service=db` means service db of the rule's own stack
 * (it is read as `io.corral.stack_service=STACK/db`), `io.corral.service=other/db`
 * names another stack's; Rancher's `io.rancher.stack_service.name=STACK/SERVICE`
 * and `io.rancher.stack.name=STACK` are read as corral's.
 */
export function containerLabels(c: Pick<Placed, "stack" | "service" | "labels">): Record<string, string> {
  return { ...c.labels, "io.corral.stack": c.stack, "io.corral.service": c.service, "io.corral.stack_service": `${c.stack}/${c.service}` };
}

function containerRuleKey(key: string, value: string, stack: string): [string, string] {
  const qualified = (v: string) => (v.includes("/") ? v : `${stack}/${v}`);
  if (key === "io.corral.service" || key === "io.corral.stack_service" || key === "io.rancher.stack_service.name") return ["io.corral.stack_service", qualified(value)];
  if (key === "io.rancher.stack.name") return ["io.corral.stack", value];
  return [key, value];
}

/**
 * The placement rules of a service, from its labels and deploy section; bad
 * rule text gives problems, each naming its key (`labels.KEY` or
 * `deploy.placement.constraints[i]`) for the caller to prefix with file and service.
 */
export function placementRules(spec: ServiceSpec, names: { stack: string; service: string }): PlacementRules | { problems: string[] } {
  const problems: string[] = [];
  const required: Rule[] = [];
  const preferred: Rule[] = [];
  const substitute = (v: string) => v.replaceAll("${stack_name}", names.stack).replaceAll("${service_name}", names.service);
  let labelGlobal: boolean | undefined;
  let globalKey = "";

  for (const [key, raw] of Object.entries(spec.labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const prefix = prefixes.find((p) => key.startsWith(p));
    if (!prefix) continue;
    const from = `labels.${key}`;
    const name = key.slice(prefix.length);
    if (name === "global") {
      const v = raw.trim().toLowerCase();
      if (v !== "true" && v !== "false") problems.push(`${from}: must be "true" or "false", not "${raw}"`);
      else if (labelGlobal !== undefined && labelGlobal !== (v === "true")) problems.push(`${from}: says "${v}", but ${globalKey} says "${labelGlobal}"`);
      else {
        labelGlobal = v === "true";
        globalKey = from;
      }
      continue;
    }
    const kind = name.startsWith("affinity:") ? (affinityKinds as readonly string[]).find((k) => k === name.slice("affinity:".length)) : undefined;
    if (!kind) {
      problems.push(`${from}: unknown scheduling label (corral understands ${schedulingLabels.map((l) => l.slice("io.corral.scheduler.".length)).join(", ")})`);
      continue;
    }
    const pairs = raw.split(",").map((p) => p.trim()).filter((p) => p !== "");
    if (pairs.length === 0) problems.push(`${from}: needs key=value pairs, comma-separated`);
    for (const pair of pairs) {
      const eq = pair.indexOf("=");
      const k = eq < 0 ? "" : pair.slice(0, eq).trim();
      const v = eq < 0 ? "" : substitute(pair.slice(eq + 1).trim());
      if (!k || !v) {
        problems.push(`${from}: "${pair}" is not key=value`);
        continue;
      }
      const onContainer = kind.startsWith("container_label");
      const [rk, rv] = onContainer ? containerRuleKey(k, v, names.stack) : [k, v];
      const rule: Rule = { kind: onContainer ? "containerLabel" : "hostLabel", key: rk, value: rv, negate: kind.endsWith("_ne"), text: `${k}=${v}`, from };
      (kind.includes("_soft") ? preferred : required).push(rule);
    }
  }

  const placement = spec.deploy?.placement;
  (placement?.constraints ?? []).forEach((c, i) => {
    const from = `deploy.placement.constraints[${i}]`;
    const rule = parseConstraint(c, from);
    if (typeof rule === "string") problems.push(`${from}: ${rule}`);
    else required.push(rule);
  });

  const spreadOver: string[] = [];
  (placement?.preferences ?? []).forEach((p, i) => {
    const m = /^\s*(?:node|engine)\.labels\.([^\s=!]+)\s*$/.exec(p.spread);
    if (m) spreadOver.push(m[1]!);
    else problems.push(`deploy.placement.preferences[${i}].spread: "${p.spread}" is not node.labels.KEY`);
  });

  const max = placement?.max_replicas_per_node;
  if (max !== undefined && max < 0) problems.push(`deploy.placement.max_replicas_per_node: must be 0 (no limit) or more, not ${max}`);

  const mode = spec.deploy?.mode;
  if (labelGlobal === true && mode === "replicated") problems.push(`deploy.mode: replicated, but ${globalKey} says "true"`);
  if (labelGlobal === false && mode === "global") problems.push(`deploy.mode: global, but ${globalKey} says "false"`);

  if (problems.length) return { problems };
  const published = (ps: ServiceSpec["ports"]) => [...new Set(ps.flatMap((p) => (p.published === undefined ? [] : [p.published])))].sort((a, b) => a - b);
  return {
    required,
    preferred,
    spreadOver,
    ...(max ? { maxPerHost: max } : {}),
    global: labelGlobal ?? mode === "global",
    ports: published(directPorts(spec)),
    routedPorts: published(routedPorts(spec)),
    labels: Object.fromEntries(Object.entries(spec.labels ?? {}).filter(([k]) => !isSchedulingLabel(k))),
  };
}

const attrs: ReadonlyMap<string, string> = new Map([
  ["node.id", "id"],
  ["node.hostname", "hostname"],
  ["node.role", "role"],
  ["node.platform.os", "platform.os"],
  ["node.platform.arch", "platform.arch"],
]);

function parseConstraint(text: string, from: string): Rule | string {
  const m = /^\s*([^\s=!]+)\s*(==|!=)\s*(\S(?:.*\S)?)\s*$/.exec(text);
  if (!m) return `"${text}" is not a constraint (write node.labels.KEY==VALUE, node.hostname!=NAME, node.role==manager, ...)`;
  const [, attr, op, value] = m as unknown as [string, string, string, string];
  const negate = op === "!=";
  const label = /^(?:node|engine)\.labels\.(.+)$/.exec(attr);
  if (label) return { kind: "hostLabel", key: label[1]!, value, negate, text: text.trim(), from };
  const a = attrs.get(attr);
  if (!a) return `"${attr}" is not a constraint corral knows (node.labels.KEY, engine.labels.KEY, ${[...attrs.keys()].join(", ")})`;
  if (a === "role" && value !== "manager" && value !== "worker") return `node.role is manager or worker, not "${value}"`;
  return { kind: "hostAttr", key: a, value, negate, text: text.trim(), from };
}

function hostAttr(h: PlacementHost, key: string): string | undefined {
  switch (key) {
    case "id":
      return h.id;
    case "hostname":
      return h.name ?? h.id;
    case "role":
      return h.labels.role === "manager" ? "manager" : "worker";
    case "platform.os":
      return h.labels["platform.os"] ?? "linux";
    default:
      return h.labels[key];
  }
}

const attrName = (key: string) => `node.${key}`;

/** Does the host (with these containers on it) meet the rule? If not, why, in plain words. */
function check(rule: Rule, h: PlacementHost, on: Placed[]): string | undefined {
  switch (rule.kind) {
    case "hostLabel": {
      const has = h.labels[rule.key] === rule.value;
      if (has === !rule.negate) return undefined;
      return rule.negate ? `has label ${rule.key}=${rule.value}` : `label ${rule.key}=${rule.value} missing`;
    }
    case "hostAttr": {
      const actual = hostAttr(h, rule.key);
      const has = actual === rule.value;
      if (has === !rule.negate) return undefined;
      return rule.negate ? `${attrName(rule.key)} is ${rule.value}` : `${attrName(rule.key)} is ${actual ?? "unset"}, not ${rule.value}`;
    }
    case "containerLabel": {
      const has = on.some((c) => containerLabels(c)[rule.key] === rule.value);
      if (has === !rule.negate) return undefined;
      return rule.negate ? `runs a container with ${rule.text}` : `no container with ${rule.text}`;
    }
  }
}

interface Ctx {
  stack: string;
  service: string;
  rules: PlacementRules;
  byHost: Map<string, Placed[]>;
}

const sameService = (c: Placed, stack: string, service: string) => c.stack === stack && c.service === service;

/** The first required rule the host breaks, in plain words. */
function broken(h: PlacementHost, ctx: Ctx): string | undefined {
  const on = ctx.byHost.get(h.id) ?? [];
  for (const r of ctx.rules.required) {
    const why = check(r, h, on);
    if (why) return why;
  }
  return undefined;
}

/**
 * The first of a service's host rules (labels, attributes) a host breaks,
 * in plain words, or undefined: whether a container there may stay when
 * its service changes (an upgrade whose constraints no longer allow the
 * host moves the slot). Container-label rules are not asked: the
 * container itself is among what they would count.
 */
export function hostBreaks(rules: PlacementRules, h: PlacementHost): string | undefined {
  for (const r of rules.required) {
    if (r.kind === "containerLabel") continue;
    const why = check(r, h, []);
    if (why) return why;
  }
  return undefined;
}

/** Why the host cannot take a new container of the service, or undefined when it can. */
function refusal(h: PlacementHost, ctx: Ctx): string | undefined {
  if (h.state !== "active") return h.state;
  const rule = broken(h, ctx);
  if (rule) return rule;
  const on = ctx.byHost.get(h.id) ?? [];
  for (const p of ctx.rules.ports) {
    if (on.some((c) => c.ports.includes(p) || (c.routedPorts ?? []).includes(p))) return `port ${p} in use`;
  }
  for (const p of ctx.rules.routedPorts) {
    if (on.some((c) => c.ports.includes(p) || (!sameService(c, ctx.stack, ctx.service) && (c.routedPorts ?? []).includes(p)))) return `port ${p} in use`;
  }
  const max = ctx.rules.maxPerHost;
  if (max) {
    const n = on.filter((c) => sameService(c, ctx.stack, ctx.service)).length;
    if (n >= max) return `already runs ${n} ${ctx.service} container${n === 1 ? "" : "s"} (max_replicas_per_node ${max})`;
  }
  return undefined;
}

const byId = (a: PlacementHost, b: PlacementHost) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

function indexPlaced(placed: Placed[]): Map<string, Placed[]> {
  const byHost = new Map<string, Placed[]>();
  for (const c of placed) {
    const list = byHost.get(c.host);
    if (list) list.push(c);
    else byHost.set(c.host, [c]);
  }
  return byHost;
}

interface Score {
  host: PlacementHost;
  met: Rule[];
  spread: number[];
  own: number;
  total: number;
}

function score(h: PlacementHost, ctx: Ctx, hosts: PlacementHost[]): Score {
  const on = ctx.byHost.get(h.id) ?? [];
  const met = ctx.rules.preferred.filter((r) => check(r, h, on) === undefined);
  const spread = ctx.rules.spreadOver.map((_, i) => {
    const keys = ctx.rules.spreadOver.slice(0, i + 1);
    const group = hosts.filter((o) => keys.every((k) => o.labels[k] === h.labels[k]));
    return group.reduce((n, o) => n + (ctx.byHost.get(o.id) ?? []).filter((c) => sameService(c, ctx.stack, ctx.service)).length, 0);
  });
  return { host: h, met, spread, own: on.filter((c) => sameService(c, ctx.stack, ctx.service)).length, total: on.length };
}

/** The keys a candidate is ranked by, best first: more preferences met, then emptier spread groups, then fewer own, then fewer overall. */
const keys = (s: Score): number[] => [-s.met.length, ...s.spread, s.own, s.total];

function compare(a: Score, b: Score): number {
  const ka = keys(a);
  const kb = keys(b);
  for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i]! - kb[i]!;
  return byId(a.host, b.host);
}

/**
 * Why the best candidate won, in the order of the keys: each key that ruled
 * out some other candidate still tied with it, then "first by id" if a tie was left.
 */
function explain(ranked: Score[], ctx: Ctx, hosts: PlacementHost[]): string {
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
    if (i === 0) return `meets preference${best.met.length === 1 ? "" : "s"} ${best.met.map((r) => (r.negate ? `not ${r.text}` : r.text)).join(", ")}`;
    if (i <= ctx.rules.spreadOver.length) return `${spreadGroup(i - 1)} has fewest ${ctx.service} containers (${best.spread[i - 1]})`;
    if (i === kb.length - 2) return `fewest ${ctx.service} containers (${best.own})`;
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
function nowhere(name: string, hosts: PlacementHost[], ctx: Ctx): string {
  if (hosts.length === 0) return `no host can run ${name}: no hosts are registered`;
  return `no host can run ${name}: ${hosts.map((h) => `${h.id}: ${refusal(h, ctx) ?? "fits"}`).join(", ")}`;
}

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
  const ctx: Ctx = { stack: request.stack, service: request.service, rules: request.rules, byHost: indexPlaced(placed) };
  const placements: Placement[] = [];
  for (const slot of [...request.slots].sort((a, b) => a - b)) {
    const fits = sorted.filter((h) => refusal(h, ctx) === undefined);
    if (fits.length === 0) return { placements, unplaced: { slot, reason: nowhere(`${request.service}-${slot}`, sorted, ctx) } };
    const ranked = fits.map((h) => score(h, ctx, sorted)).sort(compare);
    const best = ranked[0]!;
    placements.push({ slot, host: best.host.id, why: explain(ranked, ctx, sorted) });
    const c = newContainer(request, slot, best.host.id);
    ctx.byHost.set(c.host, [...(ctx.byHost.get(c.host) ?? []), c]);
  }
  return { placements };
}

export interface GlobalPlan {
  /** New containers: one for each host that fits and has none, with the lowest free slot numbers in host id order. */
  placements: Placement[];
  /** Hosts that get none, and why (not active, a rule, a port). */
  skipped: Array<{ host: string; reason: string }>;
  /** Containers of the service that should go: a second one on a host, or one on a host that no longer fits its rules. */
  surplus: Array<{ slot: number; host: string; reason: string }>;
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
