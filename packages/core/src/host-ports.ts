import type { PortSpec, ServiceSpec } from "./model.js";
import { routedPorts } from "./ports.js";

/**
 * Host ports given to each container, as compose and Rancher gave them: a
 * port written without a host port (`- "8080"`) gets a free port from the
 * site's range for every slot of its service, kept by the slot across
 * upgrades, rollbacks and restarts, and given back when the slot goes.
 * (`mode: ingress` without a host port is the service's one port instead,
 * routed by the host agent: see assignPorts.)
 */

/** A slot's ports: port key (`80/tcp`, `80/tcp#2` for a second entry of the same) → host port. */
export type SlotPorts = Record<string, number>;
/** A service's slots (as strings: `"1"`, `"2"`) → their ports. */
export type ServiceSlotPorts = Record<string, SlotPorts>;

/** What the API knows and the decider does not: the site's range, and the host ports other stacks hold. */
export interface PortPool {
  range: [number, number];
  /** Host ports held by other stacks (published, given to their slots, or reported by their containers). */
  taken: number[];
}

/** The ports of a service that each container gets its own host port for. */
export const perContainerPorts = (spec: ServiceSpec): PortSpec[] => spec.ports.filter((p) => p.published === undefined && p.mode !== "ingress");

/** Keys of those ports, in order: the target and protocol, numbered when the same one is written twice. */
export function perContainerKeys(spec: ServiceSpec): string[] {
  const seen = new Map<string, number>();
  return perContainerPorts(spec).map((p) => {
    const base = `${p.target}/${p.protocol}`;
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    return n === 1 ? base : `${base}#${n}`;
  });
}

/**
 * The spec a slot's container is made from: its own host ports filled in,
 * in `mode: host` (each container publishes its own; never routed). A port
 * the slot has none for stays without one, and the agent refuses it rather
 * than let the engine pick a port outside the site's range.
 */
export function withSlotPorts(spec: ServiceSpec, ports: SlotPorts | undefined): ServiceSpec {
  const keys = perContainerKeys(spec);
  if (keys.length === 0) return spec;
  let i = 0;
  return {
    ...spec,
    ports: spec.ports.map((p) => {
      if (p.published !== undefined || p.mode === "ingress") return p;
      const port = ports?.[keys[i++]!];
      return port === undefined ? p : { ...p, published: port, mode: "host" as const };
    }),
  };
}

/** Host ports a service publishes itself and asks for on every container (`8080:80`, not routed): one container per host. */
export const sharedHostPorts = (spec: ServiceSpec): number[] => {
  const routed = new Set(routedPorts(spec));
  return [...new Set(spec.ports.filter((p) => p.published !== undefined && !routed.has(p)).map((p) => p.published!))];
};

/** Every host port a stack's services hold: published in their specs (routed or not) and given to their slots up to their scale. */
export function portsOfServices(services: Record<string, { spec: ServiceSpec }>, slotPorts: Record<string, ServiceSlotPorts> | undefined): number[] {
  const out: number[] = [];
  for (const [name, { spec }] of Object.entries(services)) {
    for (const p of spec.ports) if (p.published !== undefined) out.push(p.published);
    for (const [slot, ports] of Object.entries(slotPorts?.[name] ?? {})) if (Number(slot) <= spec.scale) out.push(...Object.values(ports));
  }
  return out;
}

const sameSlots = (a: ServiceSlotPorts | undefined, b: ServiceSlotPorts) => JSON.stringify(sorted(a ?? {})) === JSON.stringify(sorted(b));
const sorted = (m: ServiceSlotPorts) =>
  Object.keys(m)
    .sort((x, y) => Number(x) - Number(y))
    .map((slot) => [slot, Object.entries(m[slot]!).sort(([x], [y]) => (x < y ? -1 : 1))]);

export type SlotPortsOutcome = { changed: Record<string, ServiceSlotPorts> } | { problem: string };

/**
 * Give every slot of every service (1..scale) a host port for each of its
 * per-container ports. A slot keeps the port it has while that port is in
 * the range and nobody else holds it; new slots take the lowest free ports,
 * services in name order, slots in order: the same input gives the same
 * answer. Slots above the scale, and keys the spec no longer has, give
 * theirs back. `changed`: the services whose map is not what it was.
 * Pure.
 */
export function assignSlotPorts(services: Record<string, { spec: ServiceSpec }>, current: Record<string, ServiceSlotPorts> | undefined, pool: PortPool): SlotPortsOutcome {
  const [from, to] = pool.range;
  const held = new Set(pool.taken);
  // a host port the stack publishes as written is nobody's to be given
  for (const { spec } of Object.values(services)) for (const p of spec.ports) if (p.published !== undefined) held.add(p.published);
  const names = Object.keys(services).sort();
  const next: Record<string, ServiceSlotPorts> = {};
  const wanted: Array<{ service: string; slot: string; key: string }> = [];
  // first every slot keeps what it has (so that a new slot never takes an older one's port), then the rest is given out
  for (const service of names) {
    const { spec } = services[service]!;
    const keys = perContainerKeys(spec);
    const map: ServiceSlotPorts = {};
    for (let slot = 1; slot <= spec.scale && keys.length > 0; slot++) {
      const had = current?.[service]?.[String(slot)] ?? {};
      const ports: SlotPorts = {};
      for (const key of keys) {
        const port = had[key];
        if (port !== undefined && port >= from && port <= to && !held.has(port)) {
          ports[key] = port;
          held.add(port);
        } else wanted.push({ service, slot: String(slot), key });
      }
      map[String(slot)] = ports;
    }
    next[service] = map;
  }
  let n = from;
  for (const w of wanted) {
    while (n <= to && held.has(n)) n++;
    if (n > to) {
      return { problem: `${w.service}: slot ${w.slot} needs a host port for ${w.key.replace(/#\d+$/, "")}: no free port left in ${from}-${to}` };
    }
    next[w.service]![w.slot]![w.key] = n;
    held.add(n);
  }
  const changed: Record<string, ServiceSlotPorts> = {};
  for (const service of new Set([...names, ...Object.keys(current ?? {})])) {
    const map = next[service] ?? {};
    const empty = Object.keys(map).length === 0;
    if (empty && !current?.[service]) continue;
    if (!sameSlots(current?.[service], map)) changed[service] = map;
  }
  return { changed };
}
