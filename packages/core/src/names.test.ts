import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseProject } from "./compose.js";
import { decide } from "./decide/index.js";
import { stackNamePattern } from "./model.js";
import { asideName, containerName, displayName, parseEngineName, runContainerName, serviceNamePattern, type EngineName } from "./names.js";
import { evolve, initialState, type StackState } from "./state.js";
import { hosts, run, settle, spec, up } from "./testing.js";
import { containerRows } from "./view.js";

const engineName = (n: EngineName) =>
  n.kind === "run" ? runContainerName(n.stack, n.service, n.run) : n.kind === "aside" ? asideName(containerName(n.stack, n.service, n.slot), n.revision) : containerName(n.stack, n.service, n.slot);

// names drawn from a small alphabet heavy in dashes, digits and 'r', where collisions would hide
const label = fc.array(fc.constantFrom("a", "b", "r", "0", "1", "-", "-"), { minLength: 1, maxLength: 9 }).map((cs) => cs.join(""));
const names = fc.record({ stack: label, service: label }).filter(({ stack, service }) => stackNamePattern.test(stack) && serviceNamePattern.test(service));
const anyName: fc.Arbitrary<EngineName> = fc.oneof(
  names.chain((n) => fc.record({ kind: fc.constant("slot" as const), stack: fc.constant(n.stack), service: fc.constant(n.service), slot: fc.integer({ min: 1, max: 120 }) })),
  names.chain((n) => fc.record({ kind: fc.constant("aside" as const), stack: fc.constant(n.stack), service: fc.constant(n.service), slot: fc.integer({ min: 1, max: 120 }), revision: fc.integer({ min: 0, max: 120 }) })),
  names.chain((n) => fc.record({ kind: fc.constant("run" as const), stack: fc.constant(n.stack), service: fc.constant(n.service), run: fc.integer({ min: 1, max: 120 }) })),
);

describe("engine names", () => {
  it("each engine name reads back to the (stack, service, slot | aside | run) that made it, so distinct ones never share a name", () => {
    fc.assert(
      fc.property(anyName, (n) => {
        expect(parseEngineName(engineName(n))).toEqual(n);
      }),
      { numRuns: 20_000 },
    );
  });

  it("keep Rancher's STACK-SERVICE-N for a service without a dash, and tell the pairs of issue 10 apart", () => {
    expect(containerName("demo", "web", 1)).toBe("demo-web-1");
    expect(containerName("e2e-dup", "web", 3)).toBe("e2e-dup-web-3");
    // stack a-b service c, stack a service b-c
    expect(containerName("a-b", "c", 1)).toBe("a-b-c-1");
    expect(containerName("a", "b-c", 1)).toBe("a_b-c-1");
    // a scheduled job's run of x-y/job, and stack x-y's service run
    expect(runContainerName("x-y", "job", 1)).toBe("x-y-job.run-1");
    expect(containerName("x-y", "run", 1)).toBe("x-y-run-1");
    expect(runContainerName("x", "y", 1)).toBe("x-y.run-1");
    expect(containerName("x", "y-run", 1)).toBe("x_y-run-1");
    // an old container kept aside, and a service whose name looks like one
    expect(asideName(containerName("a", "b", 1), 2)).toBe("a-b-1-r2");
    expect(containerName("a-b-1", "r2", 1)).toBe("a-b-1-r2-1");
    expect(new Set([containerName("a-b", "c", 1), containerName("a", "b-c", 1), runContainerName("x", "y", 1), containerName("x-y", "run", 1)]).size).toBe(4);
  });

  it("show users STACK-SERVICE-N whatever the engine's name, and leave other names alone", () => {
    expect(displayName("a_b-c-1")).toBe("a-b-c-1");
    expect(displayName("a_b-c-1-r3")).toBe("a-b-c-1-r3");
    expect(displayName("my-app_api-gw.run-4")).toBe("my-app-api-gw.run-4");
    expect(displayName("demo-web-1")).toBe("demo-web-1");
    expect(displayName("not_corral_s")).toBe("not_corral_s");
    expect(parseEngineName("a_b-1")).toBeUndefined(); // a service without a dash is never after an underscore
    expect(parseEngineName("web")).toBeUndefined();
  });

  it("service names are DNS labels", () => {
    for (const ok of ["web", "my-api", "a1", "x".repeat(63)]) expect(serviceNamePattern.test(ok), ok).toBe(true);
    for (const bad of ["my_api", "api.v2", "-web", "Web", "x".repeat(64), ""]) expect(serviceNamePattern.test(bad), bad).toBe(false);
  });
});

describe("the decider names containers so", () => {
  const services = { "api-gw": spec("gw:1"), web: spec("web:1") };

  it("plans STACK_SERVICE-N for a service with a dash, shows STACK-SERVICE-N, and starts what its create made", () => {
    const s = settle(run(initialState("demo"), up(services, "op1")));
    expect(Object.keys(s.containers).sort()).toEqual(["demo-web-1", "demo_api-gw-1"]);
    expect(containerRows(s).map((r) => r.name)).toEqual(["demo-api-gw-1", "demo-web-1"]);
    const starts = Object.values(s.steps).filter((r) => r.step.action === "start").map((r) => [r.step.container, r.step.createdBy]);
    expect(starts).toEqual([
      ["demo_api-gw-1", "demo.api-gw.1.create.r1.op1"],
      ["demo-web-1", "demo.web.1.create.r1.op1"],
    ]);
  });

  it("keeps a container made under the name it had before (STACK-SERVICE-N), rather than making a second one in its slot", () => {
    const s = settle(run(initialState("demo"), up(services, "op1")));
    const { "demo_api-gw-1": gw, ...rest } = s.containers;
    const before: StackState = { ...s, containers: { ...rest, "demo-api-gw-1": { ...gw!, name: "demo-api-gw-1", state: "stopped" } } };
    const again = decide(up(services, "op2"), before).reduce(evolve, before);
    const steps = decide({ type: "Plan", hosts, now: 3 }, again).flatMap((e) => (e.type === "StepPlanned" ? [`${e.step.action} ${e.step.container}`] : []));
    expect(steps).toEqual(["start demo-api-gw-1"]);
  });
});

describe("a compose file", () => {
  it("refuses a service name that is no DNS label ('_' or '.' would make engine names ambiguous)", () => {
    for (const name of ["my_api", "api.v2"]) {
      expect(() => parseProject({ services: { [name]: { image: "x" } } })).toThrow(
        `docker-compose.yml: services.${name}: a service name is a DNS label: lower-case letters, digits and '-', at most 63 (it names SERVICE.STACK.ENVIRONMENT.DOMAIN and the service's containers)`,
      );
    }
    expect(Object.keys(parseProject({ services: { "my-api": { image: "x" } } }).project.services)).toEqual(["my-api"]);
  });
});
