import { describe, expect, it } from "vitest";
import { Demuxer, subnetPool } from "./runtime.js";

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

describe("Docker's multiplexed output", () => {
  it("splits frames into stdout and stderr, across chunk boundaries", () => {
    const frame = (type: number, text: string) => {
      const body = Buffer.from(text);
      const head = Buffer.alloc(8);
      head[0] = type;
      head.writeUInt32BE(body.length, 4);
      return Buffer.concat([head, body]);
    };
    const seen: string[] = [];
    const d = new Demuxer((stream, data) => seen.push(`${stream}:${data.toString()}`));
    const all = Buffer.concat([frame(1, "out\n"), frame(2, "err\n"), frame(1, "more")]);
    d.write(all.subarray(0, 5));
    d.write(all.subarray(5, 15));
    d.write(all.subarray(15));
    expect(seen).toEqual(["stdout:out\n", "stderr:err\n", "stdout:more"]);
  });
});
