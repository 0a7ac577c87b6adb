import { describe, expect, it } from "vitest";
import { decide, type Command } from "./decide/index.js";
import type { StackEvent } from "./events.js";
import { initialState, type StackState } from "./state.js";
import { apply, hosts, rows, run, settle, spec, up } from "./testing.js";
import { containerRows, serviceRows } from "./view.js";

// A container's process ended by itself, as its host says: given a deployed stack / when Exited / then ContainerExited (or nothing).
const base = { stack: "demo", by: "admin", source: "cli" as const };
const s0 = settle(run(initialState("demo"), up({ web: spec("web:1"), db: spec("db:1") }, "op1")));
const web = s0.containers["demo-web-1"]!;
const exited = (extra: Partial<Extract<Command, { type: "Exited" }>> = {}): Command => ({ type: "Exited", host: "h1", container: "demo-web-1", dockerId: web.dockerId!, exitCode: 137, now: 50, ...extra });
const row = (s: StackState, name = "demo-web-1") => containerRows(s).find((r) => r.name === name);

describe("a container that exits by itself", () => {
  it("is recorded stopped, with its exit code: ps says so, and the service is no longer active", () => {
    const events = decide(exited(), s0);
    expect(events).toEqual([{ type: "ContainerExited", container: "demo-web-1", host: "h1", exitCode: 137, at: 50 } satisfies StackEvent]);
    const after = apply(s0, events);
    expect(after.containers["demo-web-1"]).toMatchObject({ state: "stopped", exited: { code: 137, at: 50 } });
    expect(row(after)).toMatchObject({ state: "stopped", detail: "exited with code 137" });
    expect(rows(after)).toEqual({ web: "inactive 1/1", db: "active 1/1" });
    expect(serviceRows(after).find((r) => r.name === "demo/web")?.detail).toBe("demo-web-1 exited with code 137");
    expect(row(after, "demo-db-1")).toMatchObject({ state: "running", detail: "" });
  });

  it("is said once: a second report of it changes nothing", () => {
    const after = run(s0, exited());
    expect(decide(exited({ now: 60 }), after)).toEqual([]);
  });

  it("is believed from its own host only, and only about the engine container the log knows", () => {
    expect(decide(exited({ host: "h2" }), s0)).toEqual([]);
    expect(decide(exited({ dockerId: "an-older-one" }), s0)).toEqual([]);
    expect(decide(exited({ container: "demo-nope-1" }), s0)).toEqual([]);
  });

  it("is not recorded while corral itself stops it: a stop step planned and not reported", () => {
    const stopping = run(run(s0, { type: "Lifecycle", op: "st1", action: "stop", services: ["web"], ...base }), { type: "Plan", hosts, now: 40 });
    expect(Object.values(stopping.steps).map((r) => `${r.step.action} ${r.step.container} ${r.status}`)).toEqual(["stop demo-web-1 planned"]);
    expect(decide(exited({ exitCode: 143 }), stopping)).toEqual([]);
    // and once stopped by corral, a late report of the exit says nothing either
    const stopped = settle(stopping);
    expect(stopped.containers["demo-web-1"]?.state).toBe("stopped");
    expect(decide(exited({ exitCode: 143 }), stopped)).toEqual([]);
    expect(row(stopped)?.detail).toBe("");
  });

  it("runs again after a start (or an up), which clears the exit", () => {
    const dead = run(s0, exited());
    const started = settle(run(dead, { type: "Lifecycle", op: "st2", action: "start", ...base }));
    expect(started.containers["demo-web-1"]).toMatchObject({ state: "running" });
    expect(started.containers["demo-web-1"]?.exited).toBeUndefined();
    expect(row(started)?.detail).toBe("");
    const again = settle(run(dead, up({ web: spec("web:1"), db: spec("db:1") }, "op3")));
    expect(again.containers["demo-web-1"]).toMatchObject({ state: "running", dockerId: web.dockerId });
    expect(rows(again)).toEqual({ web: "active 1/1", db: "active 1/1" });
  });

  it("inside an upgrade's monitor window fails the upgrade, as turning unhealthy does", () => {
    const v2 = { web: spec("web:2", { deploy: { update_config: { monitor: 30_000, failure_action: "pause" } } }), db: spec("db:1") };
    let s = run(s0, up(v2, "op2", { upgrade: true }));
    s = run(s, { type: "Plan", hosts, now: 1 });
    // report every step but the last one, as an agent would: the new container started at 2
    for (let i = 0; i < 20; i++) {
      const next = Object.values(s.steps).find((r) => r.status === "planned" && r.step.after.every((d) => s.steps[d]?.status !== "planned"));
      if (!next) break;
      s = run(s, { type: "Report", report: { kind: "report", stack: "demo", stepId: next.step.id, host: "h1", ok: true, ...(next.step.action === "create" ? { containerId: "fresh1" } : {}) }, hosts, now: 2 });
    }
    expect(s.op).toMatchObject({ kind: "upgrade", status: "running" });
    const events = decide(exited({ dockerId: "fresh1", exitCode: 1, now: 7_000 }), s);
    expect(events[0]).toEqual({ type: "ContainerExited", container: "demo-web-1", host: "h1", exitCode: 1, at: 7_000 });
    expect(events).toContainEqual({ type: "ServiceFailed", service: "web", reason: "container demo-web-1 exited with code 1 7 s after it started, inside the monitor window of 30 s" });
  });
});

describe("a container whose restart policy wants it back, and that its engine did not start again", () => {
  const policy = (restart: string) => settle(run(initialState("demo"), up({ web: spec("web:1", { restart }), db: spec("db:1") }, "op1")));
  const tick = (s: StackState, now: number): Command => ({ type: "Tick", now, hosts: [{ id: "h1" }] });
  const died = (s: StackState, code = 0, at = 50) => run(s, { type: "Exited", host: "h1", container: "demo-web-1", dockerId: s.containers["demo-web-1"]!.dockerId!, exitCode: code, now: at });

  it("is started by corral once its engine had HEAL_AFTER_MS to, in an operation of its own that names it", () => {
    const dead = died(policy("unless-stopped"));
    expect(decide(tick(dead, 50 + 9_999), dead)).toEqual([]);
    const events = decide(tick(dead, 50 + 10_000), dead);
    const started = events.find((e) => e.type === "OperationStarted");
    expect(started).toMatchObject({ kind: "start", by: "corral", services: ["web"], containers: ["demo-web-1"] });
    expect(events.filter((e) => e.type === "StepPlanned").map((e) => (e.type === "StepPlanned" ? `${e.step.action} ${e.step.container}` : ""))).toEqual(["start demo-web-1"]);
    const healed = settle(apply(dead, events));
    expect(healed.containers["demo-web-1"]).toMatchObject({ state: "running" });
    expect(healed.containers["demo-web-1"]).not.toHaveProperty("exited");
    expect(decide(tick(healed, 100_000), healed)).toEqual([]);
  });

  it("each exit is answered once: a start that failed is not tried again for it; the next exit is", () => {
    const dead = died(policy("always"));
    const failed = settle(run(dead, tick(dead, 20_000)), () => "no such container");
    expect(failed.op).toMatchObject({ kind: "start", status: "failed" });
    expect(decide(tick(failed, 30_000), failed)).toEqual([]);
  });

  it("is left alone with restart no (or none), on-failure after exit 0, on-failure with a count (its engine's), and after a stop", () => {
    for (const [restart, code] of [["no", 1], ["on-failure", 0], ["on-failure:3", 1]] as const) {
      const dead = died(policy(restart), code);
      expect(decide(tick(dead, 60_000), dead)).toEqual([]);
    }
    const onFailure = died(policy("on-failure"), 2);
    expect(decide(tick(onFailure, 60_000), onFailure).find((e) => e.type === "OperationStarted")).toMatchObject({ kind: "start" });
    // crashed, then the stack stopped by its user: stopped on purpose, not brought back
    const stopped = settle(run(died(policy("unless-stopped")), { type: "Lifecycle", op: "st1", action: "stop", ...base }));
    expect(stopped.containers["demo-web-1"]).not.toHaveProperty("exited");
    expect(decide(tick(stopped, 60_000), stopped)).toEqual([]);
  });

  it("waits for an operation in progress, and for an active host", () => {
    const dead = died(policy("unless-stopped"));
    const busy = run(dead, { type: "Lifecycle", op: "r1", action: "restart", services: ["db"], ...base });
    expect(decide(tick(busy, 60_000), busy).some((e) => e.type === "OperationStarted")).toBe(false);
    expect(decide({ type: "Tick", now: 60_000, hosts: [{ id: "h1", state: "draining" }] }, dead).some((e) => e.type === "OperationStarted" && e.kind === "start")).toBe(false);
  });
});

describe("a command whose operation the stack started already (the same request again, its answer lost)", () => {
  it("decides nothing, across a removal and a new life too; another operation id decides", () => {
    expect(decide(up({ web: spec("web:2") }, "op1", { upgrade: true }), s0)).toEqual([]);
    expect(decide(up({ web: spec("web:2") }, "op8", { upgrade: true }), s0).some((e) => e.type === "OperationStarted")).toBe(true);
    const scale = (op: string): Command => ({ type: "Scale", ...base, op, scales: { web: 3 }, hosts });
    expect(decide(scale("op1"), s0)).toEqual([]);
    expect(decide(scale("op9"), s0).some((e) => e.type === "OperationStarted")).toBe(true);
    const removed = settle(run(s0, { type: "Remove", ...base, op: "rm1" }));
    expect(removed.recentOps).toEqual(["op1", "rm1"]);
    expect(decide({ type: "Remove", ...base, op: "rm1" }, removed)).toEqual([]);
    const reborn = settle(run(removed, up({ web: spec("web:1") }, "op2")));
    expect(reborn.recentOps).toEqual(["op1", "rm1", "op2"]);
    expect(decide({ type: "Remove", ...base, op: "op1" }, reborn)).toEqual([]);
  });
});
