import type { PortSpec, ServiceSpec } from "./model.js";

/**
 * Published ports that the host agent routes (as Swarm's routing mesh does)
 * instead of Docker publishing them on one container: the agent holds the
 * host port and forwards each connection to a running, healthy container of
 * the service. That is what lets replicas share a port on one host and a
 * start-first upgrade hand over with no failed request.
 *
 * A TCP port is routed when it says `mode: ingress`, or when the service is
 * written the Swarm way (start-first updates, or deploy.replicas above one) and
 * the port does not say `mode: host`.
 */
export function routedPorts(spec: ServiceSpec): PortSpec[] {
  const swarmish = spec.deploy?.update_config?.order === "start-first" || (spec.deploy?.replicas ?? 1) > 1;
  return spec.ports.filter((p) => p.published !== undefined && p.protocol === "tcp" && (p.mode === "ingress" || (p.mode !== "host" && swarmish)));
}

/** Published ports Docker binds on the container itself. */
export function directPorts(spec: ServiceSpec): PortSpec[] {
  const routed = new Set(routedPorts(spec));
  return spec.ports.filter((p) => !routed.has(p));
}

/** The label a container carries for the agent's router: `60000:80,60001:81`. */
export const routesLabel = (spec: ServiceSpec): string =>
  routedPorts(spec)
    .map((p) => `${p.host_ip ? `${p.host_ip}:` : ""}${p.published}:${p.target}`)
    .join(",");

export interface Route {
  hostIp?: string;
  published: number;
  target: number;
}

export function parseRoutes(label: string | undefined): Route[] {
  if (!label) return [];
  return label.split(",").flatMap((part) => {
    const bits = part.split(":");
    const [target, published] = [Number(bits.pop()), Number(bits.pop())];
    const hostIp = bits.join(":");
    return Number.isInteger(target) && Number.isInteger(published) ? [{ ...(hostIp ? { hostIp } : {}), published, target }] : [];
  });
}
