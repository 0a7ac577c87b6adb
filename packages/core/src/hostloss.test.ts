import { describe, expect, it } from "vitest";
import { decide, disconnectedContainers, staleContainers, type HostInfo } from "./decide/index.js";
import type { StackEvent } from "./events.js";
import type { ServiceSpec, Step } from "./model.js";
import { Progress } from "./progress.js";
import { initialState, type StackState } from "./state.js";
import { apply, rows, run, settle, spec, up } from "./testing.js";
import { serviceRows } from "./view.js";

// given a stack on h1 and h2, when h1 misses its heartbeats, then a Tick re-places its slots on h2; when h1 is back, its stale containers go

const both: HostInfo[] = [{ id: "h1", name: "h1" }, { id: "h2", name: "h2" }];
const lost: HostInfo[] = [{ id: "h1", name: "h1", state: "disconnected" }, { id: "h2", name: "h2" }];
const steps = (events: StackEvent[]): Step[] => events.flatMap((e) => (e.type === "StepPlanned" ? [e.step] : []));
const started = (events: StackEvent[]) => events.find((e): e is Extract<StackEvent, { type: "OperationStarted" }> => e.type === "OperationStarted");
const where = (s: StackState) => Object.fromEntries(Object.values(s.containers).map((c) => [c.name, `${c.host} ${c.state}`]));
const tick = (s: StackState, hosts: HostInfo[], now = 5) => decide({ type: "Tick", now, hosts }, s);

function deployed(services: Record<string, ServiceSpec>, hosts: HostInfo[] = both): StackState {
  return settle(run(initialState("demo"), up(services, "op1")), undefined, false, hosts);
}

/** The containers each host's engine holds, as a perfect agent leaves them: one entry per name@host, the lost ones included. */
function engines(s: StackState): string[] {
  return [...Object.values(s.containers).map((c) => `${c.name}@${c.host}`), ...Object.keys(s.lost ?? {})].sort();
}

describe("a disconnected host", () => {
  it("has its slots re-placed on an active host by a Tick: no step goes to the lost host, the old record is kept as lost", () => {
    const s = deployed({ web: spec("nginx", { scale: 2 }) });
    expect(where(s)).toEqual({ "demo-web-1": "h1 running", "demo-web-2": "h2 running" });
    expect(disconnectedContainers(s, lost).map((c) => c.name)).toEqual(["demo-web-1"]);
    const events = tick(s, lost);
    expect(started(events)).toMatchObject({ kind: "move", by: "corral", containers: ["demo-web-1"], hosts: ["h1"], disconnected: ["h1"] });
    expect(events.find((e) => e.type === "ContainerLost")).toMatchObject({ container: "demo-web-1", host: "h1" });
    expect(steps(events).map((x) => [x.action, x.container ?? "", x.host])).toEqual([
      ["pull", "", "h2"],
      ["create", "demo-web-1", "h2"],
      ["start", "demo-web-1", "h2"],
    ]);
    const during = apply(s, events);
    // the lost one is not live: the slot has its new container on the way
    expect(during.containers["demo-web-1"]).toBeUndefined();
    expect(during.lost).toEqual({ "demo-web-1@h1": { name: "demo-web-1", host: "h1", service: "web", slot: 1, revision: 1, image: "nginx", dockerId: expect.any(String), createdBy: expect.any(String) } });
    const after = settle(during, undefined, false, lost);
    expect(after.op).toMatchObject({ kind: "move", status: "succeeded" });
    expect(where(after)).toEqual({ "demo-web-1": "h2 running", "demo-web-2": "h2 running" });
    expect(rows(after)).toEqual({ web: "active 2/2" });
    // while h1 stays away, nothing more happens
    expect(tick(after, lost, 6)).toEqual([]);
    expect(staleContainers(after, lost)).toEqual([]);
  });

  it("re-places every lost slot at once, not one update_config batch after another (they are down already)", () => {
    const s = deployed({ web: spec("nginx", { scale: 4 }) });
    expect(where(s)).toEqual({ "demo-web-1": "h1 running", "demo-web-2": "h2 running", "demo-web-3": "h1 running", "demo-web-4": "h2 running" });
    const planned = steps(tick(s, lost));
    const pull = planned.find((x) => x.action === "pull")!;
    const creates = planned.filter((x) => x.action === "create");
    expect(creates.map((x) => `${x.container}@${x.host}`)).toEqual(["demo-web-1@h2", "demo-web-3@h2"]);
    // each waits for the image on its new host only, not for the slot before it (parallelism 1 is the default)
    for (const c of creates) expect(c.after).toEqual([pull.id]);
    const after = settle(apply(s, tick(s, lost)), undefined, false, lost);
    expect(after.op).toMatchObject({ kind: "move", status: "succeeded" });
    expect(rows(after)).toEqual({ web: "active 4/4" });
  });

  it("says what moves, and why", () => {
    const s = deployed({ web: spec("nginx", { scale: 2 }) });
    const progress = new Progress("demo");
    expect(tick(s, lost).flatMap((e) => progress.line(e) ?? [])).toEqual(["Moving demo-web-1 off h1 (disconnected)"]);
  });

  it("once back and active, has its stale containers stopped and removed on it, the new ones on h2 untouched", () => {
    const s = deployed({ web: spec("nginx", { scale: 2 }) });
    const moved = settle(apply(s, tick(s, lost)), undefined, false, lost);
    const newId = moved.containers["demo-web-1"]!.dockerId;
    expect(staleContainers(moved, both).map((l) => `${l.name}@${l.host}`)).toEqual(["demo-web-1@h1"]);
    const events = tick(moved, both, 7);
    expect(started(events)).toMatchObject({ kind: "cleanup", by: "corral", containers: ["demo-web-1"], hosts: ["h1"] });
    // each step names the lost host: only its agent runs it, on the engine's container of that name there
    expect(steps(events).map((x) => [x.action, x.container ?? "", x.host])).toEqual([
      ["stop", "demo-web-1", "h1"],
      ["remove", "demo-web-1", "h1"],
    ]);
    // and each names the step that made that container there: the agent refuses to touch another of that name
    for (const x of steps(events)) expect(x.createdBy).toBe(s.containers["demo-web-1"]!.createdBy);
    const progress = new Progress("demo");
    expect(events.flatMap((e) => progress.line(e) ?? [])[0]).toBe("Removing stale demo-web-1 from h1 (back from a disconnection)");
    const after = settle(apply(moved, events), undefined, false, both);
    expect(after.op).toMatchObject({ kind: "cleanup", status: "succeeded" });
    expect(after.lost).toEqual({});
    // the successor of the same name on h2 is as it was: running, same engine id
    expect(where(after)).toEqual({ "demo-web-1": "h2 running", "demo-web-2": "h2 running" });
    expect(after.containers["demo-web-1"]!.dockerId).toBe(newId);
    expect(rows(after)).toEqual({ web: "active 2/2" });
    expect(tick(after, both, 8)).toEqual([]);
  });

  it("runs no slot twice for longer than the cleanup: the cleanup comes before anything else the Tick would start", () => {
    // a global service would also follow h1 coming back: the cleanup goes first
    const s = deployed({ web: spec("nginx", { scale: 2 }), agent: spec("busybox", { deploy: { mode: "global" } }) });
    const moved = settle(apply(s, tick(s, lost)), undefined, false, lost);
    expect(engines(moved)).toContain("demo-web-1@h1");
    expect(engines(moved)).toContain("demo-web-1@h2");
    const first = started(tick(moved, both, 7));
    expect(first?.kind).toBe("cleanup");
    let after = settle(apply(moved, tick(moved, both, 7)), undefined, false, both);
    for (let i = 0; i < 3; i++) after = settle(apply(after, tick(after, both, 8 + i)), undefined, false, both);
    const names = engines(after).filter((n) => n.startsWith("demo-web-"));
    expect(names).toEqual(["demo-web-1@h2", "demo-web-2@h2"]);
  });

  it("a report from the returning host about an old step changes nothing", () => {
    const s = deployed({ web: spec("nginx", { scale: 2 }) });
    // the old steps of op1 on h1: reported late, after the move
    const oldStep = Object.values(s.steps).find((r) => r.step.host === "h1" && r.step.action === "start")!.step;
    const moved = settle(apply(s, tick(s, lost)), undefined, false, lost);
    const late = (st: StackState, stepId: string, ok: boolean) => decide({ type: "Report", report: { kind: "report", stack: "demo", stepId, host: "h1", ok, ...(ok ? {} : { error: "gone" }) }, hosts: both, now: 9 }, st);
    expect(late(moved, oldStep.id, true)).toEqual([]);
    expect(late(moved, oldStep.id, false)).toEqual([]);
    // during the cleanup, a step the cleanup does not know, or one of the move before it, is not believed either
    const cleaning = apply(moved, tick(moved, both, 7));
    const moveStep = Object.values(moved.steps).find((r) => r.step.action === "start")!.step;
    expect(decide({ type: "Report", report: { kind: "report", stack: "demo", stepId: moveStep.id, host: "h2", ok: false, error: "late" }, hosts: both, now: 9 }, cleaning)).toEqual([]);
    expect(decide({ type: "Report", report: { kind: "report", stack: "demo", stepId: "nope", host: "h1", ok: true }, hosts: both, now: 9 }, cleaning)).toEqual([]);
  });

  it("a remove on h1 for a name that also lives on h2 cannot touch h2's record", () => {
    const s = deployed({ web: spec("nginx", { scale: 2 }) });
    const moved = settle(apply(s, tick(s, lost)), undefined, false, lost);
    const cleaning = apply(moved, tick(moved, both, 7));
    const stop = Object.values(cleaning.steps).find((r) => r.step.action === "stop")!.step;
    const afterStop = run(cleaning, { type: "Report", report: { kind: "report", stack: "demo", stepId: stop.id, host: "h1", ok: true }, hosts: both, now: 8 });
    expect(afterStop.containers["demo-web-1"]).toMatchObject({ host: "h2", state: "running" });
    const remove = Object.values(afterStop.steps).find((r) => r.step.action === "remove")!.step;
    // reported by h2 (wrong host): not believed
    expect(decide({ type: "Report", report: { kind: "report", stack: "demo", stepId: remove.id, host: "h2", ok: true }, hosts: both, now: 8 }, afterStop)).toEqual([]);
    const afterRemove = run(afterStop, { type: "Report", report: { kind: "report", stack: "demo", stepId: remove.id, host: "h1", ok: true }, hosts: both, now: 8 });
    expect(afterRemove.containers["demo-web-1"]).toMatchObject({ host: "h2", state: "running" });
    expect(afterRemove.lost).toEqual({});
  });

  it("leaves a slot pinned to the lost host waiting, with the reason in the service's detail and an event; the others move", () => {
    const s = deployed({
      db: spec("postgres", { deploy: { placement: { constraints: ["node.hostname==h1"] } } }),
      web: spec("nginx", { deploy: { placement: { constraints: ["node.hostname==h1"] } } }),
      cache: spec("redis", { deploy: { placement: { constraints: ["node.hostname==h1"] } } }),
      api: spec("api", { scale: 1 }),
    }, [{ id: "h1", name: "h1" }]);
    const events = tick(s, lost);
    const waits = events.filter((e) => e.type === "ContainerWaiting");
    expect(waits.map((e) => e.type === "ContainerWaiting" && e.container).sort()).toEqual(["demo-cache-1", "demo-db-1", "demo-web-1"]);
    const w = waits[0]!;
    expect(w.type === "ContainerWaiting" && w.reason).toMatch(/no host can run demo-\w+-1:.*h1: disconnected.*h2:.*node\.hostname/);
    expect(started(events)).toMatchObject({ kind: "move", containers: ["demo-api-1"] });
    const progress = new Progress("demo");
    expect(events.flatMap((e) => progress.line(e) ?? []).some((l) => /^demo-db-1 waits for h1 \(disconnected\): no host can run/.test(l))).toBe(true);
    const after = settle(apply(s, events), undefined, false, lost);
    expect(where(after)).toMatchObject({ "demo-db-1": "h1 running", "demo-api-1": "h2 running" });
    const db = serviceRows(after).find((r) => r.name === "demo/db")!;
    expect(db.detail).toMatch(/^demo-db-1 waits for h1 \(disconnected\): no host can run/);
    // said once: the next tick says nothing more
    expect(tick(after, lost, 6)).toEqual([]);
    // h1 back: the waiting ends, nothing stale on it for the pinned ones (they never moved); api's old one goes
    const back = tick(after, both, 7);
    expect(started(back)).toMatchObject({ kind: "cleanup", containers: ["demo-api-1"] });
    const done = settle(apply(after, back), undefined, false, both);
    const cleared = tick(done, both, 8);
    expect(cleared.filter((e) => e.type === "ContainerWaiting").map((e) => e.type === "ContainerWaiting" && [e.container, e.reason])).toEqual([
      ["demo-cache-1", undefined],
      ["demo-db-1", undefined],
      ["demo-web-1", undefined],
    ]);
    const final = apply(done, cleared);
    expect(final.waiting).toEqual({});
    expect(serviceRows(final).find((r) => r.name === "demo/db")!.detail).toBe("");
  });

  it("back before the move has settled: the move finishes on h2, then the cleanup follows", () => {
    const s = deployed({ web: spec("nginx", { scale: 2 }) });
    const during = apply(s, tick(s, lost));
    expect(during.op).toMatchObject({ kind: "move", status: "running" });
    // h1 is back: a Tick while the move runs starts nothing new
    expect(started(tick(during, both, 6))).toBeUndefined();
    const moved = settle(during, undefined, false, both);
    expect(moved.op).toMatchObject({ kind: "move", status: "succeeded" });
    expect(started(tick(moved, both, 7))).toMatchObject({ kind: "cleanup", containers: ["demo-web-1"], hosts: ["h1"] });
  });

  it("moves off a draining and a disconnected host together, saying which is which", () => {
    const s = deployed({ web: spec("nginx", { scale: 3 }) }, [{ id: "h1", name: "h1" }, { id: "h2", name: "h2" }, { id: "h3", name: "h3" }]);
    const hostsNow: HostInfo[] = [{ id: "h1", name: "h1", state: "disconnected" }, { id: "h2", name: "h2", state: "draining" }, { id: "h3", name: "h3" }];
    const events = tick(s, hostsNow);
    const progress = new Progress("demo");
    expect(events.flatMap((e) => progress.line(e) ?? [])[0]).toBe("Moving demo-web-1, demo-web-2 off h1 (disconnected), h2 (draining)");
    // the draining host's container is stopped first; the lost one is not
    expect(steps(events).filter((x) => x.host !== "h3").map((x) => [x.action, x.container, x.host])).toEqual([
      ["rename", "demo-web-2", "h2"],
      ["stop", "demo-web-2-r1", "h2"],
      ["remove", "demo-web-2-r1", "h2"],
    ]);
    const after = settle(apply(s, events), undefined, false, hostsNow);
    expect(where(after)).toEqual({ "demo-web-1": "h3 running", "demo-web-2": "h3 running", "demo-web-3": "h3 running" });
    expect(Object.keys(after.lost ?? {})).toEqual(["demo-web-1@h1"]);
  });

  it("a stack removed while a lost container is left: its removal covers it, on its own host", () => {
    const s = deployed({ web: spec("nginx", { scale: 2 }) });
    const moved = settle(apply(s, tick(s, lost)), undefined, false, lost);
    const events = decide({ type: "Remove", stack: "demo", op: "op9", by: "admin", source: "cli" }, moved);
    const planned = steps(decide({ type: "Plan", hosts: both, now: 9 }, apply(moved, events)));
    expect(planned.filter((x) => x.action === "remove").map((x) => `${x.container}@${x.host}`).sort()).toEqual(["demo-web-1@h1", "demo-web-1@h2", "demo-web-2@h2"]);
    expect(new Set(planned.map((x) => x.id)).size).toBe(planned.length);
    const gone = settle(apply(moved, events), undefined, false, both);
    expect(gone.exists).toBe(false);
  });
});

describe("a host lost while an operation sends it steps", () => {
  it("does not keep the operation waiting for its answers: the steps for it fail once late, not sent again, saying why; the other host's go on", () => {
    const s = deployed({ web: spec("nginx", { scale: 2 }) });
    const grow = run(run(s, up({ web: spec("nginx", { scale: 4 }) }, "op2")), { type: "Plan", hosts: both, now: 0 });
    const sent = Object.values(grow.steps).filter((r) => r.status === "planned");
    expect(new Set(sent.map((r) => r.step.host))).toEqual(new Set(["h1", "h2"]));
    // while the host is active, a step is waited for until its timeout
    expect(decide({ type: "Resend", now: 1, timeoutMs: 30_000, hosts: both }, grow)).toEqual([]);
    // lost, and not late yet: it may come back within the timeout (a network blip), and then they go on
    expect(decide({ type: "Resend", now: 1, timeoutMs: 30_000, hosts: lost }, grow)).toEqual([]);
    const events = decide({ type: "Resend", now: 30_000, timeoutMs: 30_000, hosts: lost }, grow);
    const failed = events.filter((e): e is Extract<StackEvent, { type: "StepFailed" }> => e.type === "StepFailed");
    expect(failed.length).toBeGreaterThan(0);
    for (const f of failed) expect(grow.steps[f.stepId]?.step.host).toBe("h1");
    expect(failed[0]!.error).toBe("host h1 is disconnected (no heartbeat within the host timeout): the step cannot run there");
    // the other host's, late too, are sent again as any
    for (const e of events) if (e.type === "StepResent") expect(grow.steps[e.stepId]?.step.host).toBe("h2");
  });
});
