import { describe, expect, it } from "vitest";
import { decide } from "./decide/index.js";
import { initialState } from "./state.js";
import { engineIds, hosts, rows, run, settle, spec, up } from "./testing.js";

// Day-2 verbs, given events / when command / then state: scale, stop, start, restart.
const base = { stack: "demo", by: "admin", source: "cli" as const };
const v1 = { web: spec("web:1", { scale: 2 }), db: spec("db:1") };
const s0 = settle(run(initialState("demo"), up(v1, "op1")));
const actions = (s: ReturnType<typeof settle>) => Object.values(s.steps).map((r) => `${r.step.action} ${r.step.container ?? r.step.service}`);

describe("scale", () => {
  it("adds slots with the current config, and removes the highest ones; no new revision", () => {
    const up3 = settle(run(s0, { type: "Scale", op: "sc1", scales: { web: 3 }, ...base }));
    expect(rows(up3)).toEqual({ web: "active 3/3", db: "active 1/1" });
    expect(up3.revision).toBe(s0.revision);
    expect(up3.lastRevision).toBe(s0.lastRevision);
    expect(engineIds(up3)["demo-web-1"]).toBe(engineIds(s0)["demo-web-1"]); // the others are left alone
    const down = settle(run(up3, { type: "Scale", op: "sc2", scales: { web: 1 }, ...base }));
    expect(actions(down).sort()).toEqual(["remove demo-web-2", "remove demo-web-3", "stop demo-web-2", "stop demo-web-3"]);
    expect(Object.keys(down.containers).sort()).toEqual(["demo-db-1", "demo-web-1"]);
    expect(rows(down).web).toBe("active 1/1");
  });

  it("refuses an unknown service, naming the services, and a scale while an upgrade awaits confirmation", () => {
    expect(() => decide({ type: "Scale", op: "x", scales: { nope: 2 }, ...base }, s0)).toThrow("stack demo has no service nope (services: web, db)");
    const upgraded = settle(run(s0, up({ ...v1, web: spec("web:2", { scale: 2 }) }, "op2", { upgrade: true })));
    expect(() => decide({ type: "Scale", op: "x", scales: { web: 3 }, ...base }, upgraded)).toThrow(/the upgrade of web is awaiting confirmation \(revision 1 → 2\); first 'corral up --confirm-upgrade' or 'corral up --rollback'/);
    expect(() => decide({ type: "Scale", op: "x", scales: { web: 3 }, ...base }, initialState("gone"))).toThrow("stack gone not found");
  });
});

describe("stop, start, restart", () => {
  it("stop leaves the containers (stopped) and the service inactive; start brings the very same ones back", () => {
    const stopped = settle(run(s0, { type: "Lifecycle", op: "st1", action: "stop", services: ["web"], ...base }));
    expect(rows(stopped)).toEqual({ web: "inactive 2/2", db: "active 1/1" });
    const started = settle(run(stopped, { type: "Lifecycle", op: "st2", action: "start", ...base }));
    expect(rows(started)).toEqual({ web: "active 2/2", db: "active 1/1" });
    expect(Object.values(engineIds(started))).toEqual(Object.values(engineIds(s0)));
  });

  it("restart goes in batches: a batch stops only once the one before has started, after the interval", () => {
    const s = run(run(s0, { type: "Lifecycle", op: "rs1", action: "restart", batchSize: 2, intervalMs: 500, ...base }), { type: "Plan", hosts, now: 1 });
    const steps = Object.values(s.steps).map((r) => r.step);
    const startsOfFirst = steps.filter((x) => x.action === "start" && x.container !== "demo-web-2").map((x) => x.id);
    const laterStop = steps.find((x) => x.action === "stop" && x.container === "demo-web-2")!;
    expect(steps.map((x) => `${x.action} ${x.container}`)).toEqual(["stop demo-db-1", "start demo-db-1", "stop demo-web-1", "start demo-web-1", "stop demo-web-2", "start demo-web-2"]);
    expect(laterStop.after.sort()).toEqual(startsOfFirst.sort());
    expect(laterStop.delayMs).toBe(500);
    expect(rows(settle(s))).toEqual({ web: "active 2/2", db: "active 1/1" });
  });

  it("refuses while another operation runs, saying which", () => {
    const busy = run(s0, { type: "Lifecycle", op: "st1", action: "stop", ...base });
    expect(() => decide({ type: "Lifecycle", op: "st2", action: "restart", ...base }, busy)).toThrow(/cannot restart stack demo: it is stopping \(operation st1\)/);
  });
});

describe("rm --type service | container", () => {
  it("a service removed: a new revision without it, and all its containers gone", () => {
    const s1 = settle(run(s0, { type: "RemoveService", op: "rms", service: "web", ...base }));
    expect(Object.keys(s1.services)).toEqual(["db"]);
    expect(s1.revision).toBe(2);
    expect(s1.revisions[2]?.changed).toEqual(["web"]);
    expect(Object.keys(s1.containers)).toEqual(["demo-db-1"]);
    expect(engineIds(s1)["demo-db-1"]).toBe(engineIds(s0)["demo-db-1"]);
  });

  it("a container removed: the same slot is made anew (a new engine id); scaled down, it is not", () => {
    const s1 = settle(run(s0, { type: "RemoveContainer", op: "rmc", container: "demo-web-2", ...base }));
    expect(actions(s1)).toEqual(["stop demo-web-2", "remove demo-web-2", "create demo-web-2", "start demo-web-2"]);
    expect(engineIds(s1)["demo-web-2"]).not.toBe(engineIds(s0)["demo-web-2"]);
    expect(rows(s1).web).toBe("active 2/2");
    expect(() => decide({ type: "RemoveContainer", op: "x", container: "demo-web-9", ...base }, s0)).toThrow("stack demo has no container demo-web-9");
  });
});

describe("a host port published by the container itself", () => {
  it("one container of the service per host: a second slot goes to another host, or is refused with the way out", () => {
    const web = { web: spec("web:1", { ports: [{ target: 80, published: 60000, protocol: "tcp" }] }) };
    const one = settle(run(initialState("demo"), up(web, "op1")));
    const refused = run(run(one, { type: "Scale", op: "sc", scales: { web: 2 }, ...base }), { type: "Plan", hosts, now: 1 });
    expect(refused.op).toMatchObject({ status: "failed" });
    expect(refused.op?.reason).toMatch(/^no host can run demo-web-2: h1: port 60000 in use by demo-web-1; .*publish it with 'mode: ingress' to run replicas behind one port, or add a host$/);
    const two = run(run(one, { type: "Scale", op: "sc2", scales: { web: 2 }, ...base }), { type: "Plan", hosts: [{ id: "h1" }, { id: "h2" }], now: 1 });
    expect(Object.values(two.steps).filter((r) => r.step.action === "create").map((r) => r.step.host)).toEqual(["h2"]);
  });
});
