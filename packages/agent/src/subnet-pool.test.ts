import { describe, expect, it } from "vitest";
import { subnetPool } from "./subnet-pool.js";

describe("stack subnets", () => {
  it("cuts a pool into /24s", () => {
    const pool = subnetPool("10.200.0.0/14");
    expect(pool).toHaveLength(1024);
    expect(pool[0]).toBe("10.200.0.0/24");
    expect(pool[1]).toBe("10.200.1.0/24");
    expect(pool.at(-1)).toBe("10.203.255.0/24");
    expect(subnetPool("192.168.5.0/24")).toEqual(["192.168.5.0/24"]);
    expect(() => subnetPool("10.0.0.0/25")).toThrow("expected an IPv4 network of /24 or larger");
  });
});
