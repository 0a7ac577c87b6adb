import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDynamo, type StandIn } from "@corral/local";
import {
  controlMessageSchema,
  decide,
  evolveAll,
  initialState,
  sendable,
  utf8Bytes,
  type Command,
  type ControlMessage,
  type Logger,
  type ServiceSpec,
  type StackEvent,
  type StepMessage,
} from "@corral/core";
import { dynamoClient, ensureTable, EventStore, type HostRecord } from "@corral/store";
import type { OutgoingMessage } from "@corral/queue";
import { Controller } from "./controller.js";
import { authorizeControlMessage } from "./loop.js";

// A plan larger than a DynamoDB item (400 KB) on dynalite, which enforces that limit.
const ITEM_LIMIT = 400 * 1024;
const table = "corral-control-test";
let dynamo: StandIn;
let db: ReturnType<typeof dynamoClient>;

beforeAll(async () => {
  dynamo = await startDynamo();
  db = dynamoClient({ endpoint: dynamo.endpoint, table });
  await ensureTable(db, table);
});
afterAll(() => dynamo.stop());

const NOW = 1_000_000;
const host: HostRecord = { id: "h1", name: "h1", queueUrl: "q://h1", lastSeen: NOW, engine: "test", containers: 0, labels: {}, state: "active" };
const spec = (image: string, scale: number): ServiceSpec => ({ image, environment: { MODE: "production" }, labels: {}, ports: [], cap_add: [], cap_drop: ["ALL"], scale });
// 20 services x 100 slots: a plan of 4,020 steps, about 2 MB of events
const services = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`svc${i}`, spec(`registry.example/team/image-${i}:1.0.${i}`, 100)]));
const planStepCount = 20 + 2 * 20 * 100;

function harness(store: EventStore, options: { maxCommitBytes?: number } = {}) {
  const sent: StepMessage[] = [];
  const errors: string[] = [];
  const log: Logger = { info() {}, error: (message) => void errors.push(message) };
  const controller = new Controller({
    store,
    hosts: { list: async () => [host] },
    sender: { send: async (_url: string, messages: OutgoingMessage[]) => void sent.push(...messages.map((m) => m.body as StepMessage)) },
    clock: () => NOW,
    log,
    ...options,
  });
  return { controller, sent, errors };
}

/** Given a stack whose `up` the API has appended: the operation waits for its plan. */
async function stackUp(store: EventStore, stack: string): Promise<void> {
  const command: Command = { type: "Up", stack, op: "op1", services, by: "admin", source: "cli" };
  await store.append(stack, 0, decide(command, initialState(stack)), "api");
}

const plan: Command = { type: "Plan", hosts: [{ id: "h1" }], now: NOW };
const plannedIds = (commits: { events: StackEvent[] }[]) => commits.flatMap((c) => c.events.flatMap((e) => (e.type === "StepPlanned" ? [e.step.id] : [])));

describe("controller: a plan larger than a store item", () => {
  it("is written in several commits, each under the item limit, and loads back as the state decided", async () => {
    const store = new EventStore(db, { table });
    await stackUp(store, "big");
    const before = await store.load("big");
    const { controller, sent } = harness(store);
    const events = await controller.run("big", [plan]);

    const commits = await store.commits("big", 1);
    expect(utf8Bytes(JSON.stringify(events))).toBeGreaterThan(ITEM_LIMIT);
    expect(commits.length).toBeGreaterThan(1);
    for (const c of commits) expect(utf8Bytes(JSON.stringify(c.events))).toBeLessThan(ITEM_LIMIT);
    expect(commits.flatMap((c) => c.events)).toEqual(events);

    const loaded = await new EventStore(db, { table }).load("big");
    expect(loaded).toEqual({ ...evolveAll(before, events), version: 1 + commits.length });
    expect(Object.keys(loaded.steps)).toHaveLength(planStepCount);
    expect(loaded.op).toMatchObject({ status: "running", planned: true });
    // what may go at once went, once each: the pulls, and slot 1's create and start behind its pull
    expect(sent.length).toBeGreaterThan(0);
    expect(new Set(sent.map((m) => m.step.id)).size).toBe(sent.length);
  });

  it("cut short by a crash between two of its commits, is completed by the reconcile tick, each step planned once", async () => {
    const store = new EventStore(db, { table });
    await stackUp(store, "cut");
    // the first controller dies after its second commit
    class Crashing extends EventStore {
      #appends = 0;
      override async append(stack: string, expected: number, events: StackEvent[], by?: string) {
        if (++this.#appends > 2) throw new Error("process killed");
        return super.append(stack, expected, events, by);
      }
    }
    const dying = harness(new Crashing(db, { table }));
    await expect(dying.controller.run("cut", [plan])).rejects.toThrow("process killed");
    const partial = await store.load("cut");
    expect(Object.keys(partial.steps).length).toBeGreaterThan(0);
    expect(Object.keys(partial.steps).length).toBeLessThan(planStepCount);
    expect(partial.op).toMatchObject({ status: "running", planned: false }); // its plan is not marked done: it is planned again

    const { controller, sent } = harness(store);
    await controller.tick();
    const state = await store.load("cut");
    expect(Object.keys(state.steps)).toHaveLength(planStepCount);
    expect(state.op).toMatchObject({ status: "running", planned: true, waves: Object.keys(services) });
    const ids = plannedIds(await store.commits("cut", 1));
    expect(ids).toHaveLength(planStepCount);
    expect(new Set(ids).size).toBe(planStepCount);
    // what may go now went, once each: the steps of the commits written before the crash too, which nobody sent
    const sendableNow = Object.values(state.steps).filter((r) => sendable(state, r.step)).map((r) => r.step.id);
    expect(sent.map((m) => m.step.id).sort()).toEqual(sendableNow.sort());
  });

  it("a decision that cannot fit in commits fails the operation with the reason, logged, instead of being retried", async () => {
    const store = new EventStore(db, { table });
    await stackUp(store, "huge");
    // no commit may hold even one create step
    const { controller, errors, sent } = harness(store, { maxCommitBytes: 300 });
    const events = await controller.run("huge", [plan]);
    expect(events).toEqual([
      { type: "OperationFailed", op: "op1", reason: expect.stringMatching(/could not handle Plan: .* does not fit in a commit of at most 300 bytes; the operation cannot go on/) as unknown as string },
    ]);
    expect(errors).toEqual(["decision abandoned: a retry would fail the same way"]);
    expect(sent).toEqual([]);
    // nothing is left to retry: the tick finds the operation over
    await controller.tick();
    expect((await store.load("huge")).op).toMatchObject({ status: "failed" });
    expect(await store.commits("huge", 2)).toEqual([]);
  });
});

describe("controller: hosts and their states", () => {
  it("hands the decider every host with its state; new containers go to the active ones only, not to a draining, inactive or silent host", async () => {
    const store = new EventStore(db, { table });
    const small = { web: spec("registry.example/web:1", 4) };
    await store.append("states", 0, decide({ type: "Up", stack: "states", op: "op1", services: small, by: "admin", source: "cli" }, initialState("states")), "api");
    const at = (id: string, extra: Partial<HostRecord>): HostRecord => ({ ...host, id, name: id, queueUrl: `q://${id}`, ...extra });
    const hosts = [
      at("a-draining", { state: "draining" }),
      at("b-inactive", { state: "inactive" }),
      at("c-silent", { lastSeen: NOW - 30_000 }), // exactly the timeout: disconnected
      at("d-active", { labels: { zone: "x" } }),
      at("e-active", { lastSeen: NOW - 29_999 }),
    ];
    const urls: string[] = [];
    const sent: StepMessage[] = [];
    const controller = new Controller({
      store,
      hosts: { list: async () => hosts },
      sender: {
        send: async (url: string, messages: OutgoingMessage[]) => {
          urls.push(url);
          sent.push(...messages.map((m) => m.body as StepMessage));
        },
      },
      clock: () => NOW,
    });
    await controller.tick();
    const state = await store.load("states");
    const creates = Object.values(state.steps).filter((r) => r.step.action === "create");
    expect(creates.map((r) => r.step.host).sort()).toEqual(["d-active", "d-active", "e-active", "e-active"]);
    expect(urls.length).toBeGreaterThan(0);
    expect(urls.every((u) => u === "q://d-active" || u === "q://e-active")).toBe(true);
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.every((m) => m.step.host === "d-active" || m.step.host === "e-active")).toBe(true);
  });
});

describe("controller: a draining host", () => {
  it("the reconcile tick moves a stack's containers off a draining host though no operation runs", async () => {
    const store = new EventStore(db, { table });
    // given a stack that came up on h1, every step reported
    const on = [{ id: "h1" }];
    const events: StackEvent[] = [];
    let s = initialState("drain");
    const take = (c: Command) => {
      const e = decide(c, s);
      events.push(...e);
      s = evolveAll(s, e);
    };
    take({ type: "Up", stack: "drain", op: "op1", services: { web: spec("registry.example/web:1", 2) }, by: "admin", source: "cli" });
    take({ type: "Plan", hosts: on, now: NOW });
    for (let guard = 0; guard < 50 && s.op?.status === "running"; guard++) {
      const next = Object.values(s.steps).find((r) => r.status === "planned" && sendable(s, r.step));
      if (!next) break;
      const created = next.step.action === "create" ? { containerId: `c-${guard}` } : {};
      take({ type: "Report", report: { kind: "report", stack: "drain", stepId: next.step.id, host: "h1", ok: true, ...created }, hosts: on, now: NOW });
    }
    expect(s.op?.status).toBe("succeeded");
    await store.append("drain", 0, events, "control");
    // when h1 drains
    const at = (id: string, extra: Partial<HostRecord>): HostRecord => ({ ...host, id, name: id, queueUrl: `q://${id}`, ...extra });
    const urls: string[] = [];
    const controller = new Controller({
      store,
      hosts: { list: async () => [at("h1", { state: "draining" }), at("h2", {})] },
      sender: { send: async (url: string) => void urls.push(url) },
      clock: () => NOW,
    });
    await controller.tick();
    const state = await store.load("drain");
    expect(state.op).toMatchObject({ kind: "move", status: "running", containers: ["drain-web-1", "drain-web-2"] });
    const creates = Object.values(state.steps).filter((r) => r.step.action === "create");
    expect(creates.map((r) => r.step.host)).toEqual(["h2", "h2"]);
    expect(urls).toContain("q://h2"); // the image is pulled there first
  });
});

describe("controller: a container that exited by itself", () => {
  it("an exit its own host reports is recorded (ps: stopped, exited with code N); another host may not say it", async () => {
    const store = new EventStore(db, { table });
    const on = [{ id: "h1" }];
    const events: StackEvent[] = [];
    let s = initialState("crash");
    const take = (c: Command) => {
      const e = decide(c, s);
      events.push(...e);
      s = evolveAll(s, e);
    };
    take({ type: "Up", stack: "crash", op: "op1", services: { web: spec("registry.example/web:1", 1) }, by: "admin", source: "cli" });
    take({ type: "Plan", hosts: on, now: NOW });
    for (let guard = 0; guard < 20 && s.op?.status === "running"; guard++) {
      const next = Object.values(s.steps).find((r) => r.status === "planned" && sendable(s, r.step));
      if (!next) break;
      const created = next.step.action === "create" ? { containerId: "abcdef0123456789" } : {};
      take({ type: "Report", report: { kind: "report", stack: "crash", stepId: next.step.id, host: "h1", ok: true, ...created }, hosts: on, now: NOW });
    }
    await store.append("crash", 0, events, "control");
    const body: ControlMessage = controlMessageSchema.parse({ kind: "exited", stack: "crash", host: "h1", container: "crash-web-1", dockerId: "abcdef0123456789", exitCode: 137, at: NOW });
    const message = (by: string) => ({ body, group: "crash", receiptHandle: "r", messageId: "m1", by });
    expect(authorizeControlMessage(message("host:h2"))).toBe("host:h2 may not speak for host h1");
    expect(authorizeControlMessage(message("host:h1"))).toBeUndefined();
    const { controller } = harness(store);
    expect(await controller.handleBatch([message("host:h1")])).toEqual({ failed: [] });
    expect((await store.load("crash")).containers["crash-web-1"]).toMatchObject({ state: "stopped", exited: { code: 137, at: NOW } });
    // the schema bounds what an agent may say
    expect(controlMessageSchema.safeParse({ ...body, exitCode: 1000 }).success).toBe(false);
    expect(controlMessageSchema.safeParse({ ...body, dockerId: "not hex" }).success).toBe(false);
  });

  it("a host started again is announced by the control plane only, never by a host", () => {
    const body: ControlMessage = controlMessageSchema.parse({ kind: "host-started", stack: "crash", host: "h1" });
    const message = (by: string) => ({ body, group: "crash", receiptHandle: "r", messageId: "m1", by });
    expect(authorizeControlMessage(message("host:h1"))).toBe("host:h1 may not announce a host's start");
    expect(authorizeControlMessage(message("control"))).toBeUndefined();
    expect(controlMessageSchema.safeParse({ ...body, host: "" }).success).toBe(false);
  });
});

describe("controller: a restart of the control plane", () => {
  const at = (id: string, extra: Partial<HostRecord>): HostRecord => ({ ...host, id, name: id, queueUrl: `q://${id}`, ...extra });
  const upOn = async (store: EventStore, stack: string, hosts: HostRecord[], options: { heardSince?: number; resendAfterMs?: number; clock?: () => number } = {}) => {
    await store.append(stack, 0, decide({ type: "Up", stack, op: "op1", services: { web: spec("registry.example/web:1", 2) }, by: "admin", source: "cli" }, initialState(stack)), "api");
    const sent: StepMessage[] = [];
    const controller = new Controller({
      store,
      hosts: { list: async () => hosts },
      sender: { send: async (_url: string, messages: OutgoingMessage[]) => void sent.push(...messages.map((m) => m.body as StepMessage)) },
      clock: options.clock ?? (() => NOW),
      ...options,
    });
    return { controller, sent };
  };

  it("a host silent since before the control plane started is not disconnected until its timeout from the start (heardSince)", async () => {
    const store = new EventStore(db, { table });
    // the control plane was down for a minute: its one host's last heartbeat is that old
    const hosts = [at("h-quiet", { lastSeen: NOW - 60_000 })];
    const { controller } = await upOn(store, "restarted", hosts, { heardSince: NOW - 1000 });
    await controller.tick();
    const creates = Object.values((await store.load("restarted")).steps).filter((r) => r.step.action === "create");
    expect(creates.map((r) => r.step.host)).toEqual(["h-quiet", "h-quiet"]);
  });

  it("without heardSince, the same host is disconnected: nothing is placed on it", async () => {
    const store = new EventStore(db, { table });
    const { controller } = await upOn(store, "not-restarted", [at("h-quiet", { lastSeen: NOW - 60_000 })]);
    await controller.tick();
    expect(Object.values((await store.load("not-restarted")).steps).filter((r) => r.step.action === "create")).toEqual([]);
  });

  it("a tick with resendAfterMs 0 (the queues were lost) re-sends every step in flight at once, however recent", async () => {
    const store = new EventStore(db, { table });
    let now = NOW;
    const { controller, sent } = await upOn(store, "redrive", [at("h1", {})], { resendAfterMs: 30_000, clock: () => now });
    await controller.tick();
    // the table holds the other tests' stacks too: this one's steps only
    const mine = () => sent.filter((m) => m.step.stack === "redrive").map((m) => `${m.step.id}#${m.attempt}`);
    const first = mine();
    expect(first.length).toBeGreaterThan(0);
    now += 1000;
    await controller.tick(); // a second later: nothing is late yet
    expect(mine()).toEqual(first);
    await controller.tick({ resendAfterMs: 0 });
    expect(mine().slice(first.length)).toEqual(first.map((id) => id.replace(/#1$/, "#2")));
  });
});
