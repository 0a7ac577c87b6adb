import type { NetworkInterfaceInfo } from "node:os";
import { describe, expect, it } from "vitest";
import { hostAddress, overlayUnavailable } from "./process.js";

const nic = (address: string, internal = false, family: "IPv4" | "IPv6" = "IPv4") => ({ address, internal, family, netmask: "", mac: "", cidr: null }) as NetworkInterfaceInfo;
const interfaces = { lo: [nic("127.0.0.1", true)], eth0: [nic("fe80::1", false, "IPv6"), nic("10.1.2.3")], eth1: [nic("10.9.9.9")] };

describe("the address a host's published ports answer on", () => {
  it("is the engine's own IP when it is reached over the network", () => {
    expect(hostAddress("tcp://192.0.2.7:2375", interfaces)).toBe("192.0.2.7");
    expect(hostAddress("https://[2001:db8::5]:2376", interfaces)).toBe("2001:db8::5");
  });
  it("else this machine's first non-loopback IPv4 address (a socket, a name, a loopback engine)", () => {
    expect(hostAddress(undefined, interfaces)).toBe("10.1.2.3");
    expect(hostAddress("unix:///var/run/docker.sock", interfaces)).toBe("10.1.2.3");
    expect(hostAddress("tcp://docker.example:2375", interfaces)).toBe("10.1.2.3");
    expect(hostAddress("tcp://127.0.0.1:2375", interfaces)).toBe("10.1.2.3");
  });
  it("is loopback on a machine with no other address", () => {
    expect(hostAddress(undefined, { lo: [nic("127.0.0.1", true)] })).toBe("127.0.0.1");
  });
});

describe("overlayUnavailable: whether --overlay auto makes the stack networks span hosts here", () => {
  const root = process.getuid?.() === 0;
  it.skipIf(!root)("yes as root with ip and iptables, for an address of this machine's; else it says why", async () => {
    expect(await overlayUnavailable("127.0.0.1")).toBeUndefined();
    expect(await overlayUnavailable("198.18.250.250")).toBe("the host's address 198.18.250.250 is not one of this machine's (VXLAN packets come to it)");
    const noIptables = async (argv: string[]) => {
      if (argv[0] === "iptables") throw new Error("iptables: not found");
      return "";
    };
    expect(await overlayUnavailable("127.0.0.1", noIptables)).toBe("iptables is not installed");
  });
});
