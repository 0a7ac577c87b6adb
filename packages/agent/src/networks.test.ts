import { describe, expect, it } from "vitest";
import { inSubnet } from "./networks.js";

describe("inSubnet", () => {
  it("says whether an address is in a subnet", () => {
    expect(inSubnet("10.201.1.7", "10.201.1.0/24")).toBe(true);
    expect(inSubnet("10.201.2.7", "10.201.1.0/24")).toBe(false);
    expect(inSubnet("10.201.1.255", "10.201.1.0/24")).toBe(true);
    expect(inSubnet("10.0.0.1", "0.0.0.0/0")).toBe(true);
    expect(inSubnet("10.201.1.7", "10.201.1.7/32")).toBe(true);
    expect(inSubnet("10.201.1.8", "10.201.1.7/32")).toBe(false);
    expect(inSubnet("::ffff:10.201.1.7", "10.201.1.0/24")).toBe(false);
  });
});
