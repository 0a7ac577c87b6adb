import { describe, expect, it } from "vitest";
import { probePlan, probeUntilHealthy, ProbeSlots, type ProbePlan } from "./health-probe.js";

const s = 1e9; // a second in the engine's nanoseconds

describe("probePlan: the agent's own first probes of a health check", () => {
  it("runs CMD as written and CMD-SHELL through the container's shell (else /bin/sh -c), as the engine does", () => {
    expect(probePlan({ Test: ["CMD", "wget", "-q", "http://127.0.0.1/"], Interval: s })?.cmd).toEqual(["wget", "-q", "http://127.0.0.1/"]);
    expect(probePlan({ Test: ["CMD-SHELL", "curl -f localhost || exit 1"] })?.cmd).toEqual(["/bin/sh", "-c", "curl -f localhost || exit 1"]);
    expect(probePlan({ Test: ["CMD-SHELL", "true"] }, ["/bin/ash", "-eo", "pipefail", "-c"])?.cmd).toEqual(["/bin/ash", "-eo", "pipefail", "-c", "true"]);
  });

  it("none for no check, NONE, or an empty command", () => {
    expect(probePlan(undefined)).toBeUndefined();
    expect(probePlan({})).toBeUndefined();
    expect(probePlan({ Test: ["NONE"] })).toBeUndefined();
    expect(probePlan({ Test: ["CMD"] })).toBeUndefined();
    expect(probePlan({ Test: ["CMD", ""] })).toBeUndefined();
  });

  it("probes every start_interval when written, else a fifth of the interval between 100 ms and 1 s, until the engine's first probe", () => {
    expect(probePlan({ Test: ["CMD", "true"], Interval: s, Timeout: 2 * s })).toMatchObject({ everyMs: 200, untilMs: 1_000, timeoutMs: 2_000 });
    expect(probePlan({ Test: ["CMD", "true"], Interval: 0.2 * s })).toMatchObject({ everyMs: 100, untilMs: 200 });
    expect(probePlan({ Test: ["CMD", "true"] })).toMatchObject({ everyMs: 1_000, untilMs: 30_000, timeoutMs: 30_000 }); // Docker's defaults
    expect(probePlan({ Test: ["CMD", "true"], Interval: 10 * s, StartPeriod: 5 * s, StartInterval: 0.5 * s })).toMatchObject({ everyMs: 500, untilMs: 15_000 });
  });
});

describe("probeUntilHealthy", () => {
  const plan: ProbePlan = { cmd: ["true"], everyMs: 200, untilMs: 1_000, timeoutMs: 1_000 };
  const clocked = () => {
    let now = 0;
    return { clock: () => now, sleep: async (ms: number) => void (now += ms) };
  };

  it("healthy at the first probe that passes; a failing or throwing probe counts for nothing", async () => {
    const { clock, sleep } = clocked();
    const answers = [false, "throw", false, true];
    let probes = 0;
    const probe = async () => {
      const a = answers[probes++];
      if (a === "throw") throw new Error("exec failed");
      return a === true;
    };
    expect(await probeUntilHealthy(plan, probe, () => false, clock, sleep)).toBe(true);
    expect(probes).toBe(4);
    expect(clock()).toBe(600);
  });

  it("gives up when the window closes (the engine's verdict decides, after its retries)", async () => {
    const { clock, sleep } = clocked();
    let probes = 0;
    expect(await probeUntilHealthy(plan, async () => (probes++, false), () => false, clock, sleep)).toBe(false);
    expect(probes).toBe(5); // at 0, 200, 400, 600, 800 ms
  });

  it("stops as soon as the engine has spoken, and a probe passing after that does not count", async () => {
    const { clock, sleep } = clocked();
    let settled = false;
    let probes = 0;
    expect(await probeUntilHealthy(plan, async () => (probes++, (settled = true), true), () => settled, clock, sleep)).toBe(false);
    expect(probes).toBe(1);
  });
});

describe("ProbeSlots", () => {
  it("runs at most its limit at once, the rest in turn", async () => {
    const slots = new ProbeSlots(2);
    let running = 0;
    let peak = 0;
    const job = () =>
      slots.run(async () => {
        peak = Math.max(peak, ++running);
        await new Promise((r) => setTimeout(r, 5));
        running--;
        return true;
      });
    expect(await Promise.all(Array.from({ length: 7 }, job))).toEqual(Array(7).fill(true));
    expect(peak).toBe(2);
    expect(running).toBe(0);
  });

  it("a job that throws frees its slot", async () => {
    const slots = new ProbeSlots(1);
    await expect(slots.run(async () => Promise.reject(new Error("no")))).rejects.toThrow("no");
    expect(await slots.run(async () => 1)).toBe(1);
  });
});
