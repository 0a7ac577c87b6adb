import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ServiceSpec } from "./model.js";
import { containerLabels, globalSlots, isSchedulingLabel, place, placementRules, type Placed, type PlacementHost, type PlacementRules } from "./placement.js";
import { spec } from "./testing.js";

const host = (id: string, labels: Record<string, string> = {}, state: PlacementHost["state"] = "active", name?: string): PlacementHost => ({ id, state, labels, ...(name ? { name } : {}) });
const running = (service: string, slot: number, on: string, extra: Partial<Placed> = {}): Placed => ({ stack: "demo", service, slot, host: on, labels: {}, ports: [], ...extra });

function rulesOf(s: ServiceSpec, service = "web", stack = "demo"): PlacementRules {
  const r = placementRules(s, { stack, service });
  if ("problems" in r) throw new Error(r.problems.join("; "));
  return r;
}
const problemsOf = (s: ServiceSpec) => {
  const r = placementRules(s, { stack: "demo", service: "web" });
  return "problems" in r ? r.problems : [];
};
const web = (extra: Partial<ServiceSpec> = {}) => spec("nginx", extra);
const placement = (constraints: string[], more: NonNullable<ServiceSpec["deploy"]>["placement"] = {}) => web({ deploy: { placement: { constraints, ...more } } });
const labelled = (labels: Record<string, string>) => web({ labels });

/** given hosts and containers, when slots of web are placed: where each lands. */
const where = (s: ServiceSpec, hosts: PlacementHost[], placed: Placed[] = [], slots = [1]) => place({ stack: "demo", service: "web", slots, rules: rulesOf(s) }, hosts, placed);
const hostsOf = (s: ServiceSpec, hosts: PlacementHost[], placed: Placed[] = [], slots = [1]) => where(s, hosts, placed, slots).placements.map((p) => p.host);

describe("spread by default", () => {
  it("puts a container on the host with fewest of the service, then fewest overall", () => {
    const placed = [running("web", 1, "h1"), running("db", 1, "h2"), running("db", 2, "h2"), running("cache", 1, "h3")];
    const r = where(web(), [host("h1"), host("h2"), host("h3")], placed, [2]);
    expect(r.placements).toEqual([{ slot: 2, host: "h3", why: "h3: fewest web containers (0), then fewest overall (1)" }]);
  });

  it("says the service's own count decided when it did", () => {
    const placed = [running("web", 1, "h1")];
    expect(where(web(), [host("h1"), host("h2")], placed, [2]).placements[0]!.why).toBe("h2: fewest web containers (0)");
  });

  it("names only the keys that ruled a host out", () => {
    const placed = [running("db", 1, "h1"), running("db", 2, "h1"), running("db", 1, "h2")];
    expect(where(web(), [host("h1"), host("h2")], placed).placements[0]!.why).toBe("h2: fewest overall (1)");
  });

  it("breaks a full tie by the lowest host id", () => {
    expect(where(web(), [host("h2"), host("h1")]).placements).toEqual([{ slot: 1, host: "h1", why: "h1: first by id among equals (0 web containers, 0 overall)" }]);
  });

  it("spreads replicas placed in one call, one per host", () => {
    expect(hostsOf(web(), [host("h1"), host("h2"), host("h3")], [], [1, 2, 3])).toEqual(["h1", "h2", "h3"]);
    expect(hostsOf(web(), [host("h1"), host("h2")], [], [1, 2, 3, 4])).toEqual(["h1", "h2", "h1", "h2"]);
  });

  it("places slots lowest first, whatever order they are asked in", () => {
    expect(where(web(), [host("h1"), host("h2")], [], [3, 1]).placements.map((p) => `${p.slot}@${p.host}`)).toEqual(["1@h1", "3@h2"]);
  });

  it("counts other stacks' containers in 'overall'", () => {
    const placed = [running("web", 1, "h1", { stack: "other" })];
    expect(where(web(), [host("h1"), host("h2")]).placements[0]!.host).toBe("h1");
    expect(where(web(), [host("h1"), host("h2")], placed).placements[0]!.host).toBe("h2");
  });

  it("explains a lone candidate with what rules out the others", () => {
    const r = where(web(), [host("h1", {}, "draining"), host("h2"), host("h3", {}, "disconnected")]);
    expect(r.placements).toEqual([{ slot: 1, host: "h2", why: "h2: the only host that fits (h1: draining, h3: disconnected)" }]);
  });
});

describe("a local image (no registry digest) some host could not pull", () => {
  const local = (s: ServiceSpec, hosts: PlacementHost[], on: string[], lacking: string[], placed: Placed[] = [], slots = [1]) =>
    place({ stack: "demo", service: "web", slots, rules: rulesOf(s), localImage: { on, lacking } }, hosts, placed);

  it("keeps new containers on the hosts it ran on, before spreading, and says why", () => {
    const r = local(web(), [host("h1"), host("h2"), host("h3")], ["h2"], ["h1"], [running("web", 1, "h2")], [2, 3]);
    expect(r.placements.map((p) => p.host)).toEqual(["h2", "h2"]);
    expect(r.placements[0]!.why).toBe("h2: ran the web image before (no registry has it, and h1 could not pull it)");
  });

  it("tries a host not known either way before one that lacks it", () => {
    const r = local(web(), [host("h1"), host("h2"), host("h3")], [], ["h1"]);
    expect(r.placements).toEqual([{ slot: 1, host: "h2", why: "h2: h1 could not pull the web image (no registry has it), then first by id" }]);
  });

  it("spreads over the hosts it ran on", () => {
    expect(local(web(), [host("h1"), host("h2"), host("h3")], ["h1", "h3"], ["h2"], [], [1, 2, 3, 4]).placements.map((p) => p.host)).toEqual(["h1", "h3", "h1", "h3"]);
  });

  it("ranks the image before the service's soft preferences", () => {
    const s = web({ labels: { "io.rancher.scheduler.affinity:host_label_soft": "zone=a" } });
    expect(local(s, [host("h1", { zone: "a" }), host("h2", { zone: "b" })], ["h2"], ["h1"]).placements[0]!.host).toBe("h2");
  });

  it("goes to a host that lacked it when no other fits, and says so", () => {
    const s = web({ deploy: { placement: { max_replicas_per_node: 1 } } });
    const r = local(s, [host("h1"), host("h2")], ["h1"], ["h2"], [running("web", 1, "h1")], [2]);
    expect(r.placements).toEqual([{ slot: 2, host: "h2", why: "h2: the only host that fits (h1: already runs 1 web container (max_replicas_per_node 1)); h2 could not pull the web image before (no registry has it)" }]);
  });
});

describe("host states", () => {
  it("takes new containers on active hosts only", () => {
    const hosts = [host("h1", {}, "disconnected"), host("h2", {}, "draining"), host("h3", {}, "inactive"), host("h4")];
    expect(hostsOf(web(), hosts, [], [1, 2])).toEqual(["h4", "h4"]);
  });

  it("says per host why nothing fits", () => {
    const r = where(web(), [host("h1", {}, "disconnected"), host("h2", {}, "draining")], [], [3]);
    expect(r).toEqual({ placements: [], unplaced: { slot: 3, reason: "no host can run web-3: h1: disconnected, h2: draining" } });
  });

  it("says so when there are no hosts at all", () => {
    expect(where(web(), []).unplaced).toEqual({ slot: 1, reason: "no host can run web-1: no hosts are registered" });
  });
});

describe("host ports", () => {
  const p8080 = web({ ports: [{ target: 80, published: 8080, protocol: "tcp" }] });

  it("publishes a host port once per host", () => {
    expect(hostsOf(p8080, [host("h1"), host("h2")], [], [1, 2])).toEqual(["h1", "h2"]);
  });

  it("names the clash and the missing label in one reason, per host (the issue's example)", () => {
    const s = web({ ports: [{ target: 80, published: 8080, protocol: "tcp" }], deploy: { placement: { constraints: ["node.labels.zone==b"] } } });
    const placed = [running("api", 1, "h1", { stack: "other", ports: [8080] })];
    const r = where(s, [host("h1", { zone: "b" }), host("h2", { zone: "a" })], placed, [3]);
    expect(r.unplaced).toEqual({ slot: 3, reason: "no host can run web-3: h1: port 8080 in use, h2: label zone=b missing" });
  });

  it("stops at the first slot that does not fit and keeps the ones before", () => {
    const r = where(p8080, [host("h1"), host("h2")], [], [1, 2, 3, 4]);
    expect(r.placements.map((p) => p.host)).toEqual(["h1", "h2"]);
    expect(r.unplaced).toEqual({ slot: 3, reason: "no host can run web-3: h1: port 8080 in use, h2: port 8080 in use" });
  });

  it("lets replicas of one service share a routed port on a host, but not another service", () => {
    const routed = web({ ports: [{ target: 80, published: 8080, protocol: "tcp", mode: "ingress" }] });
    expect(rulesOf(routed)).toMatchObject({ ports: [], routedPorts: [8080] });
    expect(hostsOf(routed, [host("h1")], [running("web", 1, "h1", { routedPorts: [8080] })], [2])).toEqual(["h1"]);
    expect(where(routed, [host("h1")], [running("api", 1, "h1", { routedPorts: [8080] })]).unplaced?.reason).toBe("no host can run web-1: h1: port 8080 in use");
    expect(where(routed, [host("h1")], [running("api", 1, "h1", { ports: [8080] })]).unplaced?.reason).toBe("no host can run web-1: h1: port 8080 in use");
    expect(where(p8080, [host("h1")], [running("api", 1, "h1", { routedPorts: [8080] })]).unplaced?.reason).toBe("no host can run web-1: h1: port 8080 in use");
  });

  it("ignores ports without a published host port", () => {
    expect(rulesOf(web({ ports: [{ target: 80, protocol: "tcp" }] })).ports).toEqual([]);
  });
});

describe("Swarm constraints", () => {
  const hosts = [host("h1", { zone: "a" }), host("h2", { zone: "b", role: "manager" }, "active", "db-box"), host("h3")];

  it("node.labels.K==V requires the label", () => {
    expect(hostsOf(placement(["node.labels.zone==b"]), hosts)).toEqual(["h2"]);
  });

  it("node.labels.K!=V excludes it, and a host without K passes", () => {
    expect(hostsOf(placement(["node.labels.zone!=a"]), hosts, [], [1, 2])).toEqual(["h2", "h3"]);
  });

  it("engine.labels reads the same host labels", () => {
    expect(hostsOf(placement(["engine.labels.zone == a"]), hosts)).toEqual(["h1"]);
  });

  it("node.hostname is the host's name, its id when it has none", () => {
    expect(hostsOf(placement(["node.hostname==db-box"]), hosts)).toEqual(["h2"]);
    expect(hostsOf(placement(["node.hostname==h3"]), hosts)).toEqual(["h3"]);
    expect(where(placement(["node.hostname!=h1", "node.hostname!=db-box", "node.hostname!=h3"]), hosts).unplaced?.reason).toBe(
      "no host can run web-1: h1: node.hostname is h1, h2: node.hostname is db-box, h3: node.hostname is h3",
    );
  });

  it("node.id is the host's id", () => {
    expect(hostsOf(placement(["node.id==h2"]), hosts)).toEqual(["h2"]);
    expect(where(placement(["node.id==h9"]), [host("h1")]).unplaced?.reason).toBe("no host can run web-1: h1: node.id is h1, not h9");
  });

  it("node.role is manager only on a host labelled role=manager", () => {
    expect(hostsOf(placement(["node.role==manager"]), hosts)).toEqual(["h2"]);
    expect(hostsOf(placement(["node.role==worker"]), hosts, [], [1, 2])).toEqual(["h1", "h3"]);
    expect(where(placement(["node.role==manager"]), [host("h1")]).unplaced?.reason).toBe("no host can run web-1: h1: node.role is worker, not manager");
  });

  it("node.platform.os is linux unless labelled; arch comes from the label", () => {
    expect(hostsOf(placement(["node.platform.os==linux"]), [host("h1")])).toEqual(["h1"]);
    expect(hostsOf(placement(["node.platform.arch==arm64"]), [host("h1", { "platform.arch": "x86_64" }), host("h2", { "platform.arch": "arm64" })])).toEqual(["h2"]);
    expect(where(placement(["node.platform.arch==arm64"]), [host("h1")]).unplaced?.reason).toBe("no host can run web-1: h1: node.platform.arch is unset, not arm64");
  });

  it("all constraints hold at once; the reason gives each host's first broken one", () => {
    const r = where(placement(["node.labels.zone==a", "node.role==manager"]), hosts);
    expect(r.unplaced?.reason).toBe("no host can run web-1: h1: node.role is worker, not manager, h2: label zone=a missing, h3: label zone=a missing");
  });

  it("max_replicas_per_node caps the service's containers on a host", () => {
    const s = placement([], { max_replicas_per_node: 1 });
    expect(hostsOf(s, [host("h1"), host("h2")], [], [1, 2])).toEqual(["h1", "h2"]);
    expect(where(s, [host("h1"), host("h2")], [], [1, 2, 3]).unplaced?.reason).toBe(
      "no host can run web-3: h1: already runs 1 web container (max_replicas_per_node 1), h2: already runs 1 web container (max_replicas_per_node 1)",
    );
    expect(rulesOf(placement([], { max_replicas_per_node: 0 })).maxPerHost).toBeUndefined();
  });

  it("max_replicas_per_node counts only this stack's service of that name", () => {
    const s = placement([], { max_replicas_per_node: 1 });
    expect(hostsOf(s, [host("h1")], [running("web", 1, "h1", { stack: "other" })])).toEqual(["h1"]);
  });

  it("refuses constraints it cannot read, naming the key", () => {
    expect(problemsOf(placement(["node.labels.zone=a"]))).toEqual([
      'deploy.placement.constraints[0]: "node.labels.zone=a" is not a constraint (write node.labels.KEY==VALUE, node.hostname!=NAME, node.role==manager, ...)',
    ]);
    expect(problemsOf(placement(["node.ip==10.0.0.1"]))[0]).toMatch(/^deploy\.placement\.constraints\[0\]: "node\.ip" is not a constraint corral knows/);
    expect(problemsOf(placement(["node.id==h1", "node.role==boss"]))).toEqual(['deploy.placement.constraints[1]: node.role is manager or worker, not "boss"']);
    expect(problemsOf(placement([], { max_replicas_per_node: -1 }))).toEqual(["deploy.placement.max_replicas_per_node: must be 0 (no limit) or more, not -1"]);
  });
});

describe("spread preferences", () => {
  const zoned = [host("a1", { zone: "a" }), host("a2", { zone: "a" }), host("b1", { zone: "b" })];
  const spread = (...labels: string[]) => placement([], { preferences: labels.map((l) => ({ spread: `node.labels.${l}` })) });

  it("evens out the service over the values of the label before the default rule", () => {
    // without the preference, a1 a2 b1; with it, zone a and zone b take turns
    expect(hostsOf(web(), zoned, [], [1, 2, 3])).toEqual(["a1", "a2", "b1"]);
    expect(hostsOf(spread("zone"), zoned, [], [1, 2, 3, 4])).toEqual(["a1", "b1", "a2", "b1"]);
  });

  it("says the zone decided", () => {
    const r = where(spread("zone"), zoned, [running("web", 1, "a1")], [2]);
    expect(r.placements[0]).toEqual({ slot: 2, host: "b1", why: "b1: zone=b has fewest web containers (0)" });
  });

  it("treats hosts without the label as one group", () => {
    const hosts = [host("a1", { zone: "a" }), host("x1"), host("x2")];
    expect(hostsOf(spread("zone"), hosts, [], [1, 2, 3, 4])).toEqual(["a1", "x1", "x2", "a1"]);
    expect(where(spread("zone"), hosts, [running("web", 1, "a1")], [2]).placements[0]!.why).toBe("x1: no zone label has fewest web containers (0), then first by id");
  });

  it("nests several preferences, outermost first", () => {
    const hosts = [host("a-r1", { zone: "a", rack: "1" }), host("a-r2", { zone: "a", rack: "2" }), host("b-r1", { zone: "b", rack: "1" })];
    const placed = [running("web", 1, "a-r1"), running("web", 2, "b-r1")];
    const r = where(spread("zone", "rack"), hosts, placed, [3]);
    expect(r.placements[0]).toEqual({ slot: 3, host: "a-r2", why: "a-r2: zone=a, rack=2 has fewest web containers (0)" });
  });

  it("refuses a spread that is not over a label", () => {
    expect(problemsOf(placement([], { preferences: [{ spread: "node.hostname" }] }))).toEqual(['deploy.placement.preferences[0].spread: "node.hostname" is not node.labels.KEY']);
  });
});

describe("Rancher host labels", () => {
  const hosts = [host("h1", { zone: "a", ssd: "true" }), host("h2", { zone: "b", ssd: "true" }), host("h3", { zone: "b" })];

  it("host_label requires every pair", () => {
    expect(hostsOf(labelled({ "io.corral.scheduler.affinity:host_label": "zone=b, ssd=true" }), hosts, [], [1, 2])).toEqual(["h2", "h2"]);
  });

  it("host_label_ne excludes a host with any of the pairs", () => {
    expect(hostsOf(labelled({ "io.corral.scheduler.affinity:host_label_ne": "zone=a,ssd=true" }), hosts)).toEqual(["h3"]);
    expect(where(labelled({ "io.corral.scheduler.affinity:host_label_ne": "zone=a,zone=b" }), hosts).unplaced?.reason).toBe(
      "no host can run web-1: h1: has label zone=a, h2: has label zone=b, h3: has label zone=b",
    );
  });

  it("reads io.rancher.scheduler.* the same way", () => {
    expect(hostsOf(labelled({ "io.rancher.scheduler.affinity:host_label": "zone=a" }), hosts)).toEqual(["h1"]);
  });

  it("host_label_soft prefers hosts with the label, and falls back when none has it", () => {
    const s = labelled({ "io.corral.scheduler.affinity:host_label_soft": "zone=b" });
    expect(hostsOf(s, hosts, [], [1, 2, 3])).toEqual(["h2", "h3", "h2"]);
    expect(where(s, hosts).placements[0]!.why).toBe("h2: meets preference zone=b, then first by id");
    expect(where(s, [host("h1", { zone: "a" }), host("h2", { zone: "b" })]).placements[0]!.why).toBe("h2: meets preference zone=b");
    expect(hostsOf(labelled({ "io.corral.scheduler.affinity:host_label_soft": "zone=c" }), hosts)).toEqual(["h1"]);
  });

  it("host_label_soft_ne avoids hosts with the label while others fit", () => {
    const s = labelled({ "io.corral.scheduler.affinity:host_label_soft_ne": "ssd=true" });
    expect(hostsOf(s, hosts, [], [1, 2])).toEqual(["h3", "h3"]);
    expect(where(s, hosts).placements[0]!.why).toBe("h3: meets preference not ssd=true");
  });

  it("more preferences met rank first", () => {
    const s = labelled({ "io.corral.scheduler.affinity:host_label_soft": "zone=b,ssd=true" });
    expect(hostsOf(s, hosts, [], [1, 2])).toEqual(["h2", "h2"]);
  });

  it("refuses bad label text, naming the key", () => {
    expect(problemsOf(labelled({ "io.corral.scheduler.affinity:host_label": "zone" }))).toEqual(['labels.io.corral.scheduler.affinity:host_label: "zone" is not key=value']);
    expect(problemsOf(labelled({ "io.corral.scheduler.affinity:host_label": " , " }))).toEqual(["labels.io.corral.scheduler.affinity:host_label: needs key=value pairs, comma-separated"]);
    expect(problemsOf(labelled({ "io.corral.scheduler.affinity:host_labels": "a=b" }))[0]).toMatch(/^labels\.io\.corral\.scheduler\.affinity:host_labels: unknown scheduling label/);
    expect(problemsOf(labelled({ "io.rancher.scheduler.global": "yes" }))).toEqual(['labels.io.rancher.scheduler.global: must be "true" or "false", not "yes"']);
  });

  it("leaves other labels alone", () => {
    expect(problemsOf(labelled({ "com.example.zone": "x", "io.rancher.container.pull_image": "always" }))).toEqual([]);
  });
});

describe("Rancher container labels", () => {
  const hosts = [host("h1"), host("h2"), host("h3")];
  const db = [running("db", 1, "h2")];

  it("container_label with io.corral.service=NAME runs beside that service of the same stack", () => {
    const s = labelled({ "io.corral.scheduler.affinity:container_label": "io.corral.service=db" });
    expect(hostsOf(s, hosts, db, [1, 2])).toEqual(["h2", "h2"]);
    expect(where(s, hosts, [running("db", 1, "h2", { stack: "other" })]).unplaced?.reason).toBe(
      "no host can run web-1: h1: no container with io.corral.service=db, h2: no container with io.corral.service=db, h3: no container with io.corral.service=db",
    );
  });

  it("io.corral.service=STACK/NAME and Rancher's io.rancher.stack_service.name name another stack's", () => {
    const other = [running("db", 1, "h3", { stack: "other" })];
    expect(hostsOf(labelled({ "io.corral.scheduler.affinity:container_label": "io.corral.service=other/db" }), hosts, other)).toEqual(["h3"]);
    expect(hostsOf(labelled({ "io.rancher.scheduler.affinity:container_label": "io.rancher.stack_service.name=other/db" }), hosts, other)).toEqual(["h3"]);
    expect(hostsOf(labelled({ "io.rancher.scheduler.affinity:container_label": "io.rancher.stack.name=other" }), hosts, other)).toEqual(["h3"]);
  });

  it("matches a container's own labels", () => {
    const placed = [running("cache", 1, "h3", { labels: { tier: "fast" } })];
    expect(hostsOf(labelled({ "io.corral.scheduler.affinity:container_label": "tier=fast" }), hosts, placed)).toEqual(["h3"]);
  });

  it("container_label_ne with ${stack_name}/${service_name} keeps one per host, in one call too", () => {
    const s = labelled({ "io.rancher.scheduler.affinity:container_label_ne": "io.rancher.stack_service.name=${stack_name}/${service_name}" });
    const r = where(s, [host("h1"), host("h2")], [], [1, 2, 3]);
    expect(r.placements.map((p) => p.host)).toEqual(["h1", "h2"]);
    expect(r.unplaced?.reason).toBe(
      "no host can run web-3: h1: runs a container with io.rancher.stack_service.name=demo/web, h2: runs a container with io.rancher.stack_service.name=demo/web",
    );
  });

  it("container_label_soft and _soft_ne are preferences", () => {
    expect(hostsOf(labelled({ "io.corral.scheduler.affinity:container_label_soft": "io.corral.service=db" }), hosts, db)).toEqual(["h2"]);
    expect(hostsOf(labelled({ "io.corral.scheduler.affinity:container_label_soft": "io.corral.service=nope" }), hosts, db)).toEqual(["h1"]);
    expect(hostsOf(labelled({ "io.corral.scheduler.affinity:container_label_soft_ne": "io.corral.service=db" }), [host("h2"), host("h3")], [running("db", 1, "h3"), running("x", 1, "h2"), running("y", 2, "h2")])).toEqual(["h2"]);
  });

  it("corral's own labels win over a container label of the same name", () => {
    expect(containerLabels({ stack: "demo", service: "web", labels: { "io.corral.stack": "forged", tier: "x" } })).toEqual({
      tier: "x",
      "io.corral.stack": "demo",
      "io.corral.service": "web",
      "io.corral.stack_service": "demo/web",
    });
  });

  it("a new container carries its service's labels for the next slot's rules", () => {
    const s = labelled({ tier: "fast", "io.corral.scheduler.affinity:container_label_ne": "tier=fast" });
    expect(rulesOf(s).labels).toEqual({ tier: "fast" });
    expect(hostsOf(s, [host("h1"), host("h2")], [], [1, 2])).toEqual(["h1", "h2"]);
  });
});

describe("rule building", () => {
  it("merges labels and deploy into one rule set", () => {
    const s = web({
      labels: { "io.corral.scheduler.affinity:host_label": "ssd=true", "io.corral.scheduler.affinity:host_label_soft_ne": "zone=c" },
      deploy: { placement: { constraints: ["node.labels.zone!=d"], preferences: [{ spread: "node.labels.zone" }], max_replicas_per_node: 2 } },
      ports: [{ target: 80, published: 8080, protocol: "tcp" }, { target: 81, published: 8080, protocol: "udp" }],
    });
    expect(rulesOf(s)).toEqual({
      required: [
        { kind: "hostLabel", key: "ssd", value: "true", negate: false, text: "ssd=true", from: "labels.io.corral.scheduler.affinity:host_label" },
        { kind: "hostLabel", key: "zone", value: "d", negate: true, text: "node.labels.zone!=d", from: "deploy.placement.constraints[0]" },
      ],
      preferred: [{ kind: "hostLabel", key: "zone", value: "c", negate: true, text: "zone=c", from: "labels.io.corral.scheduler.affinity:host_label_soft_ne" }],
      spreadOver: ["zone"],
      maxPerHost: 2,
      global: false,
      ports: [8080],
      routedPorts: [],
      labels: {},
    });
  });

  it("global from the label or from deploy.mode, and a contradiction is a problem", () => {
    expect(rulesOf(labelled({ "io.corral.scheduler.global": "true" })).global).toBe(true);
    expect(rulesOf(labelled({ "io.rancher.scheduler.global": "TRUE" })).global).toBe(true);
    expect(rulesOf(web({ deploy: { mode: "global" } })).global).toBe(true);
    expect(rulesOf(web({ deploy: { mode: "replicated" } })).global).toBe(false);
    expect(problemsOf(web({ labels: { "io.corral.scheduler.global": "true" }, deploy: { mode: "replicated" } }))).toEqual([
      'deploy.mode: replicated, but labels.io.corral.scheduler.global says "true"',
    ]);
  });

  it("refuses the two global labels saying different things", () => {
    expect(problemsOf(labelled({ "io.corral.scheduler.global": "true", "io.rancher.scheduler.global": "false" }))).toEqual([
      'labels.io.rancher.scheduler.global: says "false", but labels.io.corral.scheduler.global says "true"',
    ]);
  });

  it("does not take an inherited property for a constraint attribute", () => {
    expect(problemsOf(placement(["constructor==x"]))[0]).toMatch(/"constructor" is not a constraint corral knows/);
  });

  it("reports every problem, not just the first", () => {
    const s = web({ labels: { "io.corral.scheduler.affinity:host_label": "x" }, deploy: { placement: { constraints: ["bogus"] } } });
    expect(problemsOf(s)).toHaveLength(2);
  });

  it("knows its labels for compose validation", () => {
    expect(isSchedulingLabel("io.corral.scheduler.affinity:host_label")).toBe(true);
    expect(isSchedulingLabel("io.rancher.scheduler.global")).toBe(true);
    expect(isSchedulingLabel("io.corral.stack")).toBe(false);
  });
});

describe("global services", () => {
  const global = (extra: Partial<ServiceSpec> = {}) => ({ stack: "demo", service: "agent", rules: rulesOf(web({ deploy: { mode: "global" }, ...extra }), "agent") });

  it("places one on every active host that fits, lowest free slots in host id order", () => {
    const hosts = [host("h3"), host("h1"), host("h2", {}, "draining"), host("h4")];
    const plan = globalSlots(global(), hosts, [running("agent", 1, "h3")]);
    expect(plan).toEqual({
      placements: [
        { slot: 2, host: "h1", why: "h1: global, one agent container per host" },
        { slot: 3, host: "h4", why: "h4: global, one agent container per host" },
      ],
      skipped: [{ host: "h2", reason: "draining" }],
      surplus: [],
    });
  });

  it("leaves a draining host: its container is surplus; an inactive or disconnected host keeps its own", () => {
    const hosts = [host("h1", {}, "draining"), host("h2", {}, "inactive"), host("h3", {}, "disconnected"), host("h4")];
    const plan = globalSlots(global(), hosts, [running("agent", 1, "h1"), running("agent", 2, "h2"), running("agent", 3, "h3"), running("agent", 4, "h4")]);
    expect(plan).toEqual({ placements: [], skipped: [], surplus: [{ slot: 1, host: "h1", reason: "h1: draining" }] });
  });

  it("skips hosts that break a rule or have the port taken, saying why", () => {
    const g = global({ ports: [{ target: 80, published: 9100, protocol: "tcp" }], deploy: { mode: "global", placement: { constraints: ["node.labels.mon==yes"] } } });
    const plan = globalSlots(g, [host("h1", { mon: "yes" }), host("h2"), host("h3", { mon: "yes" })], [running("api", 1, "h3", { ports: [9100] })]);
    expect(plan.placements.map((p) => p.host)).toEqual(["h1"]);
    expect(plan.skipped).toEqual([
      { host: "h2", reason: "label mon=yes missing" },
      { host: "h3", reason: "port 9100 in use" },
    ]);
  });

  it("its own containers do not count against its ports or a not-with-myself rule", () => {
    const g = global({ labels: { "io.corral.scheduler.affinity:container_label_ne": "io.corral.service=agent" }, ports: [{ target: 80, published: 9100, protocol: "tcp" }] });
    const plan = globalSlots(g, [host("h1"), host("h2")], [running("agent", 1, "h1", { ports: [9100] })]);
    expect(plan).toEqual({ placements: [{ slot: 2, host: "h2", why: "h2: global, one agent container per host" }], skipped: [], surplus: [] });
  });

  it("reports a second container on a host, one on a host that no longer fits, and one on an unknown host as surplus", () => {
    const g = global({ deploy: { mode: "global", placement: { constraints: ["node.labels.mon==yes"] } } });
    const placed = [running("agent", 1, "h1"), running("agent", 2, "h1"), running("agent", 3, "h2"), running("agent", 4, "gone")];
    const plan = globalSlots(g, [host("h1", { mon: "yes" }), host("h2")], placed);
    expect(plan).toEqual({
      placements: [],
      skipped: [],
      surplus: [
        { slot: 2, host: "h1", reason: "h1: a second agent container (global: one per host)" },
        { slot: 3, host: "h2", reason: "h2: label mon=yes missing" },
        { slot: 4, host: "gone", reason: "gone: not a registered host" },
      ],
    });
  });

  it("leaves a container on a host that is not active where it is", () => {
    const plan = globalSlots(global(), [host("h1", {}, "disconnected")], [running("agent", 1, "h1")]);
    expect(plan).toEqual({ placements: [], skipped: [], surplus: [] });
  });
});

// ---- properties -------------------------------------------------------------

const labelArb = fc.dictionary(fc.constantFrom("zone", "ssd", "role", "tier"), fc.constantFrom("a", "b", "true", "manager"), { maxKeys: 3 });
const hostsArb = fc
  .uniqueArray(
    fc.record({
      id: fc.constantFrom("h1", "h2", "h3", "h4", "h5", "h6"),
      state: fc.constantFrom<PlacementHost["state"]>("active", "active", "active", "draining", "disconnected", "inactive"),
      labels: labelArb,
      name: fc.option(fc.constantFrom("alpha", "beta"), { nil: undefined }),
    }),
    { selector: (h) => h.id, minLength: 0, maxLength: 6 },
  )
  .map((hs) => hs.map(({ name, ...h }): PlacementHost => (name ? { ...h, name } : h)));
const placedArb: fc.Arbitrary<Placed[]> = fc.array(
  fc.record({
    stack: fc.constantFrom("demo", "other"),
    service: fc.constantFrom("web", "db", "cache"),
    slot: fc.integer({ min: 1, max: 5 }),
    host: fc.constantFrom("h1", "h2", "h3", "h4", "h5", "h6", "h7"),
    labels: fc.dictionary(fc.constantFrom("tier"), fc.constantFrom("fast", "slow"), { maxKeys: 1 }),
    ports: fc.subarray([8080, 9000]),
  }),
  { maxLength: 10 },
);
const specArb = fc.record({
  constraints: fc.subarray(["node.labels.zone==a", "node.labels.ssd!=true", "node.role==worker", "node.hostname!=h2", "node.id!=h3"]),
  labels: fc.subarray(["io.corral.scheduler.affinity:host_label_soft=zone=b", "io.corral.scheduler.affinity:container_label_ne=io.corral.service=${service_name}", "io.corral.scheduler.affinity:container_label=tier=fast", "io.corral.scheduler.affinity:host_label_ne=tier=b"]),
  spread: fc.boolean(),
  max: fc.constantFrom(0, 1, 2),
  port: fc.boolean(),
});
function buildSpec(x: { constraints: string[]; labels: string[]; spread: boolean; max: number; port: boolean }): ServiceSpec {
  return web({
    labels: Object.fromEntries(x.labels.map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)])),
    ports: x.port ? [{ target: 80, published: 8080, protocol: "tcp" }] : [],
    deploy: { placement: { constraints: x.constraints, ...(x.spread ? { preferences: [{ spread: "node.labels.zone" }] } : {}), max_replicas_per_node: x.max } },
  });
}

describe("properties", () => {
  const slotsArb = fc.uniqueArray(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 5 });

  it("same input, same output; host and container order do not matter", () => {
    fc.assert(
      fc.property(hostsArb, placedArb, specArb, slotsArb, fc.infiniteStream(fc.nat()), (hosts, placed, s, slots, seeds) => {
        const request = { stack: "demo", service: "web", slots, rules: rulesOf(buildSpec(s)) };
        const first = place(request, hosts, placed);
        expect(place(request, hosts, placed)).toEqual(first);
        const shuffle = <T>(xs: T[]) => xs.map((x) => [seeds.next().value as number, x] as const).sort((a, b) => a[0] - b[0]).map(([, x]) => x);
        expect(place({ ...request, slots: shuffle(slots) }, shuffle(hosts), shuffle(placed))).toEqual(first);
        expect(globalSlots(request, shuffle(hosts), placed)).toEqual(globalSlots(request, hosts, placed));
      }),
      { numRuns: 300 },
    );
  });

  it("never breaks a required rule, a port, max per host, or a host's state", () => {
    fc.assert(
      fc.property(hostsArb, placedArb, specArb, slotsArb, (hosts, placed, s, slots) => {
        const rules = rulesOf(buildSpec(s));
        const { placements, unplaced } = place({ stack: "demo", service: "web", slots, rules }, hosts, placed);
        expect(placements.length + (unplaced ? 1 : 0)).toBeLessThanOrEqual(slots.length);
        if (!unplaced) expect(placements).toHaveLength(slots.length);
        let now = [...placed];
        for (const p of placements) {
          const h = hosts.find((x) => x.id === p.host)!;
          expect(h.state).toBe("active");
          const on = now.filter((c) => c.host === h.id);
          const lbl = on.map(containerLabels);
          for (const r of rules.required) {
            const has =
              r.kind === "hostLabel" ? h.labels[r.key] === r.value
              : r.kind === "containerLabel" ? lbl.some((l) => l[r.key] === r.value)
              : (r.key === "id" ? h.id : r.key === "hostname" ? (h.name ?? h.id) : h.labels.role === "manager" ? "manager" : "worker") === r.value;
            expect(has, `${p.host} ${r.text}`).toBe(!r.negate);
          }
          for (const port of rules.ports) expect(on.some((c) => c.ports.includes(port))).toBe(false);
          if (rules.maxPerHost) expect(on.filter((c) => c.stack === "demo" && c.service === "web").length).toBeLessThan(rules.maxPerHost);
          expect(p.why.startsWith(`${p.host}: `)).toBe(true);
          now = [...now, { stack: "demo", service: "web", slot: p.slot, host: p.host, labels: rules.labels, ports: rules.ports }];
        }
        if (unplaced) {
          expect(unplaced.reason.startsWith(`no host can run web-${unplaced.slot}: `)).toBe(true);
          for (const h of hosts) expect(unplaced.reason).toContain(`${h.id}: `);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("with no rules, spreads evenly: host counts of the service differ by at most one", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 12 }), (n, k) => {
        const hosts = Array.from({ length: n }, (_, i) => host(`h${i}`));
        const { placements } = place({ stack: "demo", service: "web", slots: Array.from({ length: k }, (_, i) => i + 1), rules: rulesOf(web()) }, hosts, []);
        const counts = hosts.map((h) => placements.filter((p) => p.host === h.id).length);
        expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
      }),
    );
  });
});
