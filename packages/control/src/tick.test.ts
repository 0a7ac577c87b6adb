import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDynamo, type StandIn } from "@corral/local";
import { decide, evolveAll, initialState, type Command, type ServiceSpec, type StackState, type StepMessage } from "@corral/core";
import { ChangeFeed, dynamoClient, ensureTable, EventStore, type HostRecord } from "@corral/store";
import type { OutgoingMessage } from "@corral/queue";
import { Controller, type ControllerOptions } from "./controller.js";
import { mayNeedTick, watchOf } from "./watch.js";

// The reconcile tick reads every stack only once per full sweep; the ticks in between read the stacks that may
// need one. Real DynamoDB stand-in; the store's loads are counted by a subclass.
const table = "corral-tick-test";
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
const web: ServiceSpec = { image: "nginx:1", environment: {}, labels: {}, ports: [], cap_add: [], cap_drop: ["ALL"], scale: 1 };
const up = (stack: string): Command => ({ type: "Up", stack, op: `op-${stack}`, services: { web }, by: "admin", source: "cli" });

class CountingStore extends EventStore {
  readonly loaded: string[] = [];
  override load(stack: string) {
    this.loaded.push(stack);
    return super.load(stack);
  }
}

/** A controller over `store` on one host that beats at `clock()`, on a clock the test moves; the steps it sends. */
function harness(store: EventStore, clock: () => number, extra: Partial<ControllerOptions> = {}) {
  const sent: StepMessage[] = [];
  const controller = new Controller({
    store,
    hosts: { list: async () => [{ ...host, lastSeen: clock() }] },
    sender: { send: async (_url: string, messages: OutgoingMessage[]) => void sent.push(...messages.map((m) => m.body as StepMessage)) },
    clock,
    ...extra,
  });
  return { controller, sent };
}

describe("the reconcile tick", () => {
  it("reads every stack once per full sweep, and between sweeps only those that may need it", async () => {
    const store = new CountingStore(db, { table, cacheStacks: 0 });
    const idle = Array.from({ length: 12 }, (_, i) => `idle-${i}`);
    for (const s of idle) await store.append(s, 0, decide({ type: "Create", stack: s, by: "admin", group: "admin" }, initialState(s)), "api");
    let now = NOW;
    const { controller, sent } = harness(store, () => now, { fullSweepMs: 60_000 });
    expect(await controller.tick()).toMatchObject({ full: true, stacks: idle.length, acted: 0 });
    store.loaded.length = 0;
    now += 5_000;
    expect(await controller.tick()).toMatchObject({ full: false, stacks: 0 });
    expect(store.loaded).toEqual([]);

    // a stack made after the sweep is read at the next tick (it is new to the index), and planned
    await store.append("fresh", 0, decide(up("fresh"), initialState("fresh")), "api");
    now += 5_000;
    expect(await controller.tick()).toMatchObject({ full: false, stacks: 1, acted: 1 });
    expect(sent.filter((m) => m.step.stack === "fresh").map((m) => m.step.action)).toEqual(["pull", "create", "start"]);
    // while its operation runs, every tick reads it again (a step may be late); the idle stacks stay unread
    store.loaded.length = 0;
    now += 5_000;
    await controller.tick();
    expect(new Set(store.loaded)).toEqual(new Set(["fresh"]));

    // an up on an idle stack whose "stack changed" message was lost: the next full sweep finds and plans it
    const before = await store.load("idle-3");
    await store.append("idle-3", before.version, decide(up("idle-3"), before), "api");
    now += 5_000;
    expect(await controller.tick()).toMatchObject({ full: false });
    expect(sent.some((m) => m.step.stack === "idle-3")).toBe(false);
    now += 60_000;
    expect(await controller.tick()).toMatchObject({ full: true });
    expect(sent.filter((m) => m.step.stack === "idle-3").map((m) => m.step.action)).toEqual(["pull", "create", "start"]);
  });

  it("sharing the API's store (the embedded server), reads a stack changed in this process at the next tick, its message lost", async () => {
    const feed = new ChangeFeed();
    const store = new CountingStore(db, { table, cacheStacks: 0, feed });
    let now = NOW;
    const { controller, sent } = harness(store, () => now, { changes: feed });
    await store.append("quiet", 0, decide({ type: "Create", stack: "quiet", by: "admin", group: "admin" }, initialState("quiet")), "api");
    await controller.tick();
    const before = await store.load("quiet");
    await store.append("quiet", before.version, decide(up("quiet"), before), "api");
    now += 5_000;
    expect(await controller.tick()).toMatchObject({ full: false }); // (the other tests' stacks share the table)
    expect(sent.filter((m) => m.step.stack === "quiet").map((m) => m.step.action)).toEqual(["pull", "create", "start"]);
  });

  it("asked for a full sweep (the scheduled function on AWS), reads every stack whenever it last did", async () => {
    const store = new CountingStore(db, { table, cacheStacks: 0 });
    const controller = new Controller({ store, hosts: { list: async () => [host] }, sender: { send: async () => {} }, clock: () => NOW });
    const first = await controller.tick();
    expect(first.full).toBe(true);
    expect(await controller.tick({ full: true })).toMatchObject({ full: true, stacks: first.stacks });
  });
});

describe("what a tick between sweeps reads (mayNeedTick)", () => {
  const state = (commands: Command[]): StackState => commands.reduce((s, c) => evolveAll(s, decide(c, s)), initialState("demo"));
  const active = new Set(["h1"]);

  it("a stack never seen, and one whose operation runs", () => {
    expect(mayNeedTick(undefined, active)).toBe(true);
    expect(mayNeedTick(watchOf(state([up("demo")])), active)).toBe(true);
  });

  it("not an empty stack at rest; a stack with a container on a host that is not active now, or with an upgrade to confirm by itself", () => {
    expect(mayNeedTick(watchOf(state([{ type: "Create", stack: "demo", by: "a", group: "a" }])), active)).toBe(false);
    expect(mayNeedTick({ running: false, timed: false, hosts: ["h1"] }, active)).toBe(false);
    expect(mayNeedTick({ running: false, timed: false, hosts: ["h1", "h2"] }, active)).toBe(true);
    expect(mayNeedTick({ running: false, timed: false, hosts: ["h1"] }, new Set())).toBe(true);
    expect(mayNeedTick({ running: false, timed: true, hosts: [] }, active)).toBe(true);
  });

  it("a cron service or a global one keeps the stack read at every tick", () => {
    const cron = { ...web, labels: { "io.corral.cron.schedule": "* * * * *" } };
    const s = state([{ type: "Up", stack: "demo", op: "o1", services: { job: cron }, by: "admin", source: "cli" }]);
    expect(watchOf({ ...s, op: undefined }).timed).toBe(true);
  });
});
