import { beforeAll, describe, expect, it } from "vitest";
import { decide, type Command } from "./decide/index.js";
import type { StackEvent } from "./events.js";
import type { ServiceSpec } from "./model.js";
import { inspectStack } from "./inspect.js";
import { initialState, type StackState } from "./state.js";
import { apply, hosts, rows, run, spec, up } from "./testing.js";

// A file of many services at the site's default cap of 100 slots each:
// 10,000 slots. Planning, folding and re-driving them must be linear: a
// version that copies the steps map per event (planning took 130 s of CPU at
// this size) cannot build the givens within the hook's timeout, nor pass a
// test within the default one.
const SERVICES = 100;
const SCALE = 100;
const SLOTS = SERVICES * SCALE;

const services = (image: (i: number) => string): Record<string, ServiceSpec> =>
  Object.fromEntries(Array.from({ length: SERVICES }, (_, i) => [`s${i}`, spec(image(i), { scale: SCALE })]));
const v1 = services((i) => `img${i}:1`);
const v2 = services((i) => `img${i}:2`);

const planned = (events: StackEvent[]) => events.filter((e) => e.type === "StepPlanned");
const count = (events: StackEvent[], type: StackEvent["type"]) => events.filter((e) => e.type === type).length;

/** A perfect agent, in bulk: every planned step of the operation succeeded, in planning order. */
function reported(s: StackState, now = 2): StackEvent[] {
  return Object.values(s.steps)
    .filter((r) => r.status === "planned")
    .map(({ step }) => ({ type: "StepSucceeded", stepId: step.id, ...(step.action === "create" ? { containerId: `c-${step.id}` } : {}), ...(step.action === "start" ? { at: now } : {}) }));
}

const fail = (stepId: string, error: string): Command => ({ type: "Report", report: { kind: "report", stack: "demo", stepId, host: "h1", ok: false, error }, hosts, now: 3 });

describe(`a stack of ${SLOTS} slots (${SERVICES} services x ${SCALE})`, () => {
  // the givens, built once (states are values): up asked; planned; every slot running; every slot upgraded
  let asked: StackState;
  let planning: StackState;
  let running: StackState;
  let upgraded: StackState;
  beforeAll(() => {
    asked = run(initialState("demo"), up(v1, "op1"));
    planning = run(asked, { type: "Plan", hosts, now: 1 });
    running = apply(planning, [...reported(planning), { type: "OperationSucceeded", op: "op1" }]);
    const upgrading = run(run(running, up(v2, "op2", { upgrade: true })), { type: "Plan", hosts, now: 2 });
    upgraded = apply(upgrading, [...reported(upgrading), { type: "UpgradeFinished", op: "op2", at: 3 }, { type: "OperationSucceeded", op: "op2" }]);
  });

  it("plans every slot in one Plan, each step once: a pull per service, then creates and starts", () => {
    const events = decide({ type: "Plan", hosts, now: 1 }, asked);
    const steps = planned(events);
    expect(steps).toHaveLength(SERVICES + 2 * SLOTS);
    expect(new Set(steps.map((e) => e.step.id)).size).toBe(steps.length);
    const s1 = apply(asked, events);
    expect(Object.keys(s1.steps)).toHaveLength(SERVICES + 2 * SLOTS);
    expect(s1.op).toMatchObject({ status: "running", planned: true });
  });

  it("folds every report of the plan and settles on the last one: every slot runs, as ps and inspect show", () => {
    const reports = reported(planning);
    const last = reports.pop()!;
    const s = apply(planning, reports);
    const events = decide({ type: "Report", report: { kind: "report", stack: "demo", stepId: last.type === "StepSucceeded" ? last.stepId : "", host: "h1", ok: true }, hosts, now: 2 }, s);
    expect(events.at(-1)).toEqual({ type: "OperationSucceeded", op: "op1" });
    const done = apply(s, events);
    expect(Object.values(done.containers).filter((c) => c.state === "running")).toHaveLength(SLOTS);
    expect(new Set(Object.values(rows(done)))).toEqual(new Set([`active ${SCALE}/${SCALE}`]));
    const inspected = inspectStack(done, { environment: "sandbox", domain: "localhost", hostAddresses: {} });
    expect(inspected.services.map((x) => x.running)).toEqual(Array.from({ length: SERVICES }, () => SCALE));
  });

  it("re-sends every late step of the plan in one pass", () => {
    // the pulls are done: every create, and the start behind it in its slot's group, may go
    const s = apply(planning, reported(planning).slice(0, SERVICES));
    const events = decide({ type: "Resend", now: 100_000, timeoutMs: 30_000, hosts }, s);
    expect(count(events, "StepResent")).toBe(2 * SLOTS);
    expect(Object.values(apply(s, events).steps).filter((r) => r.attempt === 2)).toHaveLength(2 * SLOTS);
  });

  it("a restart one container at a time: a failed first stop skips every step after it in one report", () => {
    const s1 = run(run(running, { type: "Lifecycle", stack: "demo", op: "op2", action: "restart", by: "admin", source: "cli" }), { type: "Plan", hosts, now: 2 });
    expect(Object.keys(s1.steps)).toHaveLength(2 * SLOTS);
    const first = Object.values(s1.steps)[0]!.step;
    const events = decide(fail(first.id, "engine gone"), s1);
    expect(count(events, "StepFailed")).toBe(2 * SLOTS);
    expect(events.at(-1)).toMatchObject({ type: "OperationFailed", op: "op2" });
  });

  it("a restart in two batches: each step names a few dependencies, not a batch's worth", () => {
    const s1 = run(run(running, { type: "Lifecycle", stack: "demo", op: "op2", action: "restart", batchSize: SLOTS / 2, by: "admin", source: "cli" }), { type: "Plan", hosts, now: 2 });
    const steps = Object.values(s1.steps).map((r) => r.step);
    expect(steps).toHaveLength(2 * SLOTS);
    const secondBatch = steps.filter((x) => x.action === "stop" && x.after.length > 0);
    expect(secondBatch).toHaveLength(SLOTS / 2);
    expect(secondBatch[0]!.after).toHaveLength(SLOTS / 2); // every start of the first batch
    expect(secondBatch.slice(1).every((x) => x.after.length === 1 && x.after[0] === secondBatch[0]!.id)).toBe(true);
  });

  it("upgrades every slot in one pass: per slot stop, rename aside, create, start", () => {
    const events = decide({ type: "Plan", hosts, now: 2 }, run(running, up(v2, "op2", { upgrade: true })));
    expect(planned(events)).toHaveLength(SERVICES + 4 * SLOTS);
    expect([upgraded.containers["demo-s0-1"]?.revision, upgraded.containers["demo-s0-1-r1"]?.state]).toEqual([2, "stopped"]);
  });

  it("plans the rollback of every upgraded slot in one pass", () => {
    const back = run(run(upgraded, up(v2, "op3", { rollback: true })), { type: "Plan", hosts, now: 4 });
    // per slot: stop and remove the new container, rename the old one back and start it
    expect(Object.keys(back.steps)).toHaveLength(4 * SLOTS);
    const renames = Object.values(back.steps).filter((r) => r.step.action === "rename");
    expect(renames).toHaveLength(SLOTS);
    expect(renames.every((r) => r.step.after.length === 1)).toBe(true);
  });
});
