import type { HostInfo } from "./decide/index.js";
import type { ComposeIssue, Origins } from "./compose/issues.js";
import type { RevisionService } from "./events.js";
import { pinnedDigest } from "./images.js";
import type { ServiceSpec } from "./model.js";
import { containerName, displayName } from "./names.js";
import { place, placementRules, type LocalImage, type Placed, type PlacementHost, type PlacementRules, type PlaceResult } from "./placement.js";
import type { StackState } from "./state.js";

/**
 * The decider's side of placement (placement.ts is the pure scheduler): what
 * a stack's state holds on its hosts, as `Placed`, and the hosts as the
 * scheduler sees them. The controller gives the decider the other stacks'
 * containers (`placed` on the commands that plan), from `stackPlaced` of
 * each of their states.
 */


/** Hosts as the scheduler sees them: a host without a state is active, one without labels has none. */
export const placementHosts = (hosts: HostInfo[]): PlacementHost[] =>
  hosts.map((h) => ({ id: h.id, ...(h.name ? { name: h.name } : {}), state: h.state ?? "active", labels: h.labels ?? {} }));

/** A service's placement rules; rules that do not read (a spec admitted before they were checked) are a reason. */
export function rulesOf(stack: string, service: string, spec: ServiceSpec): PlacementRules | { problem: string } {
  const rules = placementRules(spec, { stack, service });
  if ("problems" in rules) return { problem: `${service}: ${rules.problems.join("; ")}` };
  return rules;
}

/** Is this service global (one container per host: deploy.mode global, or io.corral.scheduler.global)? */
export function isGlobal(stack: string, service: string, spec: ServiceSpec): boolean {
  const rules = rulesOf(stack, service, spec);
  return "global" in rules && rules.global;
}

function placedOf(state: StackState, service: string, slot: number, host: string, spec: ServiceSpec | undefined): Placed {
  const rules = spec ? rulesOf(state.name, service, spec) : undefined;
  const own = Object.values(state.slotPorts?.[service]?.[String(slot)] ?? {});
  const ok = rules && !("problem" in rules) ? rules : undefined;
  return {
    stack: state.name,
    service,
    slot,
    host,
    labels: ok?.labels ?? {},
    ports: [...new Set([...(ok?.ports ?? []), ...own])].sort((a, b) => a - b),
    ...(ok?.routedPorts.length ? { routedPorts: ok.routedPorts } : {}),
  };
}

/**
 * What a stack holds on its hosts: its containers that stay (not an
 * upgrade's old one kept aside, stopped) and the containers its planned
 * create steps will make, with the host ports and labels of the spec they
 * were (or will be) made from. Scheduled jobs' runs come and go and are not
 * counted. Pure.
 */
export function stackPlaced(state: StackState): Placed[] {
  const out: Placed[] = [];
  const seen = new Set<string>();
  for (const c of Object.values(state.containers)) {
    if (c.previousOf) continue;
    seen.add(c.name);
    const spec = state.revisions[c.revision]?.services[c.service]?.spec ?? state.services[c.service]?.spec;
    out.push(placedOf(state, c.service, c.slot, c.host, spec));
  }
  if (state.op?.status === "running") {
    for (const r of Object.values(state.steps)) {
      const step = r.step;
      if (step.action !== "create" || r.status === "failed" || !step.container || seen.has(step.container) || step.slot === undefined) continue;
      seen.add(step.container);
      out.push(placedOf(state, step.service, step.slot, step.host, step.spec));
    }
  }
  return out;
}

/**
 * What placement knows of a service's image when no registry gives it (no
 * digest: built or loaded on some hosts), once some host could not pull it:
 * the hosts whose pull failed, and those it ran on (the revision pins it by
 * image id there). Undefined otherwise: with no host known to lack it, the
 * service spreads as any other (a site may load its images on every host).
 */
export function localImageOf(state: Pick<StackState, "lacking">, service: Pick<RevisionService, "spec" | "digest" | "ids">): LocalImage | undefined {
  if (pinnedDigest(service)) return undefined;
  const lacking = state.lacking?.[service.spec.image];
  if (!lacking?.length) return undefined;
  return { on: Object.keys(service.ids ?? {}).sort(), lacking };
}

/**
 * What `up` tells of services whose image no registry gives and that some
 * active host could not pull: where their new containers go, and how to run
 * them anywhere. A warning at the service's `image` key.
 */
export function localImageWarnings(state: Pick<StackState, "lacking" | "services">, active: string[], file: string, origins: Origins = {}): ComposeIssue[] {
  const out: ComposeIssue[] = [];
  for (const [name, service] of Object.entries(state.services)) {
    const image = localImageOf(state, service);
    const lacking = image?.lacking.filter((h) => active.includes(h)) ?? [];
    if (!image || lacking.length === 0 || service.spec.scale === 0) continue;
    const on = image.on.filter((h) => !lacking.includes(h));
    out.push({
      file: origins[name]?.image ?? file,
      path: `services.${name}.image`,
      reason:
        `${service.spec.image} has no registry digest (it was built or loaded on some hosts) and ${lacking.join(", ")} could not pull it: ` +
        `new ${name} containers go ${on.length ? `to ${on.join(", ")} (where it ran) first` : "to other hosts first"}; push it to a registry, or load it on every host, to run it on any host`,
    });
  }
  return out;
}

/** Place new slots of a service of this stack, beside `placed` (every stack's containers, this one's included). */
export function placeService(state: StackState, service: string, slots: number[], hosts: HostInfo[], placed: Placed[]): PlaceResult | { problem: string } {
  const current = state.services[service]!;
  const spec = current.spec;
  const rules = rulesOf(state.name, service, spec);
  if ("problem" in rules) return rules;
  const localImage = localImageOf(state, current);
  const result = place({ stack: state.name, service, slots, rules, ...(localImage ? { localImage } : {}) }, placementHosts(hosts), placed);
  if (!result.unplaced) return result;
  const name = displayName(containerName(state.name, service, result.unplaced.slot));
  if (hosts.length === 0) {
    const reason = `no host can run ${name}: no host is available: start 'corral server' or 'corral agent' on a Docker host`;
    return { ...result, unplaced: { slot: result.unplaced.slot, reason } };
  }
  // a port in use is said with the container that holds it (the first, by name)
  let reason = result.unplaced.reason
    .replace(`no host can run ${service}-${result.unplaced.slot}:`, `no host can run ${name}:`)
    .replace(/(?<=^|: |, )([^\s:,]+): port (\d+) in use/g, (text, host: string, port: string) => {
      const n = Number(port);
      const holders = [...placed, ...result.placements.map((x) => newPlaced(state, service, x.slot, x.host))]
        .filter((c) => c.host === host && (c.ports.includes(n) || (c.routedPorts ?? []).includes(n)))
        .map((c) => displayName(containerName(c.stack, c.service, c.slot)))
        .sort();
      return holders.length > 0 ? `${text} by ${holders[0]}` : text;
    });
  if (rules.ports.some((p) => reason.includes(`port ${p} in use`))) {
    const p = spec.ports.find((x) => x.published !== undefined && rules.ports.includes(x.published));
    reason +=
      `; a port written as HOST:CONTAINER is one container's per host: write it without the host port ("${p?.target ?? 80}")` +
      " to give each container its own, publish it with 'mode: ingress' to run replicas behind one port, or add a host";
  }
  return { ...result, unplaced: { slot: result.unplaced.slot, reason } };
}

/** A placement in the decider's terms: the new container of the slot, on a host, and why. */
export interface PlannedPlacement {
  service: string;
  slot: number;
  container: string;
  host: string;
  why: string;
}

export const newPlaced = (state: StackState, service: string, slot: number, host: string): Placed => placedOf(state, service, slot, host, state.services[service]?.spec);
