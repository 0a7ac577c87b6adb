import { describe, expect, it } from "vitest";
import { decide, type Command } from "./decide/index.js";
import type { Commit, StackEvent } from "./events.js";
import { Progress, progressFrom } from "./progress.js";
import { evolveAll, fold, initialState, type StackState } from "./state.js";
import { hosts, run, settle, spec, up } from "./testing.js";

// Progress lines as pure functions of the log: given the events of an operation, the lines a user reads, in order.

/** Run a command and a perfect agent (every step succeeds, in the order the host would run them); every event, in order. */
function drive(s: StackState, command: Command): { state: StackState; events: StackEvent[] } {
  const events: StackEvent[] = [];
  const step = (c: Command) => {
    const out = decide(c, s);
    events.push(...out);
    s = evolveAll(s, out);
  };
  step(command);
  step({ type: "Plan", hosts, now: 1 });
  for (let guard = 0; guard < 100 && s.op?.status === "running"; guard++) {
    const next = Object.values(s.steps).find((r) => r.status === "planned" && r.step.after.every((d) => s.steps[d]?.status !== "planned"));
    if (!next) break;
    step({ type: "Report", report: { kind: "report", stack: "demo", stepId: next.step.id, host: "h1", ok: true, ...(next.step.action === "create" ? { containerId: `c-${next.step.id}` } : {}) }, hosts, now: 2 });
  }
  return { state: s, events };
}

const linesOf = (events: StackEvent[], progress = new Progress("demo")) => events.flatMap((e) => progress.line(e)?.split("\n") ?? []);

const v1 = { app: spec("app:1") };
const v2 = { app: spec("app:2") };
const s1 = settle(run(initialState("demo"), up(v1, "op1")));

describe("progress of an up", () => {
  it("a first up: the pull, then the create and the start, each announced when it can go", () => {
    const { events } = drive(initialState("demo"), up(v1, "op1"));
    expect(linesOf(events)).toEqual(["Revision 1: app changed", "[app]: Pulled app:1", "[app]: Creating", "[app]: Created", "[app]: Starting", "[app]: Started"]);
  });

  it("an up that changes nothing says the stack is up to date, and nothing else", () => {
    const { events } = drive(s1, up(v1, "op2"));
    expect(events.some((e) => e.type === "StepPlanned")).toBe(false);
    expect(linesOf(events)).toEqual(["Stack demo is up to date"]);
  });

  it("an up that starts a stopped container is not 'up to date'", () => {
    const stopped = settle(run(s1, { type: "Lifecycle", stack: "demo", op: "st", action: "stop", by: "admin", source: "cli" }));
    expect(linesOf(drive(stopped, up(v1, "op3")).events)).toEqual(["[app]: Starting", "[app]: Started"]);
  });
});

describe("progress of an upgrade and its rollback", () => {
  const upgrade = drive(s1, up(v2, "op2", { upgrade: true }));

  it("upgrade, stop-first: the old container stops before the new one is created; the rename says nothing", () => {
    expect(linesOf(upgrade.events)).toEqual([
      "Revision 2: app changed",
      "Upgrading app",
      "[app]: Pulled app:2",
      "[app]: Stopping",
      "[app]: Stopped",
      "[app]: Creating",
      "[app]: Created",
      "[app]: Starting",
      "[app]: Started",
      "Upgraded: 'corral up --confirm-upgrade' to keep it, 'corral up --rollback' to go back",
    ]);
    // the create was planned at once, behind the stop and the rename: the old lines announced it with the pull
    const createPlanned = upgrade.events.findIndex((e) => e.type === "StepPlanned" && e.step.action === "create");
    const stopDone = upgrade.events.findIndex((e) => e.type === "StepSucceeded" && upgrade.state.steps[e.stepId]?.step.action === "stop");
    expect(createPlanned).toBeLessThan(stopDone);
  });

  it("upgrade, start-first: the new container starts, then the old one stops", () => {
    const { events } = drive(s1, up(v2, "op2", { upgrade: true, startFirst: true }));
    expect(linesOf(events).slice(2, -1)).toEqual(["[app]: Pulled app:2", "[app]: Creating", "[app]: Created", "[app]: Starting", "[app]: Started", "[app]: Stopping", "[app]: Stopped"]);
  });

  it("rollback: the new container stops and is removed, the old one starts again under its name; no renames", () => {
    const { events } = drive(upgrade.state, up({}, "op3", { rollback: true }));
    expect(linesOf(events)).toEqual(["[app]: Stopping", "[app]: Stopped", "[app]: Removed demo-app-1", "[app]: Starting", "[app]: Started", "Rolled back to revision 1"]);
  });

  it("confirm: the old container goes, named as the user knows it", () => {
    const { events } = drive(upgrade.state, up({}, "op3", { confirm: true }));
    expect(linesOf(events)).toEqual(["[app]: Removed demo-app-1 (the old one, revision 1)", "Upgrade confirmed"]);
  });

  it("a batch waits for the one before: its stop is announced when the first slot's new container has started", () => {
    const two = settle(run(initialState("demo"), up({ app: spec("app:1", { scale: 2 }) }, "op1")));
    const { events } = drive(two, up({ app: spec("app:2", { scale: 2 }) }, "op2", { upgrade: true, batchSize: 1 }));
    const lines = linesOf(events);
    expect(lines.filter((l) => l === "[app]: Stopping")).toHaveLength(2);
    expect(lines.indexOf("[app]: Started")).toBeLessThan(lines.lastIndexOf("[app]: Stopping"));
  });
});

describe("progress read part way (a page of the log after a version)", () => {
  it("knows what had succeeded before the page: the lines are those a reader from the start saw", () => {
    const { events } = drive(s1, up(v2, "op2", { upgrade: true }));
    const all = linesOf(events);
    // commits of one event each, after the state s1 (version 0 here): cut after the stop succeeded
    const commits: Commit[] = events.map((e, i) => ({ stack: "demo", version: i + 1, at: i, events: [e] }));
    const cut = events.findIndex((e) => e.type === "StepSucceeded" && e.stepId.includes(".stop-")) + 1;
    const now = fold(s1, commits);
    const page = commits.slice(cut);
    const progress = progressFrom(now, page);
    const read = page.flatMap((c) => c.events.flatMap((e) => progress.line(e)?.split("\n") ?? []));
    expect(read).toEqual(all.slice(all.indexOf("[app]: Stopped") + 1));
    expect(read[0]).toBe("[app]: Creating");
  });
});
