import { describe, expect, it } from "vitest";
import { decide, type Command } from "./decide/index.js";
import { DomainError } from "./errors.js";
import { assignSlotPorts, perContainerKeys, withSlotPorts, type PortPool } from "./host-ports.js";
import type { PortSpec, ServiceSpec, Step } from "./model.js";
import { initialState, type StackState } from "./state.js";
import { apply, run, settle, spec, up } from "./testing.js";

const port = (target: number, extra: Partial<PortSpec> = {}): PortSpec => ({ target, protocol: "tcp", ...extra });
const pool = (taken: number[] = [], range: [number, number] = [60000, 60050]): PortPool => ({ range, taken });
const svc = (s: ServiceSpec) => ({ spec: s });

describe("assignSlotPorts", () => {
  it("gives each slot its own port, the lowest free, services in name order", () => {
    const out = assignSlotPorts({ web: svc(spec("x", { scale: 2, ports: [port(80)] })), api: svc(spec("x", { ports: [port(8080)] })) }, {}, pool([60000]));
    expect(out).toEqual({ changed: { api: { "1": { "8080/tcp": 60001 } }, web: { "1": { "80/tcp": 60002 }, "2": { "80/tcp": 60003 } } } });
  });

  it("keeps what a slot has, and a new slot never takes an older one's port", () => {
    const current = { web: { "2": { "80/tcp": 60000 } } };
    const out = assignSlotPorts({ web: svc(spec("x", { scale: 3, ports: [port(80)] })) }, current, pool());
    expect(out).toEqual({ changed: { web: { "1": { "80/tcp": 60001 }, "2": { "80/tcp": 60000 }, "3": { "80/tcp": 60002 } } } });
  });

  it("says nothing changed when every slot has its ports", () => {
    const current = { web: { "1": { "80/tcp": 60004 } } };
    expect(assignSlotPorts({ web: svc(spec("x", { ports: [port(80)] })) }, current, pool())).toEqual({ changed: {} });
  });

  it("gives back the ports of slots above the scale, of keys gone, and of services gone", () => {
    const current = { web: { "1": { "80/tcp": 60000, "81/tcp": 60001 }, "2": { "80/tcp": 60002, "81/tcp": 60003 } }, old: { "1": { "80/tcp": 60004 } } };
    const out = assignSlotPorts({ web: svc(spec("x", { ports: [port(80)] })) }, current, pool());
    expect(out).toEqual({ changed: { web: { "1": { "80/tcp": 60000 } }, old: {} } });
  });

  it("moves a slot off a port another stack now holds, or one outside the range, or one its stack publishes as written", () => {
    const current = { web: { "1": { "80/tcp": 60000 } }, api: { "1": { "80/tcp": 59000 } }, db: { "1": { "5432/tcp": 60005 } } };
    const services = {
      web: svc(spec("x", { ports: [port(80)] })),
      api: svc(spec("x", { ports: [port(80)] })),
      db: svc(spec("x", { ports: [port(5432)] })),
      pub: svc(spec("x", { ports: [port(80, { published: 60005 })] })),
    };
    expect(assignSlotPorts(services, current, pool([60000]))).toEqual({ changed: { api: { "1": { "80/tcp": 60001 } }, db: { "1": { "5432/tcp": 60002 } }, web: { "1": { "80/tcp": 60003 } } } });
  });

  it("refuses, naming the slot and the range, when the range runs out", () => {
    const out = assignSlotPorts({ web: svc(spec("x", { scale: 3, ports: [port(80)] })) }, {}, pool([], [60000, 60001]));
    expect(out).toEqual({ problem: "web: slot 3 needs a host port for 80/tcp: no free port left in 60000-60001" });
  });

  it("leaves ports given as HOST:CONTAINER and routed ingress ports to the service", () => {
    const s = spec("x", { scale: 2, ports: [port(80, { published: 60010 }), port(81, { mode: "ingress", published: 60011 }), port(82, { mode: "ingress" })] });
    expect(perContainerKeys(s)).toEqual([]);
    expect(assignSlotPorts({ web: svc(s) }, {}, pool())).toEqual({ changed: {} });
  });

  it("numbers a port written twice, and fills a slot's spec in mode host", () => {
    const s = spec("x", { ports: [port(80), port(80, { host_ip: "127.0.0.1" }), port(53, { protocol: "udp" })] });
    expect(perContainerKeys(s)).toEqual(["80/tcp", "80/tcp#2", "53/udp"]);
    expect(withSlotPorts(s, { "80/tcp": 60000, "80/tcp#2": 60001, "53/udp": 60002 }).ports).toEqual([
      { target: 80, protocol: "tcp", published: 60000, mode: "host" },
      { target: 80, protocol: "tcp", host_ip: "127.0.0.1", published: 60001, mode: "host" },
      { target: 53, protocol: "udp", published: 60002, mode: "host" },
    ]);
    expect(withSlotPorts(s, undefined).ports).toEqual(s.ports); // no port for it: the agent refuses, the engine never picks one
  });
});

/** The host ports the create steps of a state's current operation ask for, by container. */
const createdPorts = (s: StackState) =>
  Object.fromEntries(
    Object.values(s.steps)
      .map((r) => r.step)
      .filter((step): step is Step & { container: string } => step.action === "create" && !!step.container)
      .map((step) => [step.container, step.spec!.ports.map((p) => `${p.published ?? "none"}:${p.target}${p.mode ? ` ${p.mode}` : ""}`).join(",")]),
  );

const hello = (extra: Partial<ServiceSpec> = {}) => spec("hello:1", { ports: [port(80)], ...extra });
const scale = (scales: Record<string, number>, op: string, extra: Partial<Extract<Command, { type: "Scale" }>> = {}): Command => ({ type: "Scale", stack: "demo", op, scales, by: "admin", source: "cli", ports: pool(), ...extra });
const refusal = (s: StackState, c: Command) => {
  try {
    decide(c, s);
  } catch (e) {
    expect(e).toBeInstanceOf(DomainError);
    return (e as DomainError).message;
  }
  throw new Error("not refused");
};

describe("the decider gives every container its own host port", () => {
  it("up with deploy.replicas 2 and '- 80': two containers, two ports, each published by its own container", () => {
    const s = run(initialState("demo"), up({ web: hello({ scale: 2, deploy: { replicas: 2 } }) }, "op1", { ports: pool([60000]) }));
    expect(s.slotPorts).toEqual({ web: { "1": { "80/tcp": 60001 }, "2": { "80/tcp": 60002 } } });
    const planned = run(s, { type: "Plan", hosts: [{ id: "h1" }], now: 1 });
    expect(createdPorts(planned)).toEqual({ "demo-web-1": "60001:80 host", "demo-web-2": "60002:80 host" });
  });

  it("a slot keeps its port through an upgrade and a rollback; scale up adds one, scale down gives it back", () => {
    let s = settle(run(initialState("demo"), up({ web: hello({ scale: 2 }) }, "op1", { ports: pool() })));
    expect(s.slotPorts?.web).toEqual({ "1": { "80/tcp": 60000 }, "2": { "80/tcp": 60001 } });
    s = apply(s, decide(up({ web: hello({ scale: 2, environment: { V: "2" } }) }, "op2", { upgrade: true, ports: pool() }), s));
    const upgrading = run(s, { type: "Plan", hosts: [{ id: "h1" }], now: 1 });
    expect(createdPorts(upgrading)).toEqual({ "demo-web-1": "60000:80 host", "demo-web-2": "60001:80 host" });
    s = settle(s);
    expect(s.upgrades.web?.status).toBe("upgraded");
    s = settle(run(s, up({}, "op3", { rollback: true, ports: pool() })));
    expect(s.slotPorts?.web).toEqual({ "1": { "80/tcp": 60000 }, "2": { "80/tcp": 60001 } });
    s = settle(run(s, scale({ web: 3 }, "op4")));
    expect(s.slotPorts?.web).toEqual({ "1": { "80/tcp": 60000 }, "2": { "80/tcp": 60001 }, "3": { "80/tcp": 60002 } });
    s = settle(run(s, scale({ web: 1 }, "op5")));
    expect(s.slotPorts?.web).toEqual({ "1": { "80/tcp": 60000 } });
    s = settle(run(s, { type: "Remove", stack: "demo", op: "op6", by: "admin", source: "cli" }));
    expect(s.exists).toBe(false);
  });

  it("a stack another holds ports of: its slots skip them", () => {
    const s = run(initialState("demo"), up({ web: hello({ scale: 2 }) }, "op1", { ports: pool([60000, 60001, 60003]) }));
    expect(s.slotPorts?.web).toEqual({ "1": { "80/tcp": 60002 }, "2": { "80/tcp": 60004 } });
  });

  it("a scale the range cannot give ports for is refused, and changes nothing", () => {
    const s = settle(run(initialState("demo"), up({ web: hello() }, "op1", { ports: pool([], [60000, 60001]) })));
    expect(refusal(s, scale({ web: 3 }, "op2", { ports: pool([], [60000, 60001]) }))).toBe("web: slot 3 needs a host port for 80/tcp: no free port left in 60000-60001");
    expect(decide(scale({ web: 2 }, "op2", { ports: pool([], [60000, 60001]) }), s).map((e) => e.type)).toEqual(["ServiceScaled", "SlotPortsAssigned", "OperationStarted"]);
  });

  it("a scale past one container per live host for a HOST:CONTAINER port is refused before anything changes, naming who holds it", () => {
    const s = settle(run(initialState("demo"), up({ web: spec("hello:1", { ports: [port(80, { published: 8080 })] }) }, "op1", { ports: pool() })));
    expect(refusal(s, scale({ web: 2 }, "op2", { hosts: [{ id: "h1" }] }))).toMatch(/^no host can run demo-web-2: h1: port 8080 in use by demo-web-1; .*write it without the host port \("80"\)/);
    expect(decide(scale({ web: 2 }, "op2", { hosts: [{ id: "h1" }, { id: "h2" }] }), s).map((e) => e.type)).toEqual(["ServiceScaled", "OperationStarted"]);
  });

  it("start-first is refused when old and new container would both need the slot's port", () => {
    const s = settle(run(initialState("demo"), up({ web: hello() }, "op1", { ports: pool() })));
    expect(refusal(s, up({ web: hello({ environment: { V: "2" } }) }, "op2", { upgrade: true, startFirst: true, ports: pool() }))).toMatch(/^service web publishes host port 60000 on its container/);
  });
});
