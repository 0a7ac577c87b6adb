import { describe, expect, it } from "vitest";
import { decide, type Command } from "./decide/index.js";
import type { StackEvent } from "./events.js";
import { CommitTooLargeError, splitEvents, utf8Bytes } from "./split.js";
import { initialState, type StackState } from "./state.js";
import { apply, hosts, run, spec, up } from "./testing.js";

// A decision too large for one store item goes in several commits. A crash
// may fall between any two: the decider must complete what was cut short,
// without planning, re-sending or skipping anything twice.
const services = { web: spec("web:1", { scale: 20 }), db: spec("db:1", { scale: 20 }) };
const stackUp = () => run(initialState("demo"), up(services, "op1"));
const plan: Command = { type: "Plan", hosts, now: 1 };
const size = (events: StackEvent[]) => utf8Bytes(JSON.stringify(events));
const ids = (events: StackEvent[]) => events.flatMap((e) => (e.type === "StepPlanned" ? [e.step.id] : e.type === "StepFailed" || e.type === "StepResent" ? [e.stepId] : []));

/** The state after the first commit of a decision: a crash came before the second. */
function firstCommitOnly(s: StackState, events: StackEvent[], maxBytes: number): { state: StackState; rest: StackEvent[] } {
  const commits = splitEvents(events, maxBytes);
  expect(commits.length).toBeGreaterThan(1);
  return { state: apply(s, commits[0]!), rest: commits.slice(1).flat() };
}

describe("splitEvents", () => {
  const events = decide(plan, stackUp());

  it("keeps a decision that fits in one commit", () => {
    expect(splitEvents(events, size(events))).toEqual([events]);
  });

  it("cuts a larger one into commits under the limit, in order, only between two step events of one kind", () => {
    const commits = splitEvents(events, 4000);
    expect(commits.length).toBeGreaterThan(2);
    expect(commits.flat()).toEqual(events);
    for (const c of commits) expect(size(c)).toBeLessThanOrEqual(4000);
    for (let i = 1; i < commits.length; i++) {
      const [before, after] = [commits[i - 1]!.at(-1)!, commits[i]![0]!];
      expect([before.type, after.type]).toEqual(["StepPlanned", "StepPlanned"]);
    }
    expect(commits.at(-1)!.at(-1)).toMatchObject({ type: "WavePlanned" }); // the plan's mark comes with its last steps
  });

  it("refuses a part that no cut can bring under the limit", () => {
    expect(() => splitEvents(events, 200)).toThrow(CommitTooLargeError);
  });
});

describe("a decision cut short between two commits", () => {
  it("a plan: the next Plan plans the rest and marks it planned, each step once", () => {
    const s0 = stackUp();
    const whole = decide(plan, s0);
    const { state, rest } = firstCommitOnly(s0, whole, 4000);
    expect(state.op?.planned).toBe(false);
    const completion = decide({ ...plan, now: 2 }, state);
    expect(ids(completion)).toEqual(ids(rest));
    expect(completion.at(-1)).toEqual({ type: "WavePlanned", op: "op1", services: ["web", "db"] });
    expect(Object.keys(apply(state, completion).steps)).toEqual(Object.keys(apply(s0, whole).steps));
  });

  it("the skips after a failure: the next Tick skips the rest", () => {
    const s0 = run(stackUp(), plan);
    const pull = Object.values(s0.steps).find((r) => r.step.action === "pull")!.step;
    const failed = decide({ type: "Report", report: { kind: "report", stack: "demo", stepId: pull.id, host: "h1", ok: false, error: "denied" }, hosts, now: 2 }, s0);
    const { state, rest } = firstCommitOnly(s0, failed, 2000);
    const completion = decide({ type: "Tick", hosts, now: 3 }, state);
    expect(ids(completion)).toEqual(ids(rest));
    const web = Object.values(apply(state, completion).steps).filter((r) => r.step.service === "web");
    expect(web.every((r) => r.status === "failed")).toBe(true);
  });

  it("the re-sends of late steps: the next Resend re-sends the rest, none twice", () => {
    const s0 = run(stackUp(), plan);
    const pulls = Object.values(s0.steps).filter((r) => r.step.action === "pull").map((r): StackEvent => ({ type: "StepSucceeded", stepId: r.step.id }));
    const s1 = apply(s0, pulls);
    const resend: Command = { type: "Resend", now: 100_000, timeoutMs: 30_000, hosts };
    const whole = decide(resend, s1);
    const { state, rest } = firstCommitOnly(s1, whole, 2000);
    expect(ids(decide(resend, state))).toEqual(ids(rest));
  });
});
