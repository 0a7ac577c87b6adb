import { describe, expect, it } from "vitest";
import { ago, hostLabelProblem, hostState, lastHeard, parseHostLabel } from "./hosts.js";

describe("host state", () => {
  it("is the admin's while heartbeats come, disconnected from the timeout on, whatever the admin set", () => {
    expect(hostState(undefined, 1000, 1000 + 29_999, 30_000)).toBe("active");
    expect(hostState("draining", 1000, 1000 + 29_999, 30_000)).toBe("draining");
    expect(hostState("inactive", 1000, 1000, 30_000)).toBe("inactive");
    expect(hostState("active", 1000, 1000 + 30_000, 30_000)).toBe("disconnected");
    expect(hostState("draining", 0, 10 ** 9, 30_000)).toBe("disconnected");
  });
});

describe("host labels", () => {
  it("take keys of a-z A-Z 0-9 . _ / - up to 63, values of up to 63 printable characters without spaces", () => {
    expect(hostLabelProblem("example.com/zone_1-a", "eu-west/1")).toBeUndefined();
    expect(hostLabelProblem("k".repeat(63), "v".repeat(63))).toBeUndefined();
    expect(hostLabelProblem("empty", "")).toBeUndefined();
    expect(hostLabelProblem("k".repeat(64), "v")).toMatch(/1 to 63/);
    expect(hostLabelProblem("", "v")).toMatch(/1 to 63/);
    expect(hostLabelProblem("zone", "v".repeat(64))).toMatch(/up to 63/);
    expect(hostLabelProblem("zone", "a b")).toMatch(/without spaces/);
    expect(hostLabelProblem("zone", "tab\there")).toMatch(/without spaces/);
    expect(hostLabelProblem("zone", "é")).toMatch(/printable/);
    expect(hostLabelProblem("k=v", "x")).toMatch(/1 to 63/);
  });
  it("refuse corral's own keys, in any case", () => {
    expect(hostLabelProblem("io.corral.stack", "x")).toMatch(/corral's own/);
    expect(hostLabelProblem("IO.Corral.slot", "x")).toMatch(/corral's own/);
    expect(hostLabelProblem("io.corralx", "x")).toBeUndefined();
  });
  it("parse KEY=VALUE at the first '='", () => {
    expect(parseHostLabel("zone=a=b")).toEqual({ key: "zone", value: "a=b" });
    expect(parseHostLabel("ssd=")).toEqual({ key: "ssd", value: "" });
    expect(parseHostLabel("zone")).toEqual({ problem: expect.stringMatching(/KEY=VALUE/) as unknown as string });
  });
});

describe("ago", () => {
  it("says how long ago, in the largest whole unit", () => {
    expect(ago(10_000, 13_400)).toBe("3s ago");
    expect(ago(0, 5)).toBe("never");
    expect(ago(1, 1 + 125_000)).toBe("2m ago");
    expect(ago(1, 1 + 7_200_000)).toBe("2h ago");
    expect(ago(1, 1 + 3 * 86_400_000)).toBe("3d ago");
    expect(ago(5000, 1000)).toBe("0s ago"); // a clock behind the server's
  });
});

describe("last heard", () => {
  it("is the last heartbeat, or the control plane's start when that came later", () => {
    expect(lastHeard(5000, undefined)).toBe(5000);
    expect(lastHeard(5000, 9000)).toBe(9000);
    expect(lastHeard(9500, 9000)).toBe(9500);
    // down for a minute: the host is heard of from the start on, and disconnected only a timeout after it
    expect(hostState("active", lastHeard(0, 60_000), 60_000 + 29_999, 30_000)).toBe("active");
    expect(hostState("active", lastHeard(0, 60_000), 60_000 + 30_000, 30_000)).toBe("disconnected");
  });
});
