import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { overlayPlan, stackBridge, type OverlayView } from "@corral/core";
import { applyOverlay, type Exec } from "./overlay.js";

// The overlay on a real kernel: two hosts as two network namespaces on one veth link (198.18.60.0/24),
// each with a stack bridge per stack and a "container" (a namespace of its own) on each bridge. The plan
// applied, containers of a stack reach each other across hosts; another stack's cannot; applied again,
// nothing changes; a peer gone, its routes and entries go.
const run = promisify(execFile);
const sh = (...argv: string[]) => run(argv[0]!, argv.slice(1)).then((r) => r.stdout);
const canNetns = async () => {
  if (process.getuid?.() !== 0) return "needs root (network namespaces)";
  try {
    await sh("ip", "netns", "add", "corral-ovl-probe");
    await sh("ip", "netns", "del", "corral-ovl-probe");
    await sh("iptables", "-V");
    return undefined;
  } catch (e) {
    return `network namespaces or iptables unavailable: ${String(e).split("\n")[0]}`;
  }
};
const why = await canNetns();
if (why) console.warn(`skipped: ${why}`);

const inNs =
  (ns: string): Exec =>
  async (argv, input) => {
    const child = execFile("nsenter", [`--net=/var/run/netns/${ns}`, ...argv], { timeout: 20_000 });
    let out = "";
    let err = "";
    child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    if (input !== undefined) child.stdin?.end(input);
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    if (code !== 0) throw new Error(`${argv.join(" ")}: ${err.trim()}`);
    return out;
  };

const hosts = { a: { id: "ha", underlay: "198.18.60.1", vtep: "10.199.60.1" }, b: { id: "hb", underlay: "198.18.60.2", vtep: "10.199.60.2" } };
const stacks = [
  { stack: "shop", subnets: { ha: "10.201.1.0/24", hb: "10.201.2.0/24" } },
  { stack: "blog", subnets: { ha: "10.201.7.0/24", hb: "10.201.8.0/24" } },
];
const viewOf = (me: "a" | "b"): OverlayView => ({ me: hosts[me], peers: [hosts.a, hosts.b], stacks });
const ns = { a: "corral-ovl-a", b: "corral-ovl-b" };
// a container: namespace c-<host>-<stack>, address .2 of the stack's subnet on that host
const containers = [
  ["a", "shop", "10.201.1"],
  ["b", "shop", "10.201.2"],
  ["a", "blog", "10.201.7"],
  ["b", "blog", "10.201.8"],
] as const;
const cns = (host: string, stack: string) => `corral-ovl-c${host}${stack}`;
const ping = (from: string, to: string) =>
  sh("nsenter", `--net=/var/run/netns/${from}`, "busybox", "ping", "-c", "1", "-W", "1", to).then(
    () => true,
    () => false,
  );

const intruder = "corral-ovl-x";
async function cleanup() {
  for (const n of [...Object.values(ns), intruder, ...containers.map(([h, s]) => cns(h, s))]) await sh("ip", "netns", "del", n).catch(() => {});
}

describe.skipIf(why !== undefined)("the overlay on a real kernel", () => {
  beforeAll(async () => {
    await cleanup();
    await sh("ip", "netns", "add", ns.a);
    await sh("ip", "netns", "add", ns.b);
    await sh("ip", "-n", ns.a, "link", "add", "u0", "type", "veth", "peer", "name", "u0", "netns", ns.b);
    for (const [k, n] of Object.entries(ns)) {
      await sh("ip", "-n", n, "addr", "add", `${hosts[k as "a" | "b"].underlay}/24`, "dev", "u0");
      await sh("ip", "-n", n, "link", "set", "u0", "up");
      await sh("ip", "-n", n, "link", "set", "lo", "up");
      await inNs(n)(["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
      // as on a Docker host: forwarding refused unless a rule says otherwise
      await inNs(n)(["iptables", "-P", "FORWARD", "DROP"]);
    }
    for (const [h, stack, net] of containers) {
      const host = ns[h];
      const bridge = stackBridge(stack);
      await sh("ip", "-n", host, "link", "add", bridge, "type", "bridge").catch(() => {});
      await sh("ip", "-n", host, "addr", "replace", `${net}.1/24`, "dev", bridge);
      await sh("ip", "-n", host, "link", "set", bridge, "up");
      const c = cns(h, stack);
      await sh("ip", "netns", "add", c);
      await sh("ip", "-n", host, "link", "add", `v${stack}`, "type", "veth", "peer", "name", "eth0", "netns", c);
      await sh("ip", "-n", host, "link", "set", `v${stack}`, "master", bridge, "up");
      await sh("ip", "-n", c, "addr", "add", `${net}.2/24`, "dev", "eth0");
      await sh("ip", "-n", c, "link", "set", "eth0", "up");
      await sh("ip", "-n", c, "route", "add", "default", "via", `${net}.1`);
    }
  }, 60_000);
  afterAll(cleanup, 30_000);

  it("containers of a stack reach each other across the hosts, by address; another stack's cannot; applied again, nothing changes", async () => {
    expect(await ping(cns("a", "shop"), "10.201.2.2")).toBe(false); // nothing yet
    const first = await applyOverlay(overlayPlan(viewOf("a")), inNs(ns.a));
    await applyOverlay(overlayPlan(viewOf("b")), inNs(ns.b));
    expect(first.device).toBe("created");
    expect(await ping(cns("a", "shop"), "10.201.2.2")).toBe(true);
    expect(await ping(cns("b", "blog"), "10.201.7.2")).toBe(true);
    // across stacks: routed, but refused by the filter, either way
    expect(await ping(cns("a", "shop"), "10.201.8.2")).toBe(false);
    expect(await ping(cns("b", "blog"), "10.201.1.2")).toBe(false);
    const again = await applyOverlay(overlayPlan(viewOf("a")), inNs(ns.a));
    expect(again).toEqual({ device: "kept", added: [], removed: [] });
    expect(await ping(cns("a", "shop"), "10.201.2.2")).toBe(true);
    type Link = { mtu: number; linkinfo: { info_data: { id: number; port: number; learning: boolean } } };
    const link = JSON.parse(await inNs(ns.a)(["ip", "-d", "-j", "link", "show", "dev", "corral.vx"])) as Link[];
    expect(link[0]).toMatchObject({ mtu: 1450, linkinfo: { info_data: { id: 4242, port: 4789, learning: false } } });
  });

  it("takes VXLAN packets from registered hosts only", async () => {
    const rules = await inNs(ns.a)(["iptables", "-S", "CORRAL-VXLAN"]);
    expect(rules).toContain("-A CORRAL-VXLAN -s 198.18.60.2/32 -j ACCEPT");
    expect(rules.trim().split("\n").at(-1)).toBe("-A CORRAL-VXLAN -j DROP");
    expect(await inNs(ns.a)(["iptables", "-S", "INPUT"])).toContain("-A INPUT -p udp -m udp --dport 4789 -j CORRAL-VXLAN");
    // hb no longer registered: its packets are refused, and nothing of its is routed
    const alone = await applyOverlay(overlayPlan({ me: hosts.a, peers: [hosts.a], stacks }), inNs(ns.a));
    expect(alone.removed.sort()).toEqual(["fdb 02:c0:0a:c7:3c:02 → 198.18.60.2", "neighbour 10.199.60.2", "route 10.201.2.0/24 via 10.199.60.2", "route 10.201.8.0/24 via 10.199.60.2"]);
    expect(await ping(cns("a", "shop"), "10.201.2.2")).toBe(false);
    expect(await inNs(ns.a)(["iptables", "-S", "CORRAL-VXLAN"])).not.toContain("198.18.60.2");
    // back
    await applyOverlay(overlayPlan(viewOf("a")), inNs(ns.a));
    expect(await ping(cns("a", "shop"), "10.201.2.2")).toBe(true);
  });

  it("a machine on the underlay that is not a registered host cannot put frames on the overlay, even knowing its VNI, MACs and subnets", async () => {
    // the intruder: its own link to ha (198.18.61.0/24), a VXLAN device of corral's VNI sending to ha, a route to shop's
    // subnet on ha through ha's VTEP, and packets from an address of shop's subnet on hb (which the forward filter admits)
    await sh("ip", "netns", "add", intruder);
    await sh("ip", "-n", ns.a, "link", "add", "u1", "type", "veth", "peer", "name", "u1", "netns", intruder);
    await sh("ip", "-n", ns.a, "addr", "add", "198.18.61.1/24", "dev", "u1");
    await sh("ip", "-n", ns.a, "link", "set", "u1", "up");
    const x = inNs(intruder);
    await x(["ip", "addr", "add", "198.18.61.3/24", "dev", "u1"]);
    await x(["ip", "link", "set", "u1", "up"]);
    await x(["ip", "link", "set", "lo", "up"]);
    const a = overlayPlan(viewOf("a")).device;
    await x(["ip", "link", "add", "corral.vx", "type", "vxlan", "id", String(a.vni), "local", "198.18.61.3", "dstport", String(a.port), "nolearning"]);
    await x(["ip", "link", "set", "corral.vx", "address", "02:c0:0a:c7:3c:02"]); // hb's VTEP MAC
    await x(["ip", "addr", "add", "10.201.2.99/32", "dev", "corral.vx"]);
    await x(["ip", "link", "set", "corral.vx", "up"]);
    await x(["bridge", "fdb", "append", a.mac, "dev", "corral.vx", "dst", "198.18.61.1"]);
    await x(["ip", "neigh", "add", a.address, "lladdr", a.mac, "dev", "corral.vx", "nud", "permanent"]);
    await x(["ip", "route", "add", "10.201.1.0/24", "via", a.address, "dev", "corral.vx", "onlink"]);
    // what reaches shop's container on ha: datagrams to a listener there
    const listen = () => {
      const server = `require("node:dgram").createSocket("udp4").on("message", (m) => process.stdout.write(m)).bind(9999, () => process.stdout.write("ready;"))`;
      const child = spawn("nsenter", [`--net=/var/run/netns/${cns("a", "shop")}`, process.execPath, "-e", server], { stdio: ["ignore", "pipe", "ignore"] });
      let got = "";
      child.stdout.on("data", (d: Buffer) => (got += d.toString()));
      return { got: () => got, stop: () => child.kill("SIGKILL") };
    };
    const inject = (text: string) => {
      const client = `const s = require("node:dgram").createSocket("udp4"); s.send(${JSON.stringify(text)}, 9999, "10.201.1.2", () => s.close())`;
      return x([process.execPath, "-e", client]);
    };
    const settle = () => new Promise((r) => setTimeout(r, 500));

    // the control: with the intruder's address admitted as a peer's would be, its datagrams do arrive (so the test can fail)
    await applyOverlay(overlayPlan({ ...viewOf("a"), peers: [hosts.a, hosts.b, { id: "hx", underlay: "198.18.61.3", vtep: "10.199.60.9" }] }), inNs(ns.a));
    const open = listen();
    await settle();
    await inject("let-in");
    await settle();
    open.stop();
    expect(open.got()).toBe("ready;let-in");

    // as registered: ha and hb only. The intruder's frames stop at ha's door
    await applyOverlay(overlayPlan(viewOf("a")), inNs(ns.a));
    const shut = listen();
    await settle();
    for (let i = 0; i < 3; i++) await inject(`kept-out-${i}`);
    await settle();
    shut.stop();
    expect(shut.got()).toBe("ready;");
    expect(await ping(cns("a", "shop"), "10.201.2.2")).toBe(true); // the registered peer still gets through
  });
});
