import { describe, expect, it } from "vitest";
import { decide, type Command } from "./decide/index.js";
import type { Commit } from "./events.js";
import type { Step } from "./model.js";
import { evolveAll, initialState, type StackState } from "./state.js";
import { serviceTasks, taskState } from "./tasks.js";
import { hosts, spec, up } from "./testing.js";

/** A stack's log as the store keeps it: each decision one commit, at a time of the test's choosing. */
class Log {
  state: StackState = initialState("demo");
  commits: Commit[] = [];
  #ids = 0;
  run(c: Command, at: number) {
    const events = decide(c, this.state);
    if (events.length === 0) return;
    this.state = { ...evolveAll(this.state, events), version: this.state.version + 1 };
    this.commits.push({ stack: "demo", version: this.state.version, at, events });
  }
  /** A perfect agent, but for the steps `fail` names. */
  settle(at: number, fail: (s: Step) => string | undefined = () => undefined) {
    this.run({ type: "Plan", hosts, now: at }, at);
    for (let guard = 0; guard < 200 && this.state.op?.status === "running"; guard++) {
      const s = this.state;
      const next = Object.values(s.steps).find((r) => r.status === "planned" && r.step.after.every((d) => s.steps[d]?.status !== "planned"));
      if (!next) break;
      const error = !next.step.afterAny && next.step.after.some((d) => s.steps[d]?.status === "failed") ? "skipped: a step before failed" : fail(next.step);
      const report = { kind: "report" as const, stack: "demo", stepId: next.step.id, host: next.step.host, ok: !error, ...(error ? { error } : {}), ...(next.step.action === "create" ? { containerId: `c${++this.#ids}` } : {}) };
      this.run({ type: "Report", report, hosts, now: at }, at);
    }
  }
}

describe("service ps: each slot's tasks, newest first", () => {
  it("an upgrade that fails rolls back by itself: the new task shut down with the reason, the old one running again", () => {
    const log = new Log();
    const web = (image: string) => ({ web: spec(image, { scale: 2, deploy: { update_config: { failure_action: "rollback" as const } } }) });
    log.run(up(web("web:1"), "op1"), 1000);
    log.settle(1000);
    log.run(up(web("web:2"), "op2", { upgrade: true }), 60_000);
    log.settle(60_000, (s) => (s.action === "start" && s.revision === 2 ? "container demo-web-1 is unhealthy: health check failed 3 times" : undefined));
    const tasks = serviceTasks("demo", log.commits, "web");
    expect(tasks.map((t) => `${t.name} ${t.image} ${t.desired} ${t.current}`)).toEqual([
      // what the slot runs first (the rollback brought the older task back), then the others, newest first
      "demo-web-1 web:1 Running Running",
      "demo-web-1 web:2 Shutdown Shutdown",
      "demo-web-2 web:1 Running Running",
    ]);
    expect(tasks[1]!.error).toMatch(/unhealthy: health check failed 3 times/);
    expect(tasks[0]!.error).toBe("");
    expect(new Set(tasks.map((t) => t.id)).size).toBe(3); // each task its own id
    expect(taskState(tasks[1]!, tasks[1]!.since + 6_000)).toBe("Shutdown 6 seconds ago");
    expect(taskState(tasks[0]!, tasks[0]!.since + 120_000)).toBe("Running 2 minutes ago");
    expect(taskState(tasks[0]!, tasks[0]!.since)).toBe("Running less than a second ago");
  });

  it("an upgrade confirmed: the old task shut down beneath the new one; a scale down shuts the slot's last task", () => {
    const log = new Log();
    log.run(up({ web: spec("web:1", { scale: 2 }) }, "op1"), 1000);
    log.settle(1000);
    log.run(up({ web: spec("web:2", { scale: 2 }) }, "op2", { upgrade: true, confirm: true }), 2000);
    log.settle(2000);
    log.run({ type: "Scale", stack: "demo", op: "op3", scales: { web: 1 }, by: "admin", source: "cli", hosts, placed: [] }, 3000);
    log.settle(3000);
    const tasks = serviceTasks("demo", log.commits, "web");
    expect(tasks.map((t) => `${t.name} ${t.image} ${t.desired} ${t.current} ${t.since}`)).toEqual([
      "demo-web-1 web:2 Running Running 2000",
      "demo-web-1 web:1 Shutdown Shutdown 2000",
      "demo-web-2 web:2 Shutdown Shutdown 3000",
      "demo-web-2 web:1 Shutdown Shutdown 2000",
    ]);
    // at most so many tasks per slot
    expect(serviceTasks("demo", log.commits, "web", 1).map((t) => t.image)).toEqual(["web:2", "web:2"]);
  });

  it("a create the engine refused is a rejected task with the engine's words", () => {
    const log = new Log();
    log.run(up({ web: spec("web:1") }, "op1"), 1000);
    log.settle(1000, (s) => (s.action === "create" ? "no such image: web:1" : undefined));
    const [t] = serviceTasks("demo", log.commits, "web");
    expect(t).toMatchObject({ name: "demo-web-1", desired: "Shutdown", current: "Rejected", error: "no such image: web:1" });
  });
});
