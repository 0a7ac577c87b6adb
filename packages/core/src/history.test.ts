import { describe, expect, it } from "vitest";
import { decide, type Command } from "./decide/index.js";
import { DomainError } from "./errors.js";
import { stackHistory } from "./history.js";
import type { Step } from "./model.js";
import { initialState, type StackState } from "./state.js";
import { hosts, run, settle, spec, up } from "./testing.js";

// History and the lives of a stack, given events / when command / then state and rows.
const at = (ms: number) => new Date(ms).toISOString();
const remove = (op: string): Command => ({ type: "Remove", stack: "demo", op, by: "carol", source: "cli" });
const v1 = { app: spec("app:1"), db: spec("db:1") };
const v2 = { app: spec("app:2"), db: spec("db:1") };

const firstLife = (() => {
  let s = settle(run(initialState("demo"), up(v1, "op1", { now: 1000 })));
  s = settle(run(s, up(v2, "op2", { upgrade: true, now: 2000 })));
  s = settle(run(s, up({}, "op3", { confirm: true, now: 3000 })));
  return s;
})();
const removed = settle(run(firstLife, remove("rm1")));
const secondLife = settle(run(removed, up({ app: spec("app:9") }, "op4", { now: 5000 })));

describe("a stack removed and made again under its name", () => {
  it("starts afresh at revision 1, in a new life", () => {
    expect(firstLife.generation).toBe(1);
    expect(firstLife.revision).toBe(2);
    expect(secondLife.generation).toBe(2);
    expect(secondLife.revision).toBe(1);
    expect(secondLife.lastRevision).toBe(1);
    expect(Object.keys(secondLife.revisions)).toEqual(["1"]);
    expect(secondLife.revisions[1]!.services.app!.spec.image).toBe("app:9");
  });

  it("keeps the removed life under its number, with when and by whom it was removed", () => {
    expect(removed.exists).toBe(false);
    expect(removed.removed).toEqual({ at: 2, by: "carol" }); // the perfect agent's clock says 2
    expect(secondLife.earlier).toHaveLength(1);
    expect(secondLife.earlier[0]).toMatchObject({ generation: 1, removed: { at: 2, by: "carol" } });
    expect(Object.keys(secondLife.earlier[0]!.revisions)).toEqual(["1", "2"]);
  });

  it("history shows the current life; with all, the earlier ones before it, each marked", () => {
    const now = stackHistory(secondLife);
    expect(now).toHaveLength(1);
    expect(now[0]).toMatchObject({ life: 2, current: true, removed: null });
    expect(now[0]!.rows.map((r) => [r.revision, r.current, r.time])).toEqual([[1, true, at(5000)]]);
    const all = stackHistory(secondLife, { all: true });
    expect(all.map((l) => [l.life, l.current, l.removed])).toEqual([
      [1, false, { time: at(2), by: "carol" }],
      [2, true, null],
    ]);
    expect(all[0]!.rows.map((r) => [r.revision, r.current])).toEqual([
      [1, false],
      [2, false],
    ]); // nothing of a removed life runs
  });

  it("a removed stack's history is its last life, marked removed, until it is made again", () => {
    const h = stackHistory(removed);
    expect(h).toHaveLength(1);
    expect(h[0]).toMatchObject({ life: 1, current: false, removed: { time: at(2), by: "carol" } });
    expect(h[0]!.rows.map((r) => r.revision)).toEqual([1, 2]);
  });

  it("rollback --to-revision reaches the current life only, and says where an earlier life's revision went", () => {
    let err: unknown;
    try {
      decide(up({}, "op5", { rollback: true, toRevision: 2 }), secondLife);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DomainError);
    expect((err as DomainError).code).toBe("not_found");
    expect((err as Error).message).toContain("stack demo has no revision 2");
    expect((err as Error).message).toContain("an earlier life of the stack had one");
    expect(() => decide(up({}, "op5", { rollback: true, toRevision: 1 }), secondLife)).not.toThrow();
  });

  it("a new life's steps cannot be taken for the last life's: operation ids differ, and so do a scheduled job's runs", () => {
    const ids = (s: StackState) => Object.values(s.steps).map((r) => r.step.id);
    expect(ids(secondLife).filter((id) => ids(firstLife).includes(id))).toEqual([]);
    // a scheduled job numbers its runs from 1 in each life: the run's step id says which life
    const job = { job: spec("busybox", { labels: { "io.corral.cron.schedule": "* * * * *" } }) };
    const cronRun = (s: StackState): Step => {
      let t = run(s, up(job, `job-${s.generation}`, { now: 1 }));
      t = settle(t);
      t = run(t, { type: "Tick", now: 60_000, hosts }); // first sight: counting starts
      const fired = decide({ type: "Tick", now: 120_000, hosts }, t).find((e) => e.type === "CronFired" && e.step);
      return (fired as { step: Step }).step;
    };
    const a = cronRun(initialState("demo"));
    const gone = settle(run(settle(run(initialState("demo"), up(job, "j1"))), remove("rm-j")));
    const b = cronRun(gone);
    expect(a.container).toBe(b.container); // the same name on the host, as a run's name is its slot's
    expect(a.id).not.toBe(b.id); // but not the same step: the queue's dedup and the agent's labels tell them apart
  });
});

describe("history of rollbacks", () => {
  const upgraded = settle(run(settle(run(initialState("demo"), up(v1, "op1", { now: 1000 }))), up(v2, "op2", { upgrade: true, now: 2000 })));
  const rolledBack = settle(run(upgraded, up({}, "op3", { rollback: true, by: "bob", source: "chatops" })));

  it("a rollback is an entry of its own: what runs after it, who, when, what it changed back; it is the current one", () => {
    const rows = stackHistory(rolledBack)[0]!.rows;
    expect(rows.map((r) => [r.revision, r.current, r.rollback])).toEqual([
      [1, false, null],
      [2, false, null],
      [1, true, "rollback to 1"],
    ]);
    expect(rows[2]).toMatchObject({ by: "bob", source: "chatops", time: at(2), changed: [{ service: "app", keys: ["image"] }] });
  });

  it("a revision after a rollback tells its changes against what ran, and becomes the current entry", () => {
    const later = settle(run(rolledBack, up({ ...v1, db: spec("db:2") }, "op4", { upgrade: true, now: 9000 })));
    const rows = stackHistory(later)[0]!.rows;
    expect(rows.map((r) => [r.revision, r.current])).toEqual([
      [1, false],
      [2, false],
      [1, false],
      [3, true],
    ]);
    expect(rows[3]!.changed).toEqual([{ service: "db", keys: ["image"] }]);
  });

  it("rollback --to-revision commits a revision of its own, noted as a rollback", () => {
    const confirmed = settle(run(upgraded, up({}, "op3", { confirm: true })));
    const back = settle(run(confirmed, up({}, "op4", { rollback: true, toRevision: 1, now: 7000 })));
    const rows = stackHistory(back)[0]!.rows;
    expect(rows.at(-1)).toMatchObject({ revision: 3, current: true, rollback: "rollback to 1", time: at(7000), changed: [{ service: "app", keys: ["image"] }] });
  });

  it("an automatic rollback (failure action) is corral's", () => {
    const failing = { app: spec("app:3", { deploy: { update_config: { failure_action: "rollback" } } }), db: spec("db:1") };
    const base = settle(run(initialState("demo"), up(v1, "op1")));
    const s = settle(run(base, up(failing, "op2", { upgrade: true })), (step) => (step.action === "start" && step.image === "app:3" ? "exited 1" : undefined));
    const rows = stackHistory(s)[0]!.rows;
    expect(rows.at(-1)).toMatchObject({ revision: 1, current: true, by: "corral", rollback: "rollback to 1" });
  });
});
