import { describe, expect, it } from "vitest";
import { decide, previewPlacements, type Command, type HostInfo } from "./decide/index.js";
import { DomainError } from "./errors.js";
import type { StackEvent } from "./events.js";
import type { ServiceSpec, Step } from "./model.js";
import type { Placed } from "./placement.js";
import { localImageWarnings, stackPlaced } from "./scheduling.js";
import { initialState, type StackState } from "./state.js";
import { apply, run, settle as settleAll, spec, up } from "./testing.js";
import { serviceRows } from "./view.js";

// given events / when command / then events and placements, through the decider

const three: HostInfo[] = [{ id: "h1" }, { id: "h2" }, { id: "h3" }];
const creates = (events: StackEvent[]): Step[] => events.flatMap((e) => (e.type === "StepPlanned" && e.step.action === "create" ? [e.step] : []));
const where = (events: StackEvent[]) => Object.fromEntries(creates(events).map((s) => [s.container, s.host]));
const failure = (events: StackEvent[]) => events.flatMap((e) => (e.type === "OperationFailed" ? [e.reason] : []))[0];
let ids = 0;

/** A perfect agent on every host: each planned step succeeds, reported by the host it went to. */
function settle(s: StackState, hosts: HostInfo[], placed: Placed[] = [], now = 2): StackState {
  for (let guard = 0; guard < 500 && s.op?.status === "running"; guard++) {
    const next = Object.values(s.steps).find((r) => r.status === "planned" && r.step.after.every((d) => s.steps[d]?.status !== "planned"));
    if (!next) break;
    const report = { kind: "report" as const, stack: s.name, stepId: next.step.id, host: next.step.host, ok: true, ...(next.step.action === "create" ? { containerId: `c${++ids}` } : {}) };
    s = run(s, { type: "Report", report, hosts, now, placed });
  }
  return s;
}

function deployed(services: Record<string, ServiceSpec>, hosts: HostInfo[], placed: Placed[] = []): StackState {
  let s = run(initialState("demo"), up(services, "op1"));
  s = run(s, { type: "Plan", hosts, now: 1, placed });
  return settle(s, hosts, placed);
}

const planUp = (services: Record<string, ServiceSpec>, hosts: HostInfo[], placed: Placed[] = []) => {
  const s = run(initialState("demo"), up(services, "op1"));
  return decide({ type: "Plan", hosts, now: 1, placed }, s);
};

const refusal = (s: StackState, c: Command): string => {
  try {
    decide(c, s);
  } catch (e) {
    expect(e).toBeInstanceOf(DomainError);
    return (e as DomainError).message;
  }
  throw new Error("not refused");
};

const hostsOf = (s: StackState, service: string) =>
  Object.values(s.containers)
    .filter((c) => c.service === service && !c.previousOf)
    .map((c) => c.host)
    .sort();

describe("the decider places new containers with the scheduler", () => {
  it("spreads replicas over the hosts, one each, and says why on each create step", () => {
    const events = planUp({ web: spec("web:1", { scale: 3 }) }, three);
    expect(where(events)).toEqual({ "demo-web-1": "h1", "demo-web-2": "h2", "demo-web-3": "h3" });
    expect(creates(events)[1]!.placement).toBe("h2: fewest web containers (0), then first by id");
  });

  it("counts the other stacks' containers: the emptiest host first", () => {
    const others: Placed[] = [
      { stack: "other", service: "db", slot: 1, host: "h1", labels: {}, ports: [] },
      { stack: "other", service: "db", slot: 2, host: "h2", labels: {}, ports: [] },
    ];
    expect(where(planUp({ web: spec("web:1") }, three, others))).toEqual({ "demo-web-1": "h3" });
  });

  it("a host port another stack's container publishes on a host keeps the service off that host", () => {
    const others: Placed[] = [{ stack: "other", service: "proxy", slot: 1, host: "h1", labels: {}, ports: [8080] }];
    const web = spec("web:1", { ports: [{ target: 80, published: 8080, protocol: "tcp" }] });
    expect(where(planUp({ web }, [{ id: "h1" }, { id: "h2" }], others))).toEqual({ "demo-web-1": "h2" });
  });

  it("a host port the container publishes itself is published once per host: past the hosts, the operation fails naming each host's holder", () => {
    const web = spec("web:1", { scale: 3, ports: [{ target: 80, published: 8080, protocol: "tcp" }] });
    const reason = failure(planUp({ web }, [{ id: "h1" }, { id: "h2" }]));
    expect(reason).toMatch(/^no host can run demo-web-3: h1: port 8080 in use by demo-web-1, h2: port 8080 in use by demo-web-2; a port written as HOST:CONTAINER/);
  });

  it("takes only active hosts (no state is active)", () => {
    const hosts: HostInfo[] = [{ id: "h1", state: "draining" }, { id: "h2", state: "disconnected" }, { id: "h3" }];
    expect(where(planUp({ web: spec("web:1", { scale: 2 }) }, hosts))).toEqual({ "demo-web-1": "h3", "demo-web-2": "h3" });
    expect(failure(planUp({ web: spec("web:1") }, [{ id: "h1", state: "inactive" }]))).toBe("no host can run demo-web-1: h1: inactive");
  });

  it("honours Swarm constraints on host labels, hostname and role, with the reason per host when none fits", () => {
    const hosts: HostInfo[] = [
      { id: "h1", labels: { zone: "a" } },
      { id: "h2", name: "big", labels: { zone: "b", role: "manager" } },
      { id: "h3", labels: { zone: "b" } },
    ];
    const zoned = (constraints: string[], scale = 1) => spec("web:1", { scale, deploy: { placement: { constraints } } });
    expect(where(planUp({ web: zoned(["node.labels.zone==b"], 2) }, hosts))).toEqual({ "demo-web-1": "h2", "demo-web-2": "h3" });
    expect(where(planUp({ web: zoned(["node.hostname==big"]) }, hosts))).toEqual({ "demo-web-1": "h2" });
    expect(where(planUp({ web: zoned(["node.role==worker", "node.labels.zone!=a"]) }, hosts))).toEqual({ "demo-web-1": "h3" });
    expect(failure(planUp({ web: zoned(["node.labels.zone==c"]) }, hosts))).toBe(
      "no host can run demo-web-1: h1: label zone=c missing, h2: label zone=c missing, h3: label zone=c missing",
    );
  });

  it("honours Rancher's host label affinity, hard and soft", () => {
    const hosts: HostInfo[] = [{ id: "h1", labels: { disk: "hdd" } }, { id: "h2", labels: { disk: "ssd" } }];
    const hard = spec("web:1", { scale: 2, labels: { "io.corral.scheduler.affinity:host_label": "disk=ssd" } });
    expect(where(planUp({ web: hard }, hosts))).toEqual({ "demo-web-1": "h2", "demo-web-2": "h2" });
    const not = spec("web:1", { labels: { "io.rancher.scheduler.affinity:host_label_ne": "disk=ssd" } });
    expect(where(planUp({ web: not }, hosts))).toEqual({ "demo-web-1": "h1" });
    const soft = spec("web:1", { labels: { "io.corral.scheduler.affinity:host_label_soft": "disk=ssd" } });
    expect(creates(planUp({ web: soft }, hosts))[0]).toMatchObject({ host: "h2", placement: "h2: meets preference disk=ssd" });
  });

  it("container label affinity sees this stack's containers and the other stacks'", () => {
    const others: Placed[] = [{ stack: "data", service: "db", slot: 1, host: "h3", labels: { tier: "db" }, ports: [] }];
    const near = spec("app:1", { labels: { "io.corral.scheduler.affinity:container_label": "tier=db" } });
    expect(where(planUp({ app: near }, three, others))).toEqual({ "demo-app-1": "h3" });
    // not beside the stack's own cache, which went first (depends_on): away from it
    const cache = spec("cache:1", { labels: { role: "cache" } });
    const apart = spec("app:1", { labels: { "io.corral.scheduler.affinity:container_label_ne": "io.corral.service=cache" }, depends_on: { cache: { condition: "service_started", required: true } } });
    const s = deployed({ cache, app: apart }, [{ id: "h1" }, { id: "h2" }]);
    expect(hostsOf(s, "cache")).toEqual(["h1"]);
    expect(hostsOf(s, "app")).toEqual(["h2"]);
  });

  it("max_replicas_per_node caps a host, and spread preferences even out over a label's values first", () => {
    const capped = spec("web:1", { scale: 3, deploy: { placement: { max_replicas_per_node: 1 } } });
    expect(failure(planUp({ web: capped }, [{ id: "h1" }, { id: "h2" }]))).toMatch(/^no host can run demo-web-3: h1: already runs 1 web container \(max_replicas_per_node 1\), h2: already runs 1/);
    const hosts: HostInfo[] = [{ id: "h1", labels: { zone: "a" } }, { id: "h2", labels: { zone: "a" } }, { id: "h3", labels: { zone: "b" } }];
    const spread = spec("web:1", { scale: 2, deploy: { placement: { preferences: [{ spread: "node.labels.zone" }] } } });
    expect(where(planUp({ web: spread }, hosts))).toEqual({ "demo-web-1": "h1", "demo-web-2": "h3" });
  });

  it("a scale past what fits is refused with the scheduler's reason and changes nothing", () => {
    const web = spec("web:1", { ports: [{ target: 80, published: 8080, protocol: "tcp" }] });
    const s = deployed({ web }, [{ id: "h1" }, { id: "h2" }]);
    expect(refusal(s, { type: "Scale", stack: "demo", op: "op2", scales: { web: 3 }, by: "admin", source: "cli", hosts: [{ id: "h1" }, { id: "h2" }] })).toMatch(
      /^no host can run demo-web-3: h1: port 8080 in use by demo-web-1, h2: port 8080 in use by demo-web-2;/,
    );
    // one more fits: scaled, and placed on the other host
    const scaled = run(s, { type: "Scale", stack: "demo", op: "op2", scales: { web: 2 }, by: "admin", source: "cli", hosts: [{ id: "h1" }, { id: "h2" }] });
    expect(where(decide({ type: "Plan", hosts: [{ id: "h1" }, { id: "h2" }], now: 3 }, scaled))).toEqual({ "demo-web-2": "h2" });
  });

  it("a container removed on a host that is no longer active is made anew on one that is", () => {
    const s = deployed({ web: spec("web:1") }, [{ id: "h1" }, { id: "h2" }]);
    expect(hostsOf(s, "web")).toEqual(["h1"]);
    const rm = run(s, { type: "RemoveContainer", stack: "demo", op: "op2", container: "demo-web-1", by: "admin", source: "cli" });
    const events = decide({ type: "Plan", hosts: [{ id: "h1", state: "draining" }, { id: "h2" }], now: 3 }, rm);
    expect(where(events)).toEqual({ "demo-web-1": "h2" });
    expect(events.flatMap((e) => (e.type === "StepPlanned" && e.step.action === "remove" ? [e.step.host] : []))).toEqual(["h1"]);
  });

  it("an upgrade's new slot (scale raised with it) is placed; the slots it upgrades stay on their hosts", () => {
    const s = deployed({ web: spec("web:1") }, three);
    const upgraded = run(s, up({ web: spec("web:2", { scale: 2 }) }, "op2", { upgrade: true }));
    expect(where(decide({ type: "Plan", hosts: three, now: 3 }, upgraded))).toEqual({ "demo-web-1": "h1", "demo-web-2": "h2" });
  });

  it("a scheduled job's run goes to a host its constraints allow", () => {
    const job = spec("job:1", { labels: { "io.corral.cron.schedule": "* * * * *" }, deploy: { placement: { constraints: ["node.hostname==h2"] } } });
    let s = deployed({ job }, three);
    s = run(s, { type: "Tick", now: 0, hosts: three });
    const fired = decide({ type: "Tick", now: 120_000, hosts: three }, s).flatMap((e) => (e.type === "CronFired" && e.step ? [e.step.host] : []));
    expect(fired).toEqual(["h2"]);
  });

  it("dry-run: previews every new container's host and why, wave after wave, and a failure", () => {
    const db = spec("db:1");
    const web = spec("web:1", { scale: 2, depends_on: { db: { condition: "service_started", required: true } } });
    const s = run(initialState("demo"), up({ db, web }, "op1"));
    expect(previewPlacements(s, three, [], 1)).toEqual({
      placements: [
        { service: "db", slot: 1, container: "demo-db-1", host: "h1", why: "h1: first by id among equals (0 db containers, 0 overall)" },
        { service: "web", slot: 1, container: "demo-web-1", host: "h2", why: "h2: fewest overall (0), then first by id" },
        { service: "web", slot: 2, container: "demo-web-2", host: "h3", why: "h3: fewest web containers (0), then fewest overall (0)" },
      ],
    });
    const pinned = run(initialState("demo"), up({ web: spec("web:1", { deploy: { placement: { constraints: ["node.hostname==h9"] } } }) }, "op1"));
    expect(previewPlacements(pinned, three, [], 1).failed).toMatch(/^no host can run demo-web-1: h1: node.hostname is h1, not h9/);
  });

  it("stackPlaced: a stack's containers with their host ports and labels; an upgrade's old one kept aside is not", () => {
    const web = spec("web:1", { labels: { tier: "front", "io.corral.scheduler.affinity:host_label_soft": "a=b" }, ports: [{ target: 80, published: 8080, protocol: "tcp" }] });
    const s = deployed({ web }, [{ id: "h1" }]);
    expect(stackPlaced(s)).toEqual([{ stack: "demo", service: "web", slot: 1, host: "h1", labels: { tier: "front" }, ports: [8080] }]);
    const upgrading = settle(run(run(s, up({ web: { ...web, image: "web:2" } }, "op2", { upgrade: true })), { type: "Plan", hosts: [{ id: "h1" }], now: 3 }), [{ id: "h1" }]);
    expect(Object.values(upgrading.containers).filter((c) => c.previousOf)).toHaveLength(1);
    expect(stackPlaced(upgrading)).toHaveLength(1);
  });
});

describe("a local image (built or loaded on a host, no registry digest)", () => {
  const localId = `sha256:${"a".repeat(64)}`;
  /** A perfect agent but for the pulls on the hosts of `missing`, which fail as an engine does for an image no registry has; every pull that works finds the image under its id only. */
  const settleWhere = (s: StackState, hosts: HostInfo[], missing: string[]) =>
    settleAll(s, (step) => (step.action === "pull" && missing.includes(step.host) ? "pull access denied for gateway, repository does not exist" : undefined), false, hosts, () => ({ id: localId }));
  const scale = (s: StackState, n: number, op: string) => run(s, { type: "Scale", stack: "demo", op, scales: { web: n }, by: "admin", source: "cli", hosts: three });

  it("a host whose pull failed is tried last, and new containers stay where the image ran", () => {
    // built on h2 only: the first up lands on h1 and fails there
    let s = run(initialState("demo"), up({ web: spec("gateway:dev") }, "op1"));
    s = settleWhere(s, three, ["h1", "h3"]);
    expect(s.op?.status).toBe("failed");
    expect(s.lacking).toEqual({ "gateway:dev": ["h1"] });
    // up again: h2 (not known either way) before h1
    s = run(s, up({ web: spec("gateway:dev") }, "op2"));
    s = settleWhere(s, three, ["h1", "h3"]);
    expect(hostsOf(s, "web")).toEqual(["h2"]);
    // scaled: onto h2, where it ran, not h3 (spreading would pick it)
    const events = decide({ type: "Plan", hosts: three, now: 4 }, scale(s, 3, "op3"));
    expect(where(events)).toEqual({ "demo-web-2": "h2", "demo-web-3": "h2" });
    expect(creates(events)[0]!.placement).toBe("h2: ran the web image before (no registry has it, and h1 could not pull it)");
  });

  it("with no host known to lack it, a local image spreads (a site may load it on every host); a pull that works takes a host off", () => {
    let s = run(initialState("demo"), up({ web: spec("gateway:dev") }, "op1"));
    s = settleWhere(s, three, []);
    expect(s.services.web!.ids).toEqual({ h1: localId });
    expect(where(decide({ type: "Plan", hosts: three, now: 3 }, scale(s, 3, "op2")))).toEqual({ "demo-web-2": "h2", "demo-web-3": "h3" });
    // h3 lacked it once, and has it now (loaded there): its next pull takes it off
    const again: StackState = { ...s, lacking: { "gateway:dev": ["h3"] } };
    const onlyH3: HostInfo[] = [{ id: "h1", state: "draining" }, { id: "h2", state: "draining" }, { id: "h3" }];
    const scaled = settleWhere(scale(again, 2, "op3"), onlyH3, []);
    expect(hostsOf(scaled, "web")).toEqual(["h1", "h3"]);
    expect(scaled.lacking).toBeUndefined();
  });

  it("an image with a registry digest spreads, and a failed pull of it marks nothing", () => {
    let s = run(initialState("demo"), up({ web: spec("gateway:dev", { scale: 3 }) }, "op1", { pins: { "gateway:dev": { digest: `sha256:${"b".repeat(64)}` } } }));
    s = settleWhere(s, three, ["h1"]);
    expect(s.lacking).toBeUndefined();
  });

  it("up warns at the image key while an active host could not pull it", () => {
    const state = { services: { web: { spec: spec("gateway:dev"), hash: "x", ids: { h2: localId } } }, lacking: { "gateway:dev": ["h1"] } };
    expect(localImageWarnings(state, ["h1", "h2", "h3"], "docker-compose.yml", { web: { image: "base.yml" } })).toEqual([
      {
        file: "base.yml",
        path: "services.web.image",
        reason:
          "gateway:dev has no registry digest (it was built or loaded on some hosts) and h1 could not pull it: new web containers go to h2 (where it ran) first; " +
          "push it to a registry, or load it on every host, to run it on any host",
      },
    ]);
    expect(localImageWarnings(state, ["h2", "h3"], "docker-compose.yml")).toEqual([]); // h1 is not active
    expect(localImageWarnings({ ...state, lacking: {} }, ["h1", "h2"], "docker-compose.yml")).toEqual([]);
    expect(localImageWarnings({ ...state, services: { web: { ...state.services.web, digest: `sha256:${"b".repeat(64)}` } } }, ["h1", "h2"], "docker-compose.yml")).toEqual([]);
  });
});

describe("global services", () => {
  const agent = spec("agent:1", { deploy: { mode: "global" }, ports: [{ target: 9100, published: 9100, protocol: "tcp" }] });

  it("run one container on every active host that fits, slots numbered in host order", () => {
    const hosts: HostInfo[] = [{ id: "h1" }, { id: "h2", state: "draining" }, { id: "h3" }];
    expect(where(planUp({ agent }, hosts))).toEqual({ "demo-agent-1": "h1", "demo-agent-2": "h3" });
    const labelled = spec("agent:1", { labels: { "io.corral.scheduler.global": "true", "io.corral.scheduler.affinity:host_label": "gpu=yes" } });
    expect(where(planUp({ agent: labelled }, [{ id: "h1" }, { id: "h2", labels: { gpu: "yes" } }]))).toEqual({ "demo-agent-1": "h2" });
  });

  it("a host that joins gets its container at the next tick, in an operation of corral's own; ps says global", () => {
    let s = deployed({ agent }, [{ id: "h1" }, { id: "h2" }]);
    expect(hostsOf(s, "agent")).toEqual(["h1", "h2"]);
    expect(decide({ type: "Tick", now: 5, hosts: [{ id: "h1" }, { id: "h2" }] }, s)).toEqual([]); // nothing to do
    const events = decide({ type: "Tick", now: 5, hosts: three }, s);
    expect(events[0]).toMatchObject({ type: "OperationStarted", kind: "scale", by: "corral", services: ["agent"] });
    expect(where(events)).toEqual({ "demo-agent-3": "h3" });
    s = settle(apply(s, events), three);
    expect(s.op?.status).toBe("succeeded");
    expect(hostsOf(s, "agent")).toEqual(["h1", "h2", "h3"]);
    expect(serviceRows(s)[0]!.scale).toBe("3/global");
  });

  it("a host that no longer fits loses its container; a host gone from the list is not sent anything", () => {
    const zoned = spec("agent:1", { deploy: { mode: "global", placement: { constraints: ["node.labels.zone==a"] } } });
    const a: HostInfo[] = [{ id: "h1", labels: { zone: "a" } }, { id: "h2", labels: { zone: "a" } }];
    const s = deployed({ agent: zoned }, a);
    const relabelled: HostInfo[] = [{ id: "h1", labels: { zone: "a" } }, { id: "h2", labels: { zone: "b" } }];
    const events = decide({ type: "Tick", now: 5, hosts: relabelled }, s);
    expect(events.flatMap((e) => (e.type === "StepPlanned" ? [`${e.step.action} ${e.step.container} ${e.step.host}`] : []))).toEqual(["stop demo-agent-2 h2", "remove demo-agent-2 h2"]);
    expect(decide({ type: "Tick", now: 5, hosts: [a[0]!] }, s)).toEqual([]);
  });

  it("a failed placement is not tried again by every tick for the same hosts, and is when the hosts change", () => {
    let s = deployed({ agent }, [{ id: "h1" }]);
    const started = decide({ type: "Tick", now: 5, hosts: [{ id: "h1" }, { id: "h2" }] }, s);
    s = apply(s, started);
    const pull = Object.values(s.steps).find((r) => r.status === "planned")!;
    s = run(s, { type: "Report", report: { kind: "report", stack: "demo", stepId: pull.step.id, host: pull.step.host, ok: false, error: "pull failed" }, hosts: [{ id: "h1" }, { id: "h2" }], now: 6 });
    expect(s.op?.status).toBe("failed");
    expect(decide({ type: "Tick", now: 7, hosts: [{ id: "h1" }, { id: "h2" }] }, s)).toEqual([]);
    expect(where(decide({ type: "Tick", now: 7, hosts: three }, s))).toEqual({ "demo-agent-2": "h2", "demo-agent-3": "h3" });
  });

  it("have no scale to set", () => {
    const s = deployed({ agent }, [{ id: "h1" }]);
    expect(refusal(s, { type: "Scale", stack: "demo", op: "op2", scales: { agent: 3 }, by: "admin", source: "cli", hosts: [{ id: "h1" }] })).toMatch(/is global: it runs one container on every host/);
  });

  it("an upgrade upgrades each host's container in place and places one on a host that has none", () => {
    const s = deployed({ agent }, [{ id: "h1" }, { id: "h2" }]);
    const upgraded = run(s, up({ agent: { ...agent, image: "agent:2" } }, "op2", { upgrade: true }));
    const events = decide({ type: "Plan", hosts: three, now: 3 }, upgraded);
    expect(where(events)).toEqual({ "demo-agent-1": "h1", "demo-agent-2": "h2", "demo-agent-3": "h3" });
    expect(creates(events).find((c) => c.host === "h3")!.placement).toBe("h3: global, one agent container per host");
  });
});
