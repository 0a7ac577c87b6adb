import { describe, expect, it } from "vitest";
import { hostAddressesOf, inSubnet, ipv4ToNumber, numberToIpv4, octets, parseCidr, subnetsOf } from "./ipv4.js";

describe("IPv4 addresses and networks", () => {
  it("reads and writes addresses, refusing anything else", () => {
    expect(ipv4ToNumber("10.200.3.7")).toBe(0x0ac80307);
    expect(numberToIpv4(0xffffffff)).toBe("255.255.255.255");
    expect(octets("10.127.0.9")).toEqual([10, 127, 0, 9]);
    for (const bad of ["10.0.0.256", "10.0.0", "::1", "10.0.0.1 ", "a.b.c.d"]) expect(() => ipv4ToNumber(bad)).toThrow(`not an IPv4 address: ${bad}`);
    for (const bad of ["10.0.0.0/33", "10.0.0.0", "10.0.0.0/8/8", "10.0.0.0/x"]) expect(() => parseCidr(bad)).toThrow();
    expect(parseCidr("10.1.2.3/16")).toEqual({ base: ipv4ToNumber("10.1.0.0"), bits: 16 });
  });

  it("says whether an address is in a network", () => {
    expect(inSubnet("10.201.1.7", "10.201.1.0/24")).toBe(true);
    expect(inSubnet("10.201.2.7", "10.201.1.0/24")).toBe(false);
    expect(inSubnet("10.201.1.255", "10.201.1.0/24")).toBe(true);
    expect(inSubnet("10.0.0.1", "0.0.0.0/0")).toBe(true);
    expect(inSubnet("10.201.1.7", "10.201.1.7/32")).toBe(true);
    expect(inSubnet("10.201.1.8", "10.201.1.7/32")).toBe(false);
    expect(inSubnet("::ffff:10.201.1.7", "10.201.1.0/24")).toBe(false);
  });

  it("cuts pools into subnets and host addresses", () => {
    const pool = subnetsOf("10.200.0.0/14", 24);
    expect(pool).toHaveLength(1024);
    expect([pool[0], pool[1], pool.at(-1)]).toEqual(["10.200.0.0/24", "10.200.1.0/24", "10.203.255.0/24"]);
    expect(subnetsOf("192.168.5.0/24", 24)).toEqual(["192.168.5.0/24"]);
    expect(() => subnetsOf("10.0.0.0/25", 24)).toThrow("10.0.0.0/25 is smaller than a /24");
    expect(hostAddressesOf("10.127.0.0/30")).toEqual(["10.127.0.1", "10.127.0.2"]);
    expect(hostAddressesOf("10.127.0.0/16")).toHaveLength(65534);
  });
});
