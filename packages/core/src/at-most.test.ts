import { describe, expect, it } from "vitest";
import { eachAtMost } from "./at-most.js";

describe("eachAtMost", () => {
  it("calls fn once per item, never more than limit at once, and waits for every call", async () => {
    let running = 0;
    let most = 0;
    const seen: number[] = [];
    await eachAtMost([5, 1, 4, 2, 3, 0, 6], 3, async (ms, i) => {
      most = Math.max(most, ++running);
      await new Promise((r) => setTimeout(r, ms));
      seen.push(i);
      running--;
    });
    expect(most).toBe(3);
    expect(running).toBe(0);
    expect(seen.sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it("does nothing for no items, and takes a limit below 1 as 1", async () => {
    let calls = 0;
    await eachAtMost([], 4, async () => void calls++);
    expect(calls).toBe(0);
    let running = 0;
    await eachAtMost([1, 2], 0, async () => {
      expect(++running).toBe(1);
      await new Promise((r) => setTimeout(r, 1));
      running--;
    });
  });
});
