import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { namingOps, newOpId } from "./op-ids.js";

// Operation ids: made up outside a naming scope; inside one, the same seed names the same operations, in order.
describe("operation ids", () => {
  it("the same seed under the same key names the same operations, one after another; another seed or key, others", async () => {
    const key = randomBytes(32);
    const names = (k: Buffer, seed: string) => namingOps(k, seed, async () => [newOpId(), await Promise.resolve().then(newOpId)]);
    const first = await names(key, "ci\ndeploy-42");
    expect(first[0]).toMatch(/^op-[0-9a-f]{14}$/);
    expect(first[1]).not.toBe(first[0]);
    expect(await names(key, "ci\ndeploy-42")).toEqual(first); // a crash, and the same request (or queued deploy) again
    expect(await names(key, "ci\ndeploy-43")).not.toEqual(first);
    expect(await names(randomBytes(32), "ci\ndeploy-42")).not.toEqual(first);
  });

  it("outside a scope, and in two scopes side by side, each keeps its own", async () => {
    const a = newOpId();
    expect(a).toMatch(/^op-[0-9a-z]+$/);
    expect(newOpId()).not.toBe(a);
    const key = randomBytes(32);
    const [x, y] = await Promise.all([namingOps(key, "x", async () => newOpId()), namingOps(key, "y", async () => newOpId())]);
    expect(x).toBe(await namingOps(key, "x", async () => newOpId()));
    expect(y).not.toBe(x);
  });
});
