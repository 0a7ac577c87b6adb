import { expect } from "vitest";
import { decide, type Command, type CommandOf, type HostInfo } from "./decide/index.js";
import { DomainError } from "./errors.js";
import type { PulledImage, StackEvent } from "./events.js";
import type { ServiceSpec, Step } from "./model.js";
import { evolve, evolveAll, initialState, type StackState } from "./state.js";
import { serviceRows } from "./view.js";

// Test helpers for the decider: given events / when command / then events (or state, with a perfect agent).
export const spec = (image: string, extra: Partial<ServiceSpec> = {}): ServiceSpec => ({ image, environment: {}, labels: {}, ports: [], cap_add: [], cap_drop: ["ALL"], scale: 1, ...extra });
export const hosts: HostInfo[] = [{ id: "h1" }];
let ids = 0;

/** given events / when command / then events, or refused with a DomainError of that code, or the events to look into. */
export function given(events: StackEvent[]) {
  const state = events.reduce(evolve, initialState("demo"));
  return {
    state,
    when(command: Command) {
      return {
        then: (expected: StackEvent[]) => expect(decide(command, state)).toEqual(expected),
        thenRefused: (code: DomainError["code"], message: RegExp) => {
          let err: unknown;
          try {
            decide(command, state);
          } catch (e) {
            err = e;
          }
          expect(err).toBeInstanceOf(DomainError);
          expect((err as DomainError).code).toBe(code);
          expect((err as DomainError).message).toMatch(message);
        },
        events: () => decide(command, state),
      };
    },
  };
}

export const apply = (s: StackState, events: StackEvent[]) => evolveAll(s, events);
export const run = (s: StackState, c: Command) => apply(s, decide(c, s));

/** A perfect agent: every planned step succeeds, in order, (creates get fresh engine ids), unless `fail` says otherwise; each step's host reports it; the decider plans on `on`. */
export function settle(
  s: StackState,
  fail: (step: Step) => string | undefined = () => undefined,
  healthChecked = false,
  on: HostInfo[] = hosts,
  pulled?: (step: Step) => PulledImage | undefined,
): StackState {
  s = run(s, { type: "Plan", hosts: on, now: 1 });
  for (let guard = 0; guard < 200 && s.op?.status === "running"; guard++) {
    const next = Object.values(s.steps).find((r) => r.status === "planned" && r.step.after.every((d) => s.steps[d]?.status !== "planned"));
    if (!next) break;
    // as the agent does: a step whose dependency failed is skipped
    const depFailed = !next.step.afterAny && next.step.after.some((d) => s.steps[d]?.status === "failed");
    const error = depFailed ? "skipped: a step before failed" : fail(next.step);
    const created = next.step.action === "create" ? { containerId: `c${++ids}` } : {};
    const healthy = healthChecked && !error && next.step.action === "start" ? { health: "healthy" as const } : {};
    const image = !error && next.step.action === "pull" ? pulled?.(next.step) : undefined;
    s = run(s, {
      type: "Report",
      report: { kind: "report", stack: "demo", stepId: next.step.id, host: next.step.host, ok: !error, ...(error ? { error } : {}), ...created, ...healthy, ...(image ? { image } : {}) },
      hosts: on,
      now: 2,
    });
  }
  return s;
}

export const up = (services: Record<string, ServiceSpec>, op: string, flags: Partial<CommandOf<"Up">> = {}): Command => ({
  type: "Up",
  stack: "demo",
  op,
  services,
  by: "admin",
  source: "cli",
  ...flags,
});
export const engineIds = (s: StackState) => Object.fromEntries(Object.values(s.containers).map((c) => [c.name, `${c.dockerId} ${c.state}`]));
export const rows = (s: StackState) => Object.fromEntries(serviceRows(s).map((r) => [r.name.split("/")[1], `${r.state} ${r.scale}`]));

