import { describe, expect, it } from "vitest";
import { decide } from "./decide/index.js";
import { checkPolicy, sitePolicySchema } from "./policy.js";
import { initialState } from "./state.js";
import { apply, hosts, run, settle, spec, up } from "./testing.js";
import { serviceRows } from "./view.js";

// Scheduled jobs: given events / when Tick / then runs.
const job = (extra: Record<string, string> = {}) => spec("job:1", { labels: { "io.corral.cron.schedule": "*/10 * * * * *", ...extra } });
const T = Date.UTC(2026, 10, 22, 12, 0, 0);
const tick = (now: number) => ({ type: "Tick" as const, now, hosts });

describe("a scheduled job", () => {
  const s0 = settle(run(initialState("demo"), up({ job: job() }, "op1")));

  it("runs no long-lived container; the first tick only starts the clock", () => {
    expect(Object.keys(s0.containers)).toEqual([]);
    expect(decide(tick(T), s0)).toEqual([{ type: "CronFired", service: "job", at: T, skipped: "first" }]);
  });

  it("at its time, one run: a one-shot container on a live host, in its own queue group", () => {
    const s1 = run(s0, tick(T));
    expect(decide(tick(T + 5_000), s1)).toEqual([]);
    const events = decide(tick(T + 10_500), s1);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: "CronFired", service: "job", at: T + 10_000, run: 1, step: { action: "run", container: "demo-job.run-1", host: "h1", slot: 1, image: "job:1" } });
  });

  it("skips a time while the last run still goes, unless overlap is allowed; reports end runs with exit codes", () => {
    const s1 = run(run(s0, tick(T)), tick(T + 10_000));
    expect(decide(tick(T + 20_000), s1)).toEqual([{ type: "CronFired", service: "job", at: T + 20_000, skipped: "overlap" }]);
    const stepId = s1.cron.job!.runs[0]!.stepId;
    const done = run(s1, { type: "Report", report: { kind: "report", stack: "demo", stepId, host: "h1", ok: true, exitCode: 3 }, hosts, now: T + 12_000 });
    expect(done.cron.job!.runs[0]).toMatchObject({ status: "failed", exitCode: 3 });
    expect(decide({ type: "Report", report: { kind: "report", stack: "demo", stepId, host: "h1", ok: true, exitCode: 3 }, hosts, now: T + 13_000 }, done)).toEqual([]); // a duplicate
    expect(serviceRows(done)[0]).toMatchObject({ state: "scheduled", detail: "cron */10 * * * * *; last runs: #1 exit 3" });
    const s2 = run(done, tick(T + 20_000));
    expect(s2.cron.job!.runs.map((r) => r.run)).toEqual([1, 2]);

    const both = settle(run(initialState("demo"), up({ job: job({ "io.corral.cron.overlap": "allow" }) }, "op1")));
    const twice = [T, T + 10_000, T + 20_000].reduce((s, t) => run(s, tick(t)), both);
    expect(twice.cron.job!.runs.map((r) => `${r.run} ${r.status}`)).toEqual(["1 running", "2 running"]);
  });

  it("a stack removal takes a run that still goes", () => {
    const s1 = run(run(s0, tick(T)), tick(T + 10_000));
    const removal = apply(s1, decide({ type: "Remove", stack: "demo", op: "rm1", by: "admin", source: "cli" }, s1));
    const planned = run(removal, { type: "Plan", hosts, now: T + 11_000 });
    expect(Object.values(planned.steps).map((r) => `${r.step.action} ${r.step.container}`)).toEqual(["stop demo-job.run-1", "remove demo-job.run-1"]);
  });

  it("a schedule that is not one is refused, naming the service and the key", () => {
    const bad = { services: { job: spec("job:1", { labels: { "io.corral.cron.schedule": "every day" } }) }, volumes: {}, secrets: {} };
    expect(checkPolicy(bad as never, sitePolicySchema.parse({}), { stack: "demo", file: "docker-compose.yml" })).toContainEqual({
      file: "docker-compose.yml",
      path: "services.job.labels.io.corral.cron.schedule",
      reason: 'invalid cron schedule "every day": expected 5 fields (minute hour day month weekday), or 6 with seconds first',
    });
  });
});
