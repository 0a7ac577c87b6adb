import { describe, expect, it } from "vitest";
import { decide, stepId, type Command } from "./decide/index.js";
import type { StackEvent } from "./events.js";
import { configHash } from "./hash.js";
import type { ServiceSpec, Step } from "./model.js";
import { evolve, initialState } from "./state.js";
import { given, hosts, run } from "./testing.js";
import { serviceRows } from "./view.js";

const spec = (image: string, scale = 1): ServiceSpec => ({ image, environment: {}, labels: {}, ports: [], cap_add: [], cap_drop: [], scale });
const web = spec("corral-hello:1");
const up = (services: Record<string, ServiceSpec>, op = "op1"): Command => ({ type: "Up", stack: "demo", op, services, by: "admin", source: "cli" });
const planned = (events: StackEvent[]) => events.flatMap((e) => (e.type === "StepPlanned" ? [e.step] : []));
const ok = (step: Step, extra: Partial<{ containerId: string }> = {}): Command => ({
  type: "Report",
  report: { kind: "report", stack: "demo", stepId: step.id, host: step.host, ok: true, ...extra },
  hosts,
  now: 10,
});

const stackUp: StackEvent[] = [
  { type: "StackCreated", stack: "demo", by: "admin", owner: "admin", group: "admin" },
  { type: "RevisionCommitted", revision: 1, services: { web: { spec: web, hash: configHash(web) } }, volumes: {}, secrets: {}, secretVersions: {}, changed: ["web"], by: "admin", source: "cli" },
  { type: "OperationStarted", op: "op1", kind: "up", revision: 1, by: "admin", source: "cli" },
];

describe("up", () => {
  it("creates a stack, its first revision and an operation", () => {
    given([]).when(up({ web })).then(stackUp);
  });

  it("is refused while another up is in progress, saying what and the way out", () => {
    given(stackUp).when(up({ web }, "op2")).thenRefused("conflict", /coming up \(operation op1\).*corral rm --type stack demo/);
  });

  it("plans pull, create and start with deterministic ids, pulls first", () => {
    const steps = planned(given(stackUp).when({ type: "Plan", hosts, now: 5 }).events());
    expect(steps.map((s) => s.id)).toEqual([
      stepId("demo", "op1", 1, "web", "pull", 1),
      stepId("demo", "op1", 1, "web", "create", 1),
      stepId("demo", "op1", 1, "web", "start", 1),
    ]);
    expect(steps[1]).toMatchObject({ action: "create", container: "demo-web-1", host: "h1", after: [steps[0]!.id], spec: web });
    expect(steps[2]).toMatchObject({ action: "start", after: [steps[1]!.id] });
  });

  it("fails the operation when no host is alive", () => {
    given(stackUp).when({ type: "Plan", hosts: [], now: 5 }).then([{ type: "OperationFailed", op: "op1", reason: expect.stringMatching(/no host is available/) as unknown as string }]);
  });

  it("plans once: a second Plan is a no-op", () => {
    const s = run(given(stackUp).state, { type: "Plan", hosts, now: 5 });
    expect(decide({ type: "Plan", hosts, now: 6 }, s)).toEqual([]);
  });

  it("settles when every step succeeded, and ignores duplicate reports", () => {
    let s = run(given(stackUp).state, { type: "Plan", hosts, now: 5 });
    const [pull, create, start] = Object.values(s.steps).map((r) => r.step);
    s = run(s, ok(pull!));
    expect(decide(ok(pull!), s)).toEqual([]); // duplicate delivery
    s = run(s, ok(create!, { containerId: "abc" }));
    const last = decide(ok(start!), s);
    expect(last).toEqual([{ type: "StepSucceeded", stepId: start!.id, at: 10 }, { type: "OperationSucceeded", op: "op1" }]);
    s = last.reduce(evolve, s);
    expect(s.containers["demo-web-1"]).toMatchObject({ dockerId: "abc", state: "running", host: "h1" });
    expect(serviceRows(s)[0]).toMatchObject({ name: "demo/web", state: "active", scale: "1/1" });
  });

  it("a failed pull puts the service in error with Docker's message", () => {
    let s = run(given(stackUp).state, { type: "Plan", hosts, now: 5 });
    const steps = Object.values(s.steps).map((r) => r.step);
    const fail = (step: Step, error: string): Command => ({ type: "Report", report: { kind: "report", stack: "demo", stepId: step.id, host: "h1", ok: false, error }, hosts, now: 10 });
    // what waits on the pull fails with it at once; the agent's own "skipped" reports come too late to matter
    const events = decide(fail(steps[0]!, "pull access denied for nope"), s);
    expect(events.filter((e) => e.type === "StepFailed").map((e) => e.type === "StepFailed" && e.error)).toEqual([
      "pull access denied for nope",
      "skipped: pull of web failed",
      "skipped: create of demo-web-1 failed",
    ]);
    expect(events.at(-1)).toEqual({ type: "OperationFailed", op: "op1", reason: "web: pull access denied for nope" });
    expect(decide(fail(steps[1]!, "skipped: pull failed"), events.reduce(evolve, s))).toEqual([]);
    s = events.reduce(evolve, s);
    expect(serviceRows(s)[0]).toMatchObject({ state: "error", detail: "pull access denied for nope", scale: "0/1" });
  });

  it("re-running up with no change converges without a new revision", () => {
    let s = run(given(stackUp).state, { type: "Plan", hosts, now: 5 });
    for (const r of Object.values(s.steps)) s = run(s, ok(r.step));
    const events = decide(up({ web }, "op2"), s);
    expect(events).toEqual([{ type: "OperationStarted", op: "op2", kind: "up", revision: 1, by: "admin", source: "cli" }]);
    s = events.reduce(evolve, s);
    expect(decide({ type: "Plan", hosts, now: 9 }, s)).toEqual([
      { type: "WavePlanned", op: "op2", services: ["web"] },
      { type: "OperationSucceeded", op: "op2" },
    ]);
  });

  it("refuses a changed service without --upgrade", () => {
    let s = run(given(stackUp).state, { type: "Plan", hosts, now: 5 });
    for (const r of Object.values(s.steps)) s = run(s, ok(r.step));
    expect(() => decide(up({ web: spec("corral-hello:2") }, "op2"), s)).toThrow(/has changed; run 'corral up --upgrade'/);
  });

  it("spreads new containers over the least loaded hosts", () => {
    const twoSlots = stackUp.map((e) =>
      e.type === "RevisionCommitted" ? { ...e, services: { web: { spec: spec("x", 2), hash: configHash(spec("x", 2)) } } } : e,
    );
    const steps = planned(given(twoSlots).when({ type: "Plan", hosts: [{ id: "h2" }, { id: "h1" }], now: 1 }).events());
    expect(steps.filter((s) => s.action === "create").map((s) => s.host)).toEqual(["h1", "h2"]);
    expect(steps.filter((s) => s.action === "pull").map((s) => s.host)).toEqual(["h1", "h2"]);
  });

  it("gives each host's pull its own step id, so every host's pull is in the state and each report counts", () => {
    const twoSlots = stackUp.map((e) =>
      e.type === "RevisionCommitted" ? { ...e, services: { web: { spec: spec("x", 2), hash: configHash(spec("x", 2)) } } } : e,
    );
    const s = run(given(twoSlots).state, { type: "Plan", hosts: [{ id: "h1" }, { id: "h2" }], now: 1 });
    const pulls = Object.values(s.steps).filter((r) => r.step.action === "pull");
    expect(pulls.map((r) => r.step.host).sort()).toEqual(["h1", "h2"]);
    for (const create of Object.values(s.steps).filter((r) => r.step.action === "create")) {
      const pull = s.steps[create.step.after[0]!]?.step;
      expect(pull?.action).toBe("pull");
      expect(pull?.host).toBe(create.step.host);
    }
  });

  it("places new containers on active hosts only: a draining, inactive or disconnected host takes none", () => {
    const threeSlots = stackUp.map((e) =>
      e.type === "RevisionCommitted" ? { ...e, services: { web: { spec: spec("x", 3), hash: configHash(spec("x", 3)) } } } : e,
    );
    const all = [
      { id: "h1", state: "draining" as const, labels: {} },
      { id: "h2", state: "inactive" as const },
      { id: "h3", state: "disconnected" as const },
      { id: "h4", state: "active" as const },
    ];
    const steps = planned(given(threeSlots).when({ type: "Plan", hosts: all, now: 1 }).events());
    expect(steps.filter((s) => s.action === "create").map((s) => s.host)).toEqual(["h4", "h4", "h4"]);
    given(threeSlots)
      .when({ type: "Plan", hosts: all.slice(0, 3), now: 1 })
      .then([{ type: "OperationFailed", op: "op1", reason: "no host can run demo-web-1: h1: draining, h2: inactive, h3: disconnected" }]);
  });
});

describe("depends_on and placement", () => {
  const db = spec("mysql:8");
  const app = { ...spec("app:1"), depends_on: { db: { condition: "service_started" as const, required: true } } };
  const start = (services: Record<string, ServiceSpec>) =>
    given([]).when(up(services)).events().reduce(evolve, initialState("demo"));
  const fail = (step: Step): Command => ({ type: "Report", report: { kind: "report", stack: "demo", stepId: step.id, host: "h1", ok: false, error: "boom" }, hosts, now: 10 });

  it("plans a service only once what it depends on has come up", () => {
    let s = run(start({ app, db }), { type: "Plan", hosts, now: 1 });
    expect(new Set(Object.values(s.steps).map((r) => r.step.service))).toEqual(new Set(["db"]));
    const dbSteps = Object.values(s.steps).map((r) => r.step);
    for (const step of dbSteps.slice(0, -1)) s = run(s, ok(step));
    const last = decide(ok(dbSteps.at(-1)!), s);
    expect(last.filter((e) => e.type === "WavePlanned")).toEqual([{ type: "WavePlanned", op: "op1", services: ["app"] }]);
    expect(last.filter((e) => e.type === "StepPlanned").map((e) => e.type === "StepPlanned" && e.step.service)).toEqual(["app", "app", "app"]);
    expect(last.some((e) => e.type === "OperationSucceeded")).toBe(false);
  });

  it("fails the operation when a dependency did not come up, naming both", () => {
    const s = run(start({ app, db }), { type: "Plan", hosts, now: 1 });
    const dbSteps = Object.values(s.steps).map((r) => r.step);
    const events = decide(fail(dbSteps[0]!), s);
    expect(events.at(-1)).toEqual({ type: "OperationFailed", op: "op1", reason: "db: boom; app: not started: its dependency db did not come up" });
  });

  it("places a service on the hosts its constraints allow, or says why it cannot", () => {
    const pinned = { ...spec("x"), deploy: { placement: { constraints: ["node.hostname==h2"] } } };
    const steps = planned(
      given([]).when(up({ web: pinned })).events().reduce(evolve, initialState("demo")) && decide({ type: "Plan", hosts: [{ id: "h1" }, { id: "h2" }], now: 1 }, start({ web: pinned })),
    );
    expect(new Set(steps.map((x) => x.host))).toEqual(new Set(["h2"]));
    expect(decide({ type: "Plan", hosts: [{ id: "h1" }], now: 1 }, start({ web: pinned }))).toEqual([
      { type: "OperationFailed", op: "op1", reason: "no host can run demo-web-1: h1: node.hostname is h1, not h2" },
    ]);
  });
});

describe("waves", () => {
  it("passes through waves with nothing to do, so a converged stack with depends_on settles at once", () => {
    const db = spec("mysql:8");
    const app = { ...spec("app:1"), depends_on: { db: { condition: "service_started" as const, required: true } } };
    let s = given([]).when(up({ app, db })).events().reduce(evolve, initialState("demo"));
    s = run(s, { type: "Plan", hosts, now: 1 });
    for (let i = 0; i < 3; i++) for (const r of Object.values(s.steps).filter((x) => x.status === "planned")) s = run(s, ok(r.step));
    expect(s.op?.status).toBe("succeeded");
    s = decide(up({ app, db }, "op2"), s).reduce(evolve, s);
    expect(decide({ type: "Plan", hosts, now: 9 }, s)).toEqual([
      { type: "WavePlanned", op: "op2", services: ["db"] },
      { type: "WavePlanned", op: "op2", services: ["app"] },
      { type: "OperationSucceeded", op: "op2" },
    ]);
  });
});

describe("rm", () => {
  const running = (() => {
    let s = run(given(stackUp).state, { type: "Plan", hosts, now: 5 });
    for (const r of Object.values(s.steps)) s = run(s, ok(r.step, r.step.action === "create" ? { containerId: "abc" } : {}));
    return s;
  })();

  it("is refused for a stack that does not exist", () => {
    given([]).when({ type: "Remove", stack: "demo", op: "rm1", by: "admin", source: "cli" }).thenRefused("not_found", /stack demo not found/);
  });

  it("stops then removes every container, then removes the stack", () => {
    let s = run(running, { type: "Remove", stack: "demo", op: "rm1", by: "admin", source: "cli" });
    s = run(s, { type: "Plan", hosts, now: 7 });
    const steps = Object.values(s.steps).map((r) => r.step);
    expect(steps.map((x) => [x.action, x.container])).toEqual([
      ["stop", "demo-web-1"],
      ["remove", "demo-web-1"],
    ]);
    s = run(s, ok(steps[0]!));
    const events = decide(ok(steps[1]!), s);
    expect(events.slice(1)).toEqual([{ type: "OperationSucceeded", op: "rm1" }, { type: "StackRemoved", op: "rm1", at: 10 }]);
    s = events.reduce(evolve, s);
    expect(s.exists).toBe(false);
    expect(s.containers).toEqual({});
  });

  it("supersedes an up in progress and covers the containers it may still create", () => {
    const planning = run(given(stackUp).state, { type: "Plan", hosts, now: 5 });
    let s = run(planning, { type: "Remove", stack: "demo", op: "rm1", by: "admin", source: "cli" });
    s = run(s, { type: "Plan", hosts, now: 7 });
    expect(Object.values(s.steps).map((r) => [r.step.action, r.step.container])).toEqual([
      ["stop", "demo-web-1"],
      ["remove", "demo-web-1"],
    ]);
  });

  it("an empty stack is removed at once", () => {
    const empty = [
      ...stackUp.slice(0, 2),
      { type: "OperationStarted", op: "op1", kind: "up", revision: 1, by: "a", source: "cli" } as StackEvent,
      { type: "OperationFailed", op: "op1", reason: "x" } as StackEvent,
    ];
    const s = run(given(empty).state, { type: "Remove", stack: "demo", op: "rm1", by: "admin", source: "cli" });
    expect(decide({ type: "Plan", hosts, now: 1 }, s)).toEqual([
      { type: "WavePlanned", op: "rm1", services: ["web"] },
      { type: "OperationSucceeded", op: "rm1" },
      { type: "StackRemoved", op: "rm1", at: 1 },
    ]);
  });
});

describe("reconcile", () => {
  it("re-sends steps planned and not reported within the timeout", () => {
    let s = run(given(stackUp).state, { type: "Plan", hosts, now: 1000 });
    const [pull] = Object.values(s.steps).map((r) => r.step);
    s = run(s, ok(pull!));
    expect(decide({ type: "Resend", now: 1500, timeoutMs: 1000 }, s)).toEqual([]);
    const resent = decide({ type: "Resend", now: 2000, timeoutMs: 1000 }, s);
    expect(resent.map((e) => e.type === "StepResent" && [e.stepId.split(".")[3], e.attempt])).toEqual([
      ["create", 2],
      ["start", 2],
    ]);
    s = resent.reduce(evolve, s);
    expect(decide({ type: "Resend", now: 2500, timeoutMs: 1000 }, s)).toEqual([]);
  });

  it("re-sends at once the steps of a host whose agent started again, whatever their age, and only that host's", () => {
    let s = run(given(stackUp).state, { type: "Plan", hosts, now: 1000 });
    const [pull] = Object.values(s.steps).map((r) => r.step);
    s = run(s, ok(pull!));
    const host = pull!.host;
    const resent = decide({ type: "Resend", now: 1001, timeoutMs: 30_000, host }, s);
    expect(resent.map((e) => e.type === "StepResent" && [e.stepId.split(".")[3], e.attempt])).toEqual([
      ["create", 2],
      ["start", 2],
    ]);
    expect(decide({ type: "Resend", now: 1001, timeoutMs: 30_000, host: `${host}-other` }, s)).toEqual([]);
  });
});

describe("secrets in the config hash", () => {
  it("a new version of a mounted secret changes the hash; scale and rollout settings do not", () => {
    const withSecret: ServiceSpec = { ...web, secrets: [{ source: "pw" }] };
    const names = { pw: { name: "web.demo.pw" } };
    expect(configHash(withSecret, { "web.demo.pw": 1 }, names)).not.toBe(configHash(withSecret, { "web.demo.pw": 2 }, names));
    expect(configHash(withSecret, { "web.demo.pw": 1, other: 5 }, names)).toBe(configHash(withSecret, { "web.demo.pw": 1, other: 9 }, names));
    expect(configHash({ ...web, scale: 5, deploy: { replicas: 5, update_config: { parallelism: 2 } } })).toBe(configHash(web));
    expect(configHash({ ...web, deploy: { resources: { limits: { memory: 1024 } } } })).not.toBe(configHash(web));
  });

  it("create steps carry secret names and versions, never values", () => {
    const withSecret: ServiceSpec = { ...web, secrets: [{ source: "pw", target: "db-password", mode: 0o400 }] };
    const withSecrets = { ...up({ web: withSecret }), secrets: { pw: { name: "web.demo.pw", file: "/x" } }, secretVersions: { "web.demo.pw": 3 } } as Command;
    const s = given([]).when(withSecrets).events().reduce(evolve, initialState("demo"));
    const create = planned(decide({ type: "Plan", hosts, now: 1 }, s)).find((x) => x.action === "create");
    expect(create?.secrets).toEqual([{ name: "web.demo.pw", version: 3, target: "db-password", uid: "0", gid: "0", mode: 0o400 }]);
  });
});

describe("step timeouts", () => {
  it("a step no host answers fails after the last attempt, and the operation ends with the reason", () => {
    let s = run(given(stackUp).state, { type: "Plan", hosts, now: 0 });
    for (let t = 1; t <= 3; t++) s = run(s, { type: "Resend", now: t * 1000, timeoutMs: 1000, maxAttempts: 3, hosts });
    expect(s.op?.status).toBe("failed");
    expect(s.op?.reason).toMatch(/^web: no answer from host h1 after 3 attempts/);
  });
});
