import { describe, expect, it } from "vitest";
import { serviceSpecSchema } from "./model.js";
import { directPorts, parseRoutes, routedPorts, routesLabel } from "./ports.js";

const spec = (extra: Record<string, unknown>) => serviceSpecSchema.parse({ image: "web:1", environment: {}, labels: {}, ports: [], cap_add: [], cap_drop: [], scale: 1, ...extra });
const port = (published: number | undefined, extra: Record<string, unknown> = {}) => ({ target: 80, ...(published ? { published } : {}), protocol: "tcp", ...extra });

describe("which published ports the host agent routes", () => {
  it("a plain compose port is published by Docker on the container, as compose and Rancher do", () => {
    const s = spec({ ports: [port(60000)] });
    expect(routedPorts(s)).toEqual([]);
    expect(directPorts(s)).toEqual(s.ports);
  });

  it("mode: ingress, replicas, or start-first updates route it, as Swarm's routing mesh would; mode: host never", () => {
    expect(routedPorts(spec({ ports: [port(60000, { mode: "ingress" })] }))).toHaveLength(1);
    expect(routedPorts(spec({ scale: 2, deploy: { replicas: 2 }, ports: [port(60000)] }))).toHaveLength(1);
    expect(routedPorts(spec({ scale: 2, ports: [port(60000)] }))).toEqual([]); // Rancher's scale: one container per host, as before
    expect(routedPorts(spec({ deploy: { update_config: { order: "start-first" } }, ports: [port(60000)] }))).toHaveLength(1);
    expect(routedPorts(spec({ deploy: { replicas: 2 }, ports: [port(60000, { mode: "host" })] }))).toEqual([]);
  });

  it("only TCP ports with a host port are routed", () => {
    const s = spec({ deploy: { replicas: 2 }, ports: [port(60000, { protocol: "udp" }), port(undefined)] });
    expect(routedPorts(s)).toEqual([]);
    expect(directPorts(s)).toHaveLength(2);
  });

  it("the container label round-trips, host IP included", () => {
    const s = spec({ ports: [port(60000, { mode: "ingress" }), port(60001, { target: 81, host_ip: "127.0.0.1", mode: "ingress" })] });
    expect(routesLabel(s)).toBe("60000:80,127.0.0.1:60001:81");
    expect(parseRoutes(routesLabel(s))).toEqual([{ published: 60000, target: 80 }, { hostIp: "127.0.0.1", published: 60001, target: 81 }]);
    expect(parseRoutes(undefined)).toEqual([]);
  });
});
