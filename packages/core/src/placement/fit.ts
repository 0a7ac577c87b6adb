import { containerLabels } from "./rules.js";
import type { LocalImage, Placed, PlacementHost, PlacementRules, Rule } from "./types.js";

// whether a host can take a new container of a service, and if not, why

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
export function check(rule: Rule, h: PlacementHost, on: Placed[]): string | undefined {
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

/** A placement under way: the service, its rules, and the containers on each host so far. */
export interface Ctx {
  stack: string;
  service: string;
  rules: PlacementRules;
  byHost: Map<string, Placed[]>;
  /** See PlaceRequest.localImage. */
  localImage?: LocalImage;
}

export const sameService = (c: Placed, stack: string, service: string) => c.stack === stack && c.service === service;

/** The first required rule the host breaks, in plain words. */
export function broken(h: PlacementHost, ctx: Ctx): string | undefined {
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
export function refusal(h: PlacementHost, ctx: Ctx): string | undefined {
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

export const byId = (a: PlacementHost, b: PlacementHost) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

export function indexPlaced(placed: Placed[]): Map<string, Placed[]> {
  const byHost = new Map<string, Placed[]>();
  for (const c of placed) {
    const list = byHost.get(c.host);
    if (list) list.push(c);
    else byHost.set(c.host, [c]);
  }
  return byHost;
}
