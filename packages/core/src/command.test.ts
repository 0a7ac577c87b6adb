import { describe, expect, it } from "vitest";
import { handleCommand, type EventLog } from "./command.js";
import type { Command } from "./decide/index.js";
import { DomainError, VersionConflictError } from "./errors.js";
import type { Commit, StackEvent } from "./events.js";
import { fold, initialState } from "./state.js";

/** An event log in memory: commits in an array; `rival` appends its events first, as another writer would, before each of the next appends. */
function memoryLog(given: StackEvent[][] = [], rival: { events: StackEvent[]; times: number } = { events: [], times: 0 }) {
  const commits: Array<Commit & { cause: string }> = given.map((events, i) => ({ stack: "demo", version: i + 1, at: 0, events, cause: "given" }));
  let rivals = rival.times;
  const log: EventLog = {
    load: async (stack) => fold(initialState(stack), commits),
    append: async (stack, expectedVersion, events, cause) => {
      if (rivals-- > 0) commits.push({ stack, version: commits.length + 1, at: 0, events: rival.events, cause: "rival" });
      if (commits.length !== expectedVersion) throw new VersionConflictError(stack, expectedVersion + 1);
      commits.push({ stack, version: expectedVersion + 1, at: 0, events, cause });
      return { version: expectedVersion + 1 };
    },
  };
  return { log, commits };
}

const created = (by: string): StackEvent => ({ type: "StackCreated", stack: "demo", by, owner: by, group: by });
const create = (by: string): Command => ({ type: "Create", stack: "demo", by });

describe("handleCommand", () => {
  it("given nothing, when a stack is created, then StackCreated is appended as version 1", async () => {
    const { log, commits } = memoryLog();
    const handled = await handleCommand(log, "demo", () => create("alice"));
    expect(handled.events).toEqual([created("alice")]);
    expect(handled.version).toBe(1);
    expect(handled.state.version).toBe(0);
    expect(handled.after.exists).toBe(true);
    expect(commits.map((c) => [c.version, c.cause, c.events])).toEqual([[1, "Create", [created("alice")]]]);
  });

  it("given a stack, when it is created again, then the decider's refusal is thrown and nothing is appended", async () => {
    const { log, commits } = memoryLog([[created("alice")]]);
    const refused = await handleCommand(log, "demo", () => create("bob")).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(DomainError);
    expect(refused).toMatchObject({ code: "conflict", message: "stack demo already exists" });
    expect(commits).toHaveLength(1);
  });

  it("appends nothing when the decider decides nothing", async () => {
    const { log, commits } = memoryLog([[created("alice")]]);
    const handled = await handleCommand(log, "demo", () => ({ type: "Plan", hosts: [], now: 1 }));
    expect(handled).toMatchObject({ events: [], version: 1 });
    expect(commits).toHaveLength(1);
  });

  it("decides several commands in order, each on the state the ones before it left, and names them in the commit", async () => {
    const { log } = memoryLog();
    const twice = await handleCommand(log, "demo", () => [create("alice"), create("alice")]).catch((e: unknown) => e);
    expect(twice).toMatchObject({ code: "conflict", message: "stack demo already exists" });
    const { log: other, commits } = memoryLog();
    await handleCommand(other, "demo", () => [create("alice"), { type: "Plan", hosts: [], now: 1 }], { cause: "controller" });
    expect(commits.map((c) => c.cause)).toEqual(["controller"]);
  });

  it("given another writer appends first, the stack is loaded and decided again, and the command lands after it", async () => {
    const { log, commits } = memoryLog([], { events: [created("bob"), { type: "StackRemoved", op: "op-1" }], times: 1 });
    const seen: number[] = [];
    const handled = await handleCommand(log, "demo", (state) => {
      seen.push(state.version);
      return create("alice");
    });
    expect(seen).toEqual([0, 1]);
    expect(handled).toMatchObject({ events: [created("alice")], version: 2 });
    expect(commits.map((c) => c.cause)).toEqual(["rival", "Create"]);
  });

  it("gives up after maxAttempts conflicting appends, throwing the last conflict", async () => {
    const { log, commits } = memoryLog([], { events: [{ type: "StackRemoved", op: "op-1" }], times: 10 });
    let made = 0;
    const given = await handleCommand(
      log,
      "demo",
      () => {
        made++;
        return create("alice");
      },
      { maxAttempts: 3 },
    ).catch((e: unknown) => e);
    expect(given).toBeInstanceOf(VersionConflictError);
    expect(given).toMatchObject({ stackName: "demo", version: 3 });
    expect(made).toBe(3);
    expect(commits.map((c) => c.cause)).toEqual(["rival", "rival", "rival"]);
  });
});
