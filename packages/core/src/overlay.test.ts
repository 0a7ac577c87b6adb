import { describe, expect, it } from "vitest";
import { gatewayOf, iptablesRestore, overlayPlan, stackBridge, stackNames, vtepMac, type OverlayView } from "./overlay.js";
import { initialState, type StackState } from "./state.js";
import { run, settle, spec, up } from "./testing.js";

// given the control plane's view of the fleet, then what this host's kernel should hold for the stack networks

const h1 = { id: "h1", underlay: "198.18.2.2", vtep: "10.199.0.1" };
const h2 = { id: "h2", underlay: "198.18.3.2", vtep: "10.199.0.2" };
const h3 = { id: "h3", underlay: "198.18.4.2", vtep: "10.199.0.3" };
const view: OverlayView = {
  me: h1,
  peers: [h3, h2, h1],
  stacks: [
    { stack: "shop", subnets: { h1: "10.200.1.0/24", h2: "10.200.2.0/24" } },
    { stack: "blog", subnets: { h1: "10.200.7.0/24", h3: "10.200.8.0/24", gone: "10.200.9.0/24" } },
    { stack: "elsewhere", subnets: { h2: "10.200.5.0/24" } },
  ],
};

describe("the overlay plan of a host", () => {
  it("has one VXLAN device on the host's address, its MTU 50 below the underlay's, its MAC from its VTEP address", () => {
    expect(overlayPlan(view).device).toEqual({ name: "corral.vx", vni: 4242, port: 4789, local: "198.18.2.2", mac: "02:c0:0a:c7:00:01", address: "10.199.0.1", mtu: 1450 });
    expect(overlayPlan({ ...view, mtu: 9000 }).device.mtu).toBe(8950);
  });

  it("knows every other registered host's VTEP, in id order; not itself", () => {
    expect(overlayPlan(view).peers).toEqual([
      { id: "h2", mac: "02:c0:0a:c7:00:02", underlay: "198.18.3.2", vtep: "10.199.0.2" },
      { id: "h3", mac: "02:c0:0a:c7:00:03", underlay: "198.18.4.2", vtep: "10.199.0.3" },
    ]);
  });

  it("routes the other hosts' subnets of the stacks it runs, through their VTEPs; none of a stack it does not run, none to a host no longer registered", () => {
    expect(overlayPlan(view).routes).toEqual([
      { subnet: "10.200.8.0/24", via: "10.199.0.3", stack: "blog", host: "h3" },
      { subnet: "10.200.2.0/24", via: "10.199.0.2", stack: "shop", host: "h2" },
    ]);
    expect(overlayPlan(view).bridges).toEqual([
      { stack: "blog", bridge: stackBridge("blog"), subnet: "10.200.7.0/24", gateway: "10.200.7.1" },
      { stack: "shop", bridge: stackBridge("shop"), subnet: "10.200.1.0/24", gateway: "10.200.1.1" },
    ]);
  });

  it("lets a stack's subnets reach each other across the overlay and nothing else; VXLAN only from registered hosts; overlay traffic not masqueraded", () => {
    const plan = overlayPlan(view);
    const shop = stackBridge("shop");
    expect(plan.filter).toContain(`-A CORRAL-OVERLAY -i ${shop} -o corral.vx -s 10.200.1.0/24 -d 10.200.2.0/24 -j ACCEPT`);
    expect(plan.filter).toContain(`-A CORRAL-OVERLAY -i corral.vx -o ${shop} -s 10.200.2.0/24 -d 10.200.1.0/24 -j ACCEPT`);
    // blog's subnet elsewhere is not shop's to reach: no rule pairs them
    expect(plan.filter.filter((r) => r.includes(shop) && r.includes("10.200.8.0/24"))).toEqual([]);
    const overlay = plan.filter.filter((r) => r.startsWith("-A CORRAL-OVERLAY"));
    expect(overlay.at(-1)).toBe("-A CORRAL-OVERLAY -j DROP");
    expect(plan.filter.filter((r) => r.startsWith("-A CORRAL-VXLAN"))).toEqual(["-A CORRAL-VXLAN -s 198.18.3.2/32 -j ACCEPT", "-A CORRAL-VXLAN -s 198.18.4.2/32 -j ACCEPT", "-A CORRAL-VXLAN -j DROP"]);
    expect(plan.nat).toEqual([":CORRAL-OVERLAY-NAT - [0:0]", "-A CORRAL-OVERLAY-NAT -o corral.vx -j ACCEPT"]);
    expect(plan.jumps.map((j) => `${j.table} ${j.chain} ${j.rule.join(" ")}`)).toEqual([
      "filter DOCKER-USER -i corral.vx -j CORRAL-OVERLAY",
      "filter DOCKER-USER -o corral.vx -j CORRAL-OVERLAY",
      "filter INPUT -p udp --dport 4789 -j CORRAL-VXLAN",
      "nat POSTROUTING -j CORRAL-OVERLAY-NAT",
    ]);
    const restore = iptablesRestore(plan);
    expect(restore.startsWith("*filter\n:CORRAL-OVERLAY - [0:0]\n:CORRAL-VXLAN - [0:0]\n")).toBe(true);
    expect(restore).toMatch(/COMMIT\n\*nat\n:CORRAL-OVERLAY-NAT - \[0:0\]\n-A CORRAL-OVERLAY-NAT -o corral.vx -j ACCEPT\nCOMMIT\n$/);
  });

  it("a host with no stack yet still has its device, and drops whatever crosses", () => {
    const plan = overlayPlan({ me: h1, peers: [h2], stacks: [] });
    expect(plan.routes).toEqual([]);
    expect(plan.filter.filter((r) => r.startsWith("-A CORRAL-OVERLAY"))).toEqual(["-A CORRAL-OVERLAY -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", "-A CORRAL-OVERLAY -j DROP"]);
  });

  it("refuses what is not an address or a subnet, rather than write it into a rule", () => {
    expect(() => overlayPlan({ ...view, stacks: [{ stack: "x", subnets: { h1: "10.0.0.0/24 -j ACCEPT" } }] })).toThrow("stack x on h1: not a subnet");
    expect(() => vtepMac("10.0.0.300")).toThrow("not an IPv4 address");
    expect(() => overlayPlan({ ...view, me: { ...h1, vtep: "x" } })).toThrow("not an IPv4 address");
    expect(() => overlayPlan({ ...view, peers: [{ ...h2, underlay: "0/0 -j ACCEPT" }] })).toThrow("not an IPv4 address: 0/0 -j ACCEPT");
  });

  it("names bridges within Linux's 15 characters, the same for the same stack", () => {
    expect(stackBridge("a-very-long-stack-name-indeed")).toMatch(/^cr-[0-9a-f]{12}$/);
    expect(stackBridge("shop")).toBe(stackBridge("shop"));
    expect(stackBridge("shop")).not.toBe(stackBridge("blog"));
    expect(gatewayOf("10.200.7.0/24")).toBe("10.200.7.1");
  });
});

describe("a stack's names", () => {
  const both = [{ id: "h1" }, { id: "h2" }];
  const withIps = (s: StackState): StackState => {
    const containers = Object.fromEntries(Object.entries(s.containers).map(([name, c], i) => [name, { ...c, ip: `10.201.${c.host === "h1" ? 1 : 2}.${i + 2}` }]));
    return { ...s, containers };
  };
  it("give each service's running containers on every host, under SERVICE and SERVICE.STACK, and each container's own address", () => {
    const s = withIps(settle(run(initialState("demo"), up({ app: spec("app", { scale: 2 }), db: spec("db") }, "op1")), undefined, false, both));
    const names = stackNames(s);
    expect(Object.keys(names).sort()).toEqual(["app", "app.demo", "db", "db.demo", "demo-app-1", "demo-app-2", "demo-db-1"]);
    expect(names.app).toHaveLength(2);
    expect(new Set(names.app!.map((ip) => ip.split(".")[2]))).toEqual(new Set(["1", "2"])); // both hosts
    expect(names["app.demo"]).toEqual(names.app);
    expect(names["demo-db-1"]).toEqual(names.db);
  });

  it("leave out stopped containers, unhealthy ones of a service with a health check, upgrades' previous ones, and those of hosts down", () => {
    const checked = spec("app", { scale: 2, healthcheck: { test: ["CMD", "true"] } });
    let s = withIps(settle(run(initialState("demo"), up({ app: checked, db: spec("db") }, "op1")), undefined, true, both));
    const [one, two] = ["demo-app-1", "demo-app-2"].map((n) => s.containers[n]!);
    s = { ...s, containers: { ...s.containers, "demo-app-2": { ...two!, health: "unhealthy" }, "demo-db-1": { ...s.containers["demo-db-1"]!, state: "stopped" } } };
    expect(stackNames(s).app).toEqual([one!.ip]);
    expect(stackNames(s).db).toEqual([]);
    expect(stackNames(s)["demo-db-1"]).toEqual([]);
    const aside = { ...one!, name: "demo-app-1-r1", previousOf: "demo-app-1" };
    expect(stackNames({ ...s, containers: { ...s.containers, "demo-app-1-r1": aside } }).app).toEqual([one!.ip]);
    expect(stackNames(s, (h) => h !== one!.host).app).toEqual([]);
  });
});
