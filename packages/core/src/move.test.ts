import { describe, expect, it } from "vitest";
import { decide, drainingContainers, type HostInfo } from "./decide/index.js";
import type { StackEvent } from "./events.js";
import type { ServiceSpec, Step } from "./model.js";
import { Progress } from "./progress.js";
import { initialState, type StackState } from "./state.js";
import { apply, rows, run, settle, spec, up } from "./testing.js";
import { serviceRows } from "./view.js";

// given a stack on h1 and h2, when h1 drains, then a Tick moves its containers, batch by batch

const both: HostInfo[] = [{ id: "h1" }, { id: "h2" }];
const drained: HostInfo[] = [{ id: "h1", state: "draining" }, { id: "h2" }];
const steps = (events: StackEvent[]): Step[] => events.flatMap((e) => (e.type === "StepPlanned" ? [e.step] : []));
const started = (events: StackEvent[]) => events.find((e): e is Extract<StackEvent, { type: "OperationStarted" }> => e.type === "OperationStarted");
const where = (s: StackState) => Object.fromEntries(Object.values(s.containers).map((c) => [c.name, `${c.host} ${c.state}`]));

function deployed(services: Record<string, ServiceSpec>, hosts: HostInfo[] = both): StackState {
  return settle(run(initialState("demo"), up(services, "op1")), undefined, false, hosts);
}

/** Steps ordered as a perfect agent runs them, one at a time: step ids in the order they go. */
function order(s: StackState, hosts: HostInfo[]): Array<[string, string, string]> {
  const out: Array<[string, string, string]> = [];
  for (let guard = 0; guard < 200 && s.op?.status === "running"; guard++) {
    const next = Object.values(s.steps).find((r) => r.status === "planned" && r.step.after.every((d) => s.steps[d]?.status !== "planned"));
    if (!next) break;
    out.push([next.step.action, next.step.container ?? "", next.step.host]);
    s = run(s, { type: "Report", report: { kind: "report", stack: "demo", stepId: next.step.id, host: next.step.host, ok: true, ...(next.step.action === "create" ? { containerId: `m${guard}` } : {}) }, hosts, now: 3 });
  }
  return out;
}

describe("a draining host", () => {
  it("has its containers moved by a Tick with no operation in progress: the same slot made on h2, the old one stopped, the new one started, the old one removed", () => {
    const s = deployed({ web: spec("nginx", { scale: 2 }) });
    expect(where(s)).toEqual({ "demo-web-1": "h1 running", "demo-web-2": "h2 running" });
    expect(drainingContainers(s, drained).map((c) => c.name)).toEqual(["demo-web-1"]);
    const events = decide({ type: "Tick", now: 5, hosts: drained }, s);
    const op = started(events)!;
    expect(op).toMatchObject({ kind: "move", by: "corral", services: ["web"], containers: ["demo-web-1"], hosts: ["h1"] });
    expect(op.op).toMatch(/^move-v\d+-[0-9a-f]{10}$/);
    expect(steps(events).map((x) => [x.action, x.container ?? "", x.host])).toEqual([
      ["pull", "", "h2"],
      ["rename", "demo-web-1", "h1"],
      ["create", "demo-web-1", "h2"],
      ["stop", "demo-web-1-r1", "h1"],
      ["start", "demo-web-1", "h2"],
      ["remove", "demo-web-1-r1", "h1"],
    ]);
    const planned = steps(events);
    const of = (action: string) => planned.find((x) => x.action === action)!;
    // stop-first: the old one stops before the new one starts
    expect(of("start").after).toEqual([of("stop").id]);
    expect(of("stop").after).toEqual([of("create").id]);
    const during = apply(s, events);
    expect(rows(during)).toEqual({ web: "activating 2/2" });
    const after = settle(during, undefined, false, drained);
    expect(after.op).toMatchObject({ kind: "move", status: "succeeded" });
    expect(where(after)).toEqual({ "demo-web-1": "h2 running", "demo-web-2": "h2 running" });
    expect(after.containers["demo-web-1"]!.slot).toBe(1);
    expect(rows(after)).toEqual({ web: "active 2/2" });
    // nothing left on the draining host: the next tick does nothing
    expect(decide({ type: "Tick", now: 6, hosts: drained }, after)).toEqual([]);
  });

  it("says what moves, and from where", () => {
    const s = deployed({ web: spec("nginx", { scale: 2 }) });
    const progress = new Progress("demo");
    const lines = decide({ type: "Tick", now: 5, hosts: drained }, s).flatMap((e) => progress.line(e) ?? []);
    // the old container stops once the image is on h2
    expect(lines).toEqual(["Moving demo-web-1 off h1 (draining)"]);
  });

  it("moves in batches of the service's parallelism, the next batch after the last one started and its delay", () => {
    let s = deployed({ web: spec("nginx", { scale: 4, deploy: { update_config: { parallelism: 2, delay: 5000 } } }) }, [{ id: "h1" }]);
    expect(Object.values(s.containers).every((c) => c.host === "h1")).toBe(true);
    const events = decide({ type: "Tick", now: 5, hosts: drained }, s);
    const planned = steps(events);
    const id = (action: string, slot: number) => planned.find((x) => x.action === action && (action === "pull" || x.slot === slot))!;
    // the first batch (slots 1, 2) waits for nothing but the pull; the second waits for both starts, after the delay
    expect(id("rename", 1).after).toEqual([id("pull", 1).id]);
    expect(id("rename", 2).after).toEqual([id("pull", 1).id]);
    expect(id("rename", 3).after).toEqual([id("pull", 1).id, id("remove", 1).id, id("remove", 2).id]);
    expect(id("rename", 3).delayMs).toBe(5000);
    expect(id("rename", 4).after).toEqual([id("pull", 1).id, id("remove", 1).id, id("remove", 2).id]);
    s = settle(apply(s, events), undefined, false, drained);
    expect(Object.values(s.containers).map((c) => `${c.slot}@${c.host}`).sort()).toEqual(["1@h2", "2@h2", "3@h2", "4@h2"]);
  });

  it("starts the new container first with order: start-first, the old one aside until then", () => {
    const s = deployed({ web: spec("nginx", { scale: 1, deploy: { update_config: { order: "start-first" } } }) }, [{ id: "h1" }]);
    const events = decide({ type: "Tick", now: 5, hosts: drained }, s);
    const during = apply(s, events);
    expect(order(during, drained)).toEqual([
      ["pull", "", "h2"],
      ["rename", "demo-web-1", "h1"],
      ["create", "demo-web-1", "h2"],
      ["start", "demo-web-1", "h2"],
      ["stop", "demo-web-1-r1", "h1"],
      ["remove", "demo-web-1-r1", "h1"],
    ]);
    const after = settle(during, undefined, false, drained);
    expect(where(after)).toEqual({ "demo-web-1": "h2 running" });
    expect(after.op?.status).toBe("succeeded");
  });

  it("a new container that cannot be made on the other host leaves the old one running in its slot, not the slot empty", () => {
    const s = deployed({ web: spec("nginx") }, [{ id: "h1" }]);
    const after = settle(apply(s, decide({ type: "Tick", now: 5, hosts: drained }, s)), (step) => (step.action === "create" ? "pull access denied for nginx" : undefined), false, drained);
    expect(after.op).toMatchObject({ kind: "move", status: "failed" });
    expect(Object.values(after.containers).map((c) => `${c.slot}@${c.host} ${c.state}`)).toEqual(["1@h1 running"]);
    // the service says what went wrong; its one container still serves
    expect(rows(after)).toEqual({ web: "error 1/1" });
    expect(serviceRows(after)[0]!.detail).toMatch(/pull access denied for nginx/);
  });

  it("moves a stopped container stopped", () => {
    let s = deployed({ web: spec("nginx") }, [{ id: "h1" }]);
    s = settle(run(s, { type: "Lifecycle", stack: "demo", op: "op2", action: "stop", by: "admin", source: "cli" }), undefined, false, drained);
    const events = decide({ type: "Tick", now: 5, hosts: drained }, s);
    expect(steps(events).map((x) => x.action)).toEqual(["pull", "rename", "create", "remove"]);
    expect(where(settle(apply(s, events), undefined, false, drained))).toEqual({ "demo-web-1": "h2 created" });
  });

  it("fails with the scheduler's reason for a pinned container, leaves it where it is, and is not tried again for it", () => {
    const s = deployed({ web: spec("nginx", { deploy: { placement: { constraints: ["node.hostname==h1"] } } }) }, [{ id: "h1", name: "h1" }, { id: "h2", name: "h2" }]);
    const hostsNow: HostInfo[] = [{ id: "h1", name: "h1", state: "draining" }, { id: "h2", name: "h2" }];
    const events = decide({ type: "Tick", now: 5, hosts: hostsNow }, s);
    expect(events.map((e) => e.type)).toEqual(["OperationStarted", "OperationFailed"]);
    const failed = events.find((e) => e.type === "OperationFailed");
    expect(failed?.type === "OperationFailed" && failed.reason).toMatch(/no host can run demo-web-1:.*h1: draining.*h2:.*node\.hostname/);
    const after = apply(s, events);
    expect(where(after)).toEqual({ "demo-web-1": "h1 running" });
    expect(decide({ type: "Tick", now: 6, hosts: hostsNow }, after)).toEqual([]);
  });

  it("leaves a service whose upgrade awaits a verdict: it moves after confirm", () => {
    let s = deployed({ web: spec("nginx") }, [{ id: "h1" }]);
    s = settle(run(s, up({ web: spec("nginx:2") }, "op2", { upgrade: true })), undefined, false, [{ id: "h1" }]);
    expect(rows(s)).toEqual({ web: "upgraded 2/1" });
    expect(decide({ type: "Tick", now: 5, hosts: drained }, s)).toEqual([]);
    s = settle(run(s, up({ web: spec("nginx:2") }, "op3", { confirm: true })), undefined, false, drained);
    expect(rows(s)).toEqual({ web: "active 1/1" });
    expect(started(decide({ type: "Tick", now: 5, hosts: drained }, s))).toMatchObject({ kind: "move", containers: ["demo-web-1"] });
  });

  it("stops and removes a global service's container on the drained host, as Swarm's drain does; the other host keeps its own", () => {
    const s = deployed({ agent: spec("busybox", { deploy: { mode: "global" } }) });
    expect(where(s)).toEqual({ "demo-agent-1": "h1 running", "demo-agent-2": "h2 running" });
    const events = decide({ type: "Tick", now: 5, hosts: drained }, s);
    expect(started(events)).toMatchObject({ kind: "scale", by: "corral", services: ["agent"] });
    expect(steps(events).map((x) => [x.action, x.container ?? "", x.host])).toContainEqual(["stop", "demo-agent-1", "h1"]);
    const after = settle(apply(s, events), undefined, false, drained);
    expect(where(after)).toEqual({ "demo-agent-2": "h2 running" });
    expect(decide({ type: "Tick", now: 6, hosts: drained }, after)).toEqual([]);
    // activated again, it gets one back
    expect(started(decide({ type: "Tick", now: 7, hosts: both }, after))).toMatchObject({ kind: "scale", services: ["agent"] });
  });
});
