import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { formatPortList, mergeRanges, parsePortList, reservePortRange } from "./reserved-ports.js";

const fileWith = (text: string) => {
  const file = join(mkdtempSync(join(tmpdir(), "corral-sysctl-")), "ip_local_reserved_ports");
  writeFileSync(file, text);
  return file;
};
const logger = () => {
  const lines: string[] = [];
  return { lines, log: { info: (m: string) => lines.push(`info ${m}`), warn: (m: string) => lines.push(`warn ${m}`), error: (m: string) => lines.push(`error ${m}`) } };
};

describe("the kernel's reserved ports list", () => {
  it("reads ports and ranges, merges what overlaps or touches, writes it back normalized", () => {
    expect(parsePortList("8080,60000-60010\n")).toEqual([[8080, 8080], [60000, 60010]]);
    expect(parsePortList("\n")).toEqual([]);
    expect(formatPortList(mergeRanges([[60011, 60020], [8080, 8080], [60000, 60010], [8081, 8081], [60005, 60006]]))).toBe("8080-8081,60000-60020");
    expect(() => parsePortList("80,x")).toThrow('not a port or a range of ports: "x"');
    expect(() => parsePortList("90-80")).toThrow();
  });

  it("adds the range to what is there, keeping the rest, and logs it once at info", async () => {
    const file = fileWith("8080,60040-60070\n");
    const { lines, log } = logger();
    expect(await reservePortRange([60000, 60050], { file, log })).toEqual({ kind: "reserved", value: "8080,60000-60070" });
    expect(readFileSync(file, "utf8")).toBe("8080,60000-60070\n");
    expect(lines).toEqual(["info reserved the host port range against ephemeral ports"]);
    expect(await reservePortRange([60000, 60050], { file, log })).toEqual({ kind: "already", value: "8080,60000-60070" });
  });

  it("an empty list gets the range", async () => {
    const file = fileWith("\n");
    expect(await reservePortRange([60000, 60050], { file })).toEqual({ kind: "reserved", value: "60000-60050" });
    expect(readFileSync(file, "utf8")).toBe("60000-60050\n");
  });

  it("where it may not write, warns with the command that would, and changes nothing", async () => {
    const file = fileWith("8080\n");
    chmodSync(file, 0o444);
    const { lines, log } = logger();
    // root writes a read-only file anyway, but not a read-only sysctl (one that reads as a port list: "40")
    const target = process.getuid?.() === 0 ? "/proc/sys/kernel/cap_last_cap" : file;
    const text = readFileSync(target, "utf8");
    const outcome = await reservePortRange([60000, 60050], { file: target, log });
    expect(outcome.kind).toBe("refused");
    if (outcome.kind === "refused") expect(outcome.command).toBe(`sysctl -w net.ipv4.ip_local_reserved_ports=${text.trim()},60000-60050`);
    expect(readFileSync(target, "utf8")).toBe(text);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^warn cannot reserve the host port range 60000-60050 against ephemeral ports: .* run as root: sysctl -w net\.ipv4\.ip_local_reserved_ports=/);
  });
});
