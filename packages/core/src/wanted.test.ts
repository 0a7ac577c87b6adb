import { describe, expect, it } from "vitest";
import { decide, type HostInfo } from "./decide/index.js";
import type { StackEvent } from "./events.js";
import { initialState, type StackState } from "./state.js";
import { apply, run, settle, spec, up } from "./testing.js";
import { wantedOnHost } from "./wanted.js";

// Given a stack's state, which containers does the control plane want on host X? (An agent removes the corral containers nobody wants.)
const both: HostInfo[] = [{ id: "h1" }, { id: "h2" }];
const names = (s: StackState, host: string) => wantedOnHost(s, host).map((w) => w.name);
const deployed = (scale = 2) => settle(run(initialState("demo"), up({ web: spec("web:1", { scale }) }, "op1")), undefined, false, both);

describe("wantedOnHost", () => {
  it("lists the containers the log has on that host, with their engine ids, the running ones said so", () => {
    const s = deployed();
    expect(wantedOnHost(s, "h1")).toEqual([{ name: "demo-web-1", dockerId: s.containers["demo-web-1"]!.dockerId, running: true }]);
    expect(names(s, "h2")).toEqual(["demo-web-2"]);
    expect(wantedOnHost(s, "h3")).toEqual([]);
  });

  it("keeps an upgrade's previous containers, stopped, beside the new ones", () => {
    const s = settle(run(deployed(1), up({ web: spec("web:2") }, "op2", { upgrade: true })), undefined, false, both);
    const host = s.containers["demo-web-1"]!.host;
    const previous = Object.values(s.containers).find((c) => c.previousOf === "demo-web-1")!;
    expect(previous).toBeDefined();
    expect(wantedOnHost(s, host)).toEqual(
      [
        { name: "demo-web-1", dockerId: s.containers["demo-web-1"]!.dockerId, running: true },
        { name: previous.name, dockerId: previous.dockerId, stopped: true },
      ].sort((a, b) => (a.name < b.name ? -1 : 1)),
    );
  });

  it("says stopped of a container corral stopped, not while a step that has not reported names it, nor of one that exited on its own", () => {
    const s = deployed(1);
    const host = s.containers["demo-web-1"]!.host;
    const stopping = run(run(s, { type: "Lifecycle", stack: "demo", op: "op2", action: "stop", by: "admin", source: "cli" }), { type: "Plan", hosts: both, now: 2 });
    expect(stopping.op?.status).toBe("running");
    expect(Object.values(stopping.steps).some((r) => r.status === "planned" && r.step.container === "demo-web-1")).toBe(true);
    expect(wantedOnHost(stopping, host)[0]).not.toHaveProperty("stopped");
    const stopped = settle(stopping, undefined, false, both);
    expect(stopped.containers["demo-web-1"]!.state).toBe("stopped");
    expect(wantedOnHost(stopped, host)).toEqual([{ name: "demo-web-1", dockerId: s.containers["demo-web-1"]!.dockerId, stopped: true }]);
    const c = s.containers["demo-web-1"]!;
    const crashed = apply(s, [{ type: "ContainerExited", container: c.name, host, exitCode: 1, at: 5 } satisfies StackEvent]);
    expect(wantedOnHost(crashed, host)).toEqual([{ name: "demo-web-1", dockerId: c.dockerId }]);
  });

  it("wants what the operation in progress has sent there and not heard back about: nothing in flight is an orphan", () => {
    const s = run(run(initialState("demo"), up({ web: spec("web:1") }, "op1")), { type: "Plan", hosts: [{ id: "h1" }], now: 1 });
    expect(Object.keys(s.containers)).toEqual([]);
    expect(names(s, "h1")).toEqual(["demo-web-1"]);
    expect(names(s, "h2")).toEqual([]);
  });

  it("wants a create superseded by another operation before it reported (inflight)", () => {
    const sent = run(run(initialState("demo"), up({ web: spec("web:1") }, "op1")), { type: "Plan", hosts: [{ id: "h1" }], now: 1 });
    const removing = run(sent, { type: "Remove", stack: "demo", op: "rm1", by: "admin", source: "cli" });
    expect(removing.inflight).toHaveProperty("demo-web-1");
    expect(names(removing, "h1")).toEqual(["demo-web-1"]);
  });

  it("wants a scheduled job's running run, and no longer once it has finished", () => {
    const job = spec("job:1", { labels: { "io.corral.cron.schedule": "* * * * *" } });
    const s = settle(run(initialState("demo"), up({ job }, "op1")));
    const fired = apply(s, decide({ type: "Tick", now: 60_000, hosts: [{ id: "h1" }] }, s));
    const fired2 = apply(fired, decide({ type: "Tick", now: 120_000, hosts: [{ id: "h1" }] }, fired));
    const r = fired2.cron.job?.runs.at(-1);
    expect(r?.status).toBe("running");
    expect(names(fired2, "h1")).toContain(r!.container);
    const done = apply(fired2, [{ type: "CronRunFinished", service: "job", run: r!.run, at: 121_000, exitCode: 0 } satisfies StackEvent]);
    expect(names(done, "h1")).not.toContain(r!.container);
  });

  it("does not want the stale container left on a host that was lost, though the slot's new one has its name elsewhere", () => {
    const s = deployed();
    const moved = settle(run(s, { type: "Tick", now: 5, hosts: [{ id: "h1", state: "disconnected" }, { id: "h2" }] }), undefined, false, [{ id: "h1", state: "disconnected" }, { id: "h2" }]);
    expect(Object.keys(moved.lost ?? {})).toEqual(["demo-web-1@h1"]);
    expect(names(moved, "h1")).toEqual([]);
    expect(names(moved, "h2")).toEqual(["demo-web-1", "demo-web-2"]);
    // h1 back: the cleanup's steps name it on h1, and still it is not wanted there
    const cleanup = run(moved, { type: "Tick", now: 6, hosts: both });
    expect(cleanup.op).toMatchObject({ kind: "cleanup", status: "running" });
    expect(Object.values(cleanup.steps).some((r) => r.step.host === "h1" && r.step.container === "demo-web-1")).toBe(true);
    expect(names(cleanup, "h1")).toEqual([]);
  });

  it("wants nothing of a removed stack", () => {
    const gone = settle(run(deployed(), { type: "Remove", stack: "demo", op: "rm1", by: "admin", source: "cli" }), undefined, false, both);
    expect(gone.exists).toBe(false);
    expect(names(gone, "h1")).toEqual([]);
    expect(names(gone, "h2")).toEqual([]);
  });
});
