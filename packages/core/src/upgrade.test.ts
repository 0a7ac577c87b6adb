import { describe, expect, it } from "vitest";
import { decide, type Command } from "./decide/index.js";
import type { StackEvent } from "./events.js";
import type { Step } from "./model.js";
import { Progress } from "./progress.js";
import { initialState } from "./state.js";
import { apply, engineIds, hosts, rows, run, settle, spec, up } from "./testing.js";
import { containerRows } from "./view.js";

// The Spin flow and the Swarm failure actions, given events / when command / then state.
const v1 = { web: spec("web:1"), app: spec("app:1"), db: spec("db:1") };
const v2 = { web: spec("web:2"), app: spec("app:2"), db: spec("db:1") };

describe("the Spin lesson-3 flow", () => {
  const s0 = settle(run(initialState("demo"), up(v1, "op1")));
  const before = engineIds(s0);

  it("upgrades only the changed services, keeping the old containers stopped: 2/1, upgraded", () => {
    const events = decide(up(v2, "op2", { upgrade: true }), s0);
    expect(events.find((e) => e.type === "UpgradeStarted")).toMatchObject({ from: 1, to: 2, services: ["web", "app"] });
    const s1 = settle(apply(s0, events));
    expect(rows(s1)).toEqual({ web: "upgraded 2/1", app: "upgraded 2/1", db: "active 1/1" });
    const after = engineIds(s1);
    expect(after["demo-db-1"]).toBe(before["demo-db-1"]); // untouched: same container
    expect(after["demo-web-1-r1"]).toBe(before["demo-web-1"]!.replace("running", "stopped"));
    expect(after["demo-web-1"]).toMatch(/running$/);
    expect(after["demo-web-1"]).not.toBe(before["demo-web-1"]);
    // listed under the slot's name, after the new one, with its own id and a detail saying it is the previous one
    const listed = containerRows(s1).filter((c) => c.name === "demo-web-1");
    expect(listed.map((c) => c.state)).toEqual(["running", "stopped"]);
    expect(listed[1]!.detail).toMatch(/^previous container, kept by the upgrade \(revision 1 → 2\)/);
    expect(listed[0]!.id).not.toBe(listed[1]!.id);
    expect(listed[1]!.id).toBe(containerRows(s0).find((c) => c.name === "demo-web-1")!.id); // the old one keeps its id
  });

  it("confirm removes the old containers: three left, active", () => {
    const s1 = settle(run(s0, up(v2, "op2", { upgrade: true })));
    const s2 = settle(run(s1, up(v2, "op3", { confirm: true })));
    expect(Object.keys(s2.containers).sort()).toEqual(["demo-app-1", "demo-db-1", "demo-web-1"]);
    expect(rows(s2)).toEqual({ web: "active 1/1", app: "active 1/1", db: "active 1/1" });
    expect(s2.upgrades).toEqual({});
  });

  it("force-upgrade upgrades every service; rollback brings back the very same old containers", () => {
    const s1 = settle(run(settle(run(s0, up(v2, "op2", { upgrade: true }))), up(v2, "op3", { confirm: true })));
    const confirmed = engineIds(s1);
    const s2 = settle(run(s1, up(v2, "op4", { force: true })));
    expect(Object.keys(s2.containers)).toHaveLength(6);
    expect(Object.values(s2.containers).filter((c) => c.state === "stopped")).toHaveLength(3);
    const s3 = settle(run(s2, up(v2, "op5", { rollback: true })));
    expect(engineIds(s3)).toEqual(confirmed);
    expect(rows(s3)).toEqual({ web: "active 1/1", app: "active 1/1", db: "active 1/1" });
    expect(s3.revision).toBe(2);
  });

  it("upgrade and confirm in one go removes the old containers as it goes", () => {
    const s1 = settle(run(s0, up(v2, "op2", { upgrade: true, confirm: true })));
    expect(Object.keys(s1.containers).sort()).toEqual(["demo-app-1", "demo-db-1", "demo-web-1"]);
    expect(s1.upgrades).toEqual({});
    expect(s1.op?.status).toBe("succeeded");
  });

  it("rolls back to any revision as a new upgrade", () => {
    let s = s0;
    for (const [i, image] of ["web:2", "web:3", "web:4"].entries()) {
      s = settle(run(s, up({ ...v1, web: spec(image) }, `u${i}`, { upgrade: true, confirm: true })));
    }
    expect(s.services.web?.spec.image).toBe("web:4");
    const events = decide(up({}, "back", { rollback: true, toRevision: 2 }), s);
    expect(events.find((e) => e.type === "RevisionCommitted")).toMatchObject({ revision: 5, changed: ["web"] });
    s = settle(apply(s, events));
    expect(s.services.web?.spec.image).toBe("web:2");
    expect(rows(s).web).toBe("upgraded 2/1");
  });

  it("refuses --rollback with nothing to roll back, and an unknown revision", () => {
    expect(() => decide(up(v1, "x", { rollback: true }), s0)).toThrow(/no upgrade to roll back.*--to-revision N/);
    expect(() => decide(up(v1, "x", { rollback: true, toRevision: 9 }), s0)).toThrow(/has no revision 9/);
  });
});

describe("failure actions", () => {
  const base = (action: "pause" | "rollback" | "continue", scale = 3) => ({ web: spec("web:1", { scale, deploy: { update_config: { failure_action: action } } }) });
  const next = (action: "pause" | "rollback" | "continue", scale = 3) => ({ web: spec("web:2", { scale, deploy: { update_config: { failure_action: action } } }) });
  const unhealthy = (step: Step) => (step.action === "start" && step.revision === 2 ? "container demo-web-1 is unhealthy: health check failed 3 times" : undefined);

  it("rollback: the stack ends on the old revision by itself, and the operation fails naming the container", () => {
    const s0 = settle(run(initialState("demo"), up(base("rollback"), "op1")));
    const before = engineIds(s0);
    let s = run(s0, up(next("rollback"), "op2", { upgrade: true }));
    const failed: StackEvent[] = [];
    s = settle(s, (step) => unhealthy(step));
    // the upgrade op failed, then the rollback ran to the end
    expect(engineIds(s)).toEqual(before);
    expect(s.revision).toBe(1);
    expect(s.upgrades).toEqual({});
    void failed;
  });

  it("pause: the rollout stops at the first failed batch, paused, with the two ways out", () => {
    const s0 = settle(run(initialState("demo"), up(base("pause"), "op1")));
    const s = settle(run(s0, up(next("pause"), "op2", { upgrade: true })), unhealthy);
    expect(s.upgrades.web?.status).toBe("paused");
    expect(rows(s).web).toMatch(/^paused/);
    // batches of one: slots 2 and 3 were never touched
    expect(engineIds(s)["demo-web-2"]).toMatch(/running$/);
    expect(engineIds(s)["demo-web-3"]).toMatch(/running$/);
    expect(() => decide({ type: "Scale", stack: "demo", op: "op3", scales: { web: 4 }, by: "u", source: "cli" }, s)).toThrow(/paused .*'corral up --confirm-upgrade' or 'corral up --rollback'/);
    const back = settle(run(s, up(next("pause"), "op4", { rollback: true })));
    expect(Object.values(back.containers).every((c) => c.state === "running" && c.revision === 1)).toBe(true);
  });
});

describe("rollout settings", () => {
  const three = (image: string, update = {}) => ({ web: spec(image, { scale: 3, deploy: { update_config: update } }) });

  it("batches: each batch waits for the one before, and later batches wait out the interval", () => {
    const s0 = settle(run(initialState("demo"), up(three("web:1"), "op1")));
    const s1 = run(run(s0, up(three("web:2", { parallelism: 2, delay: 5000 }), "op2", { upgrade: true })), { type: "Plan", hosts, now: 1 });
    const steps = Object.values(s1.steps).map((r) => r.step);
    const stops = steps.filter((x) => x.action === "stop");
    expect(stops.map((x) => [x.container, x.delayMs ?? 0, x.after.length])).toEqual([
      ["demo-web-1", 0, 1],
      ["demo-web-2", 0, 1],
      ["demo-web-3", 5000, 3], // after the pull and both starts of batch one
    ]);
  });

  it("start-first: the new container starts before the old one stops; CLI flags win over the file", () => {
    const s0 = settle(run(initialState("demo"), up(three("web:1"), "op1")));
    const s1 = run(run(s0, up(three("web:2"), "op2", { upgrade: true, startFirst: true, batchSize: 3 })), { type: "Plan", hosts, now: 1 });
    const order = Object.values(s1.steps).map((r) => r.step).filter((x) => x.slot === 1 && x.action !== "pull").map((x) => x.action);
    expect(order).toEqual(["rename", "create", "start", "stop"]);
    const done = settle(run(s0, up(three("web:2"), "op3", { upgrade: true, startFirst: true })));
    expect(rows(done).web).toBe("upgraded 6/3");
    const back = settle(run(done, up(three("web:2"), "op4", { rollback: true })));
    expect(engineIds(back)).toEqual(engineIds(s0));
  });

  it("refuses --start-first for a service whose container publishes a host port itself, naming the way to route it", () => {
    const s0 = settle(run(initialState("demo"), up({ web: spec("web:1", { ports: [{ target: 80, published: 60000, protocol: "tcp" }] }) }, "op1")));
    expect(() => decide(up({ web: spec("web:2", { ports: [{ target: 80, published: 60000, protocol: "tcp" }] }) }, "op2", { upgrade: true, startFirst: true }), s0)).toThrow(
      /publishes host port 60000 on its container: start-first would need the old and the new container on it at once; publish it with 'mode: ingress'.* or upgrade it stop-first/,
    );
  });

  it("start-first with routed ports; a file's start-first falls back to stop-first for the one upgrade that moves a port from the container to the router", () => {
    const direct = { ports: [{ target: 80, published: 60000, protocol: "tcp" as const }] };
    const ingress = { ports: [{ target: 80, published: 60000, protocol: "tcp" as const, mode: "ingress" as const }] };
    const startFirstFile = { deploy: { update_config: { order: "start-first" as const } } };
    const order = (s: ReturnType<typeof settle>) => Object.values(s.steps).map((r) => r.step).filter((x) => x.action !== "pull").map((x) => x.action);

    const routed = settle(run(initialState("demo"), up({ web: spec("web:1", ingress) }, "op1")));
    const sf = run(run(routed, up({ web: spec("web:2", ingress) }, "op2", { upgrade: true, startFirst: true })), { type: "Plan", hosts, now: 1 });
    expect(order(sf)).toEqual(["rename", "create", "start", "stop"]);

    const s0 = settle(run(initialState("demo"), up({ web: spec("web:1", direct) }, "op1")));
    const moving = run(run(s0, up({ web: spec("web:2", { ...direct, ...startFirstFile }) }, "op2", { upgrade: true })), { type: "Plan", hosts, now: 1 });
    expect(order(moving)).toEqual(["stop", "rename", "create", "start"]);
  });
});

describe("auto-confirm", () => {
  it("confirms by itself once the upgrade has run for the duration", () => {
    const s0 = settle(run(initialState("demo"), up(v1, "op1")));
    const s1 = settle(run(s0, up(v2, "op2", { upgrade: true, autoConfirmMs: 60_000 })));
    expect(s1.upgrades.web?.status).toBe("upgraded");
    expect(decide({ type: "Tick", now: 30_000, hosts }, s1)).toEqual([]);
    const s2 = run(s1, { type: "Tick", now: 60_002, hosts });
    expect(s2.op).toMatchObject({ kind: "confirm", status: "running" });
    const s3 = settle(s2);
    expect(s3.upgrades).toEqual({});
    expect(Object.keys(s3.containers).sort()).toEqual(["demo-app-1", "demo-db-1", "demo-web-1"]);
  });
});

describe("the monitor window (deploy.update_config.monitor)", () => {
  const watched = (image: string, action: "pause" | "rollback") => ({ web: spec(image, { deploy: { update_config: { monitor: 30_000, failure_action: action } } }) });

  it("the upgrade ends once its new containers have run the window without turning unhealthy", () => {
    const s0 = settle(run(initialState("demo"), up(watched("web:1", "pause"), "op1")), undefined, true);
    const s1 = settle(run(s0, up(watched("web:2", "pause"), "op2", { upgrade: true })), undefined, true);
    expect(s1.op).toMatchObject({ kind: "upgrade", status: "running" }); // every step done, the window still open
    expect(rows(s1).web).toBe("upgrading 2/1");
    expect(run(s1, { type: "Tick", now: 20_000, hosts }).op?.status).toBe("running");
    const done = run(s1, { type: "Tick", now: 30_003, hosts });
    expect(done.op?.status).toBe("succeeded");
    expect(done.upgrades.web?.status).toBe("upgraded");
  });

  it("a new container turning unhealthy inside the window fails the upgrade: rolled back, or paused with the reason", () => {
    const s0 = settle(run(initialState("demo"), up(watched("web:1", "rollback"), "op1")), undefined, true);
    const s1 = settle(run(s0, up(watched("web:2", "rollback"), "op2", { upgrade: true })), undefined, true);
    const fresh = s1.containers["demo-web-1"]!;
    const sick = run(s1, { type: "Health", host: "h1", container: "demo-web-1", dockerId: fresh.dockerId!, health: "unhealthy", now: 10_000 });
    expect(sick.op).toMatchObject({ kind: "rollback", status: "running" });
    expect(engineIds(settle(sick))).toEqual(engineIds(s0));

    const p0 = settle(run(initialState("demo"), up(watched("web:1", "pause"), "op1")), undefined, true);
    const p1 = settle(run(p0, up(watched("web:2", "pause"), "op2", { upgrade: true })), undefined, true);
    const paused = run(p1, { type: "Health", host: "h1", container: "demo-web-1", dockerId: p1.containers["demo-web-1"]!.dockerId!, health: "unhealthy", now: 10_000 });
    expect(paused.upgrades.web).toMatchObject({ status: "paused" });
    expect(paused.upgrades.web?.reason).toMatch(/container demo-web-1 turned unhealthy 10 s after it started, inside the monitor window of 30 s/);
  });

  it("a new container turning healthy inside the window is what the upgrade waits for, not a failure", () => {
    const s0 = settle(run(initialState("demo"), up(watched("web:1", "rollback"), "op1")), undefined, false);
    const s1 = settle(run(s0, up(watched("web:2", "rollback"), "op2", { upgrade: true })), undefined, false);
    const fresh = s1.containers["demo-web-1"]!;
    const well = run(s1, { type: "Health", host: "h1", container: "demo-web-1", dockerId: fresh.dockerId!, health: "healthy", now: 10_000 });
    expect(well.containers["demo-web-1"]?.health).toBe("healthy");
    expect(well.op).toMatchObject({ kind: "upgrade", status: "running" });
    expect(well.upgrades.web?.status).not.toBe("paused");
    expect(run(well, { type: "Tick", now: 30_003, hosts }).upgrades.web?.status).toBe("upgraded");
  });

  it("after the window, turning unhealthy is a state, not a failed upgrade", () => {
    const s0 = settle(run(initialState("demo"), up(watched("web:1", "rollback"), "op1")), undefined, true);
    const s1 = run(settle(run(s0, up(watched("web:2", "rollback"), "op2", { upgrade: true })), undefined, true), { type: "Tick", now: 31_000, hosts });
    const later = run(s1, { type: "Health", host: "h1", container: "demo-web-1", dockerId: s1.containers["demo-web-1"]!.dockerId!, health: "unhealthy", now: 40_000 });
    expect(later.upgrades.web?.status).toBe("upgraded");
    expect(rows(later).web).toBe("upgraded 2/1");
  });
});

describe("retain_ip", () => {
  it("the new container asks for the address the old one had, and the upgrade goes stop-first to free it", () => {
    const keep = { web: spec("web:1", { retain_ip: true }) };
    let s0 = settle(run(initialState("demo"), up(keep, "op1")));
    s0 = { ...s0, containers: { ...s0.containers, "demo-web-1": { ...s0.containers["demo-web-1"]!, ip: "10.200.3.7" } } };
    const s1 = run(run(s0, up({ web: spec("web:2", { retain_ip: true, deploy: { update_config: { order: "start-first" } } }) }, "op2", { upgrade: true })), { type: "Plan", hosts, now: 1 });
    const steps = Object.values(s1.steps).map((r) => r.step).filter((x) => x.action !== "pull");
    expect(steps.map((x) => x.action)).toEqual(["stop", "rename", "create", "start"]);
    expect(steps.find((x) => x.action === "create")?.ip).toBe("10.200.3.7");
  });

  it("a slot that moves host cannot keep its address there: the create says so and asks for none", () => {
    const two = [{ id: "h1" }, { id: "h2" }];
    const on = (host: string) => spec("web:1", { retain_ip: true, deploy: { placement: { constraints: [`node.hostname==${host}`] } } });
    let s0 = settle(run(initialState("demo"), up({ web: on("h1") }, "op1")), undefined, false, two);
    s0 = { ...s0, containers: { ...s0.containers, "demo-web-1": { ...s0.containers["demo-web-1"]!, ip: "10.200.3.7" } } };
    const s1 = run(run(s0, up({ web: on("h2") }, "op2", { upgrade: true })), { type: "Plan", hosts: two, now: 1 });
    const create = Object.values(s1.steps).map((r) => r.step).find((x) => x.action === "create")!;
    expect(create.host).toBe("h2");
    expect(create.ip).toBeUndefined();
    expect(create.addressLeft).toBe("10.200.3.7 on h1");
    const progress = new Progress("demo");
    expect(progress.line({ type: "StepPlanned", step: { ...create, after: [] }, at: 1 })).toBe(
      "[web]: Creating on h2: retain_ip cannot keep 10.200.3.7 on h1 (each host has its own subnet of the stack network)",
    );
  });
});

describe("health", () => {
  it("services with health checks show healthy or unhealthy; a verdict about an earlier container of the name changes nothing", () => {
    const s0 = settle(run(initialState("demo"), up(v1, "op1")), undefined, true);
    expect(rows(s0)).toEqual({ web: "healthy 1/1", app: "healthy 1/1", db: "healthy 1/1" });
    const web = s0.containers["demo-web-1"]!;
    const sick = run(s0, { type: "Health", host: "h1", container: "demo-web-1", dockerId: web.dockerId!, health: "unhealthy", now: 5 });
    expect(rows(sick).web).toBe("unhealthy 1/1");
    expect(decide({ type: "Health", host: "h1", container: "demo-web-1", dockerId: "an-older-one", health: "healthy", now: 6 }, sick)).toEqual([]);
    expect(decide({ type: "Health", host: "h1", container: "demo-web-1", dockerId: web.dockerId!, health: "unhealthy", now: 6 }, sick)).toEqual([]); // no change, no event
    expect(rows(run(sick, { type: "Health", host: "h1", container: "demo-web-1", dockerId: web.dockerId!, health: "healthy", now: 7 })).web).toBe("healthy 1/1");
    expect(rows(settle(run(initialState("demo"), up(v1, "op1")))).web).toBe("active 1/1"); // no health check
  });

  it("auto-confirm waits until every new container has stayed healthy for the duration; an unhealthy one holds it", () => {
    const s0 = settle(run(initialState("demo"), up(v1, "op1")), undefined, true);
    const s1 = settle(run(s0, up(v2, "op2", { upgrade: true, autoConfirmMs: 60_000 })), undefined, true);
    const web = s1.containers["demo-web-1"]!;
    const sick = run(s1, { type: "Health", host: "h1", container: "demo-web-1", dockerId: web.dockerId!, health: "unhealthy", now: 10_000 });
    expect(decide({ type: "Tick", now: 100_000, hosts }, sick)).toEqual([]);
    const well = run(sick, { type: "Health", host: "h1", container: "demo-web-1", dockerId: web.dockerId!, health: "healthy", now: 50_000 });
    expect(decide({ type: "Tick", now: 100_000, hosts }, well)).toEqual([]); // healthy again only since 50 s
    expect(run(well, { type: "Tick", now: 110_001, hosts }).op).toMatchObject({ kind: "confirm", status: "running" });
  });
});

describe("rm during an upgrade awaiting confirmation", () => {
  it("removes the new and the old containers alike", () => {
    const s0 = settle(run(initialState("demo"), up(v1, "op1")));
    const s1 = settle(run(s0, up(v2, "op2", { upgrade: true })));
    expect(Object.keys(s1.containers)).toHaveLength(5);
    const s2 = settle(run(s1, { type: "Remove", stack: "demo", op: "rm1", by: "admin", source: "cli" }));
    expect(s2.exists).toBe(false);
    expect(Object.values(s2.steps).filter((r) => r.step.action === "remove").map((r) => r.step.container).sort()).toEqual([
      "demo-app-1",
      "demo-app-1-r1",
      "demo-db-1",
      "demo-web-1",
      "demo-web-1-r1",
    ]);
  });
});

describe("dispatch", () => {
  it("holds a later batch until the batch before it succeeded, then releases it", async () => {
    const { toDispatch } = await import("./dispatch.js");
    const three = (image: string) => ({ web: spec(image, { scale: 2 }) });
    const s0 = settle(run(initialState("demo"), up(three("web:1"), "op1")));
    const before = run(s0, up(three("web:2"), "op2", { upgrade: true }));
    const events = decide({ type: "Plan", hosts, now: 1 }, before);
    const planned = apply(before, events);
    const first = toDispatch(before, planned, events).map((x) => `${x.action} ${x.container ?? ""}`.trim());
    expect(first).toEqual(["pull", "stop demo-web-1", "rename demo-web-1", "create demo-web-1", "start demo-web-1"]);
    let s = planned;
    for (const step of Object.values(s.steps).filter((r) => r.step.slot === 1 || r.step.action === "pull").map((r) => r.step)) {
      const c: Command = { type: "Report", report: { kind: "report", stack: "demo", stepId: step.id, host: "h1", ok: true }, hosts, now: 2 };
      const ev = decide(c, s);
      const next = apply(s, ev);
      const released = toDispatch(s, next, ev).map((x) => `${x.action} ${x.container}`);
      if (step.action === "start") expect(released).toEqual(["stop demo-web-2", "rename demo-web-2", "create demo-web-2", "start demo-web-2"]);
      else expect(released).toEqual([]);
      s = next;
    }
  });
});

describe("--pull", () => {
  it("marks the pulls of the operation as forced", () => {
    const s = run(initialState("demo"), up(v1, "op1", { pull: true }));
    const pulls = Object.values(run(s, { type: "Plan", hosts, now: 1 }).steps).filter((r) => r.step.action === "pull");
    expect(pulls.map((r) => r.step.forcePull)).toEqual([true, true, true]);
    const plain = Object.values(run(run(initialState("demo"), up(v1, "op1")), { type: "Plan", hosts, now: 1 }).steps).filter((r) => r.step.action === "pull");
    expect(plain.every((r) => r.step.forcePull === undefined)).toBe(true);
  });
});

describe("who may report", () => {
  it("a report about a step is believed only from the host the step went to", () => {
    const planned = run(initialState("demo"), up({ web: spec("web:1") }, "op1"));
    const s = run(planned, { type: "Plan", hosts, now: 1 });
    const first = Object.values(s.steps).find((r) => r.status === "planned")!.step;
    const report = (host: string): Command => ({ type: "Report", report: { kind: "report", stack: "demo", stepId: first.id, host, ok: true }, hosts, now: 2 });
    expect(decide(report("h2"), s)).toEqual([]);
    expect(decide(report("h1"), s)[0]).toMatchObject({ type: "StepSucceeded", stepId: first.id });
  });

  it("a health verdict about a container is believed only from its own host", () => {
    const s = settle(run(initialState("demo"), up({ web: spec("web:1") }, "op1")));
    const web = s.containers["demo-web-1"]!;
    const health = (host: string): Command => ({ type: "Health", host, container: "demo-web-1", dockerId: web.dockerId!, health: "unhealthy", now: 5 });
    expect(decide(health("h2"), s)).toEqual([]);
    expect(decide(health("h1"), s)[0]).toMatchObject({ type: "ContainerHealth", health: "unhealthy" });
  });
});

describe("the lesson's command sequence, literally: upgrades are per service", () => {
  // example1..4 as the Spin lesson has them: app and db; example3 changes db (a volume), example4 changes app
  const ex1 = { app: spec("app:1"), db: spec("db:1") };
  const ex2 = { app: spec("app:2"), db: spec("db:2") };
  const ex3 = { app: spec("app:2"), db: spec("db:2", { environment: { DATA: "/data" } }) };
  const ex4 = { app: spec("app:3"), db: spec("db:2", { environment: { DATA: "/data" } }) };
  const ids = (s: ReturnType<typeof settle>) => Object.fromEntries(containerRows(s).map((r) => [`${r.name} ${r.state}`, r.id]));

  it("runs every command of the lesson, with history and states exact", () => {
    let s = settle(run(initialState("demo"), up(ex1, "c1")));
    expect(s.revision).toBe(1);
    s = settle(run(s, up(ex2, "c2", { upgrade: true })));
    expect(rows(s)).toEqual({ app: "upgraded 2/1", db: "upgraded 2/1" });
    // the same file with --confirm-upgrade: the pending upgrades are finished, nothing else changes
    const confirm = decide(up(ex2, "c3", { upgrade: true, confirm: true }), s);
    expect(confirm.map((e) => e.type)).toEqual(["OperationStarted"]);
    expect(confirm[0]).toMatchObject({ kind: "confirm", services: ["app", "db"] });
    s = settle(apply(s, confirm));
    expect(rows(s)).toEqual({ app: "active 1/1", db: "active 1/1" });
    expect(s.upgrades).toEqual({});
    const confirmed = ids(s);
    s = settle(run(s, up(ex2, "c4", { upgrade: true, force: true })));
    expect(s.revision).toBe(3);
    expect(rows(s)).toEqual({ app: "upgraded 2/1", db: "upgraded 2/1" });
    const rollback = decide(up(ex2, "c5", { upgrade: true, rollback: true }), s);
    expect(rollback).toEqual([expect.objectContaining({ type: "OperationStarted", kind: "rollback", revision: 2, services: ["app", "db"] })]);
    s = settle(apply(s, rollback));
    expect(s.revision).toBe(2);
    expect(ids(s)).toEqual(confirmed); // the very same containers, with their ids
    // db upgraded, not confirmed; then app upgraded while db still waits
    s = settle(run(s, up(ex3, "c7", { upgrade: true })));
    expect(rows(s)).toEqual({ app: "active 1/1", db: "upgraded 2/1" });
    const app = decide(up(ex4, "c8", { upgrade: true }), s);
    expect(app.find((e) => e.type === "UpgradeStarted")).toMatchObject({ from: 4, to: 5, services: ["app"] });
    s = settle(apply(s, app));
    expect(rows(s)).toEqual({ app: "upgraded 2/1", db: "upgraded 2/1" });
    expect(s.upgrades).toMatchObject({ db: { from: 2, to: 4, status: "upgraded" }, app: { from: 4, to: 5, status: "upgraded" } });
    // a rollback of pending upgrades begun at different revisions is a revision of its own
    const mixed = decide(up({}, "c9", { rollback: true }), s);
    expect(mixed[0]).toMatchObject({ type: "RevisionCommitted", revision: 6, changed: ["db", "app"], rollbackTo: { db: 2, app: 4 } });
    expect(mixed[1]).toMatchObject({ type: "OperationStarted", kind: "rollback", revision: 6 });
    s = settle(apply(s, mixed));
    expect(s.revision).toBe(6);
    expect(s.services.app?.spec.image).toBe("app:2");
    expect(s.services.db?.spec.environment).toEqual({});
    expect(rows(s)).toEqual({ app: "active 1/1", db: "active 1/1" });
    expect(Object.values(s.containers).map((c) => c.revision).sort()).toEqual([2, 2]);
    // and --to-revision stays exact: revision 5 is app:3 with db's volume
    s = settle(run(s, up({}, "c10", { rollback: true, toRevision: 5 })));
    expect(s.revision).toBe(7);
    expect(s.services.app?.spec.image).toBe("app:3");
    expect(s.services.db?.spec.environment).toEqual({ DATA: "/data" });
  });

  it("a service upgraded again while its upgrade is pending has that upgrade finished first; the others stay pending", () => {
    let s = settle(run(initialState("demo"), up(ex1, "c1")));
    s = settle(run(s, up(ex2, "c2", { upgrade: true })));
    const oldDb = containerRows(s).find((r) => r.name === "demo-db-1" && r.state === "stopped")!.id;
    const again = decide(up({ ...ex2, db: spec("db:3") }, "c3", { upgrade: true }), s);
    expect(again.find((e) => e.type === "OperationStarted")).toMatchObject({ kind: "upgrade", confirms: ["db"] });
    s = settle(apply(s, again));
    expect(rows(s)).toEqual({ app: "upgraded 2/1", db: "upgraded 2/1" });
    const db = containerRows(s).filter((r) => r.name === "demo-db-1");
    expect(db.map((r) => r.state)).toEqual(["running", "stopped"]);
    expect(db.map((r) => r.id)).not.toContain(oldDb); // db:1's container is gone: db:2's is now the previous one
    expect(s.upgrades).toMatchObject({ app: { from: 1, to: 2 }, db: { from: 2, to: 3 } });
    // --confirm-upgrade with a change finishes every pending upgrade and upgrades what changed, confirmed
    s = settle(run(s, up({ app: spec("app:4"), db: spec("db:3") }, "c4", { upgrade: true, confirm: true })));
    expect(s.upgrades).toEqual({});
    expect(containerRows(s).map((r) => `${r.name} ${r.state}`)).toEqual(["demo-app-1 running", "demo-db-1 running"]);
    expect(s.services.app?.spec.image).toBe("app:4");
  });

  it("scale, stop and rm refuse only the services whose upgrade waits", () => {
    let s = settle(run(initialState("demo"), up(ex1, "c1")));
    s = settle(run(s, up({ ...ex1, db: spec("db:2") }, "c2", { upgrade: true })));
    expect(() => decide({ type: "Scale", stack: "demo", op: "x", scales: { db: 2 }, by: "u", source: "cli" }, s)).toThrow(/the upgrade of db is awaiting confirmation \(revision 1 → 2\)/);
    expect(decide({ type: "Scale", stack: "demo", op: "x", scales: { app: 2 }, by: "u", source: "cli" }, s)[0]).toMatchObject({ type: "ServiceScaled", service: "app" });
    expect(() => decide({ type: "Lifecycle", stack: "demo", op: "y", action: "stop", by: "u", source: "cli" }, s)).toThrow(/the upgrade of db/);
  });
});

describe("an upgrade that also adds a service", () => {
  it("creates the new service beside the upgrade", () => {
    let s = settle(run(initialState("demo"), up({ app: spec("app:1") }, "c1")));
    s = settle(run(s, up({ app: spec("app:2"), web: spec("web:1") }, "c2", { upgrade: true })));
    expect(rows(s)).toEqual({ app: "upgraded 2/1", web: "active 1/1" });
  });
});

describe("a start that made its container anew (a dockerd restart cut its first start short)", () => {
  it("the start's report carries the new id: the record follows it", () => {
    let s = run(initialState("demo"), up({ web: spec("web:1") }, "op1"));
    s = run(s, { type: "Plan", hosts, now: 0 });
    const report = (stepId: string, extra: { containerId?: string } = {}): Command => ({ type: "Report", report: { kind: "report", stack: "demo", stepId, host: "h1", ok: true, ...extra }, hosts, now: 0 });
    const next = (action: Step["action"]) => Object.values(s.steps).find((r) => r.status === "planned" && r.step.action === action)!.step.id;
    s = run(s, report(next("pull")));
    s = run(s, report(next("create"), { containerId: "first" }));
    expect(s.containers["demo-web-1"]?.dockerId).toBe("first");
    s = run(s, report(next("start"), { containerId: "second" }));
    expect(s.containers["demo-web-1"]).toMatchObject({ dockerId: "second", state: "running" });
  });
});

describe("a rollback whose rename report was lost (a queue lost with the server, a key replaced as the agent started again)", () => {
  it("the old container's start, reported first, says the rename happened: it runs under its name, and nothing is left planned", () => {
    const s0 = settle(run(initialState("demo"), up({ web: spec("web:1") }, "op1")));
    const s1 = settle(run(s0, up({ web: spec("web:2") }, "op2", { upgrade: true })));
    let s = run(run(s1, up({}, "op3", { rollback: true })), { type: "Plan", hosts, now: 1 });
    const report = (st: Step) => ({ type: "Report" as const, report: { kind: "report" as const, stack: "demo", stepId: st.id, host: st.host, ok: true }, hosts, now: 2 });
    const planned = (action: Step["action"]) => Object.values(s.steps).find((r) => r.status === "planned" && r.step.action === action && r.step.op === "op3")!.step;
    for (const action of ["stop", "remove"] as const) s = run(s, report(planned(action)));
    const rename = planned("rename");
    const start = planned("start");
    // the rename's report never comes; the start's does
    const events = decide(report(start), s);
    expect(events.slice(0, 2)).toEqual([
      { type: "StepSucceeded", stepId: rename.id, alreadyDone: true },
      { type: "StepSucceeded", stepId: start.id, at: 2 },
    ]);
    s = apply(s, events);
    expect(s.containers["demo-web-1"]).toMatchObject({ state: "running", revision: 1 });
    expect(s.containers["demo-web-1-r1"]).toBeUndefined();
    expect(Object.values(s.steps).filter((r) => r.status === "planned")).toEqual([]);
    // and the rename's report, coming late after all, changes nothing
    expect(decide(report(rename), s)).toEqual([]);
  });
});
