import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import * as host from "./host.js";
import * as core from "./index.js";

// The agent imports core as `@corral/core/host` to stay small: what that module reaches, as a bundler sees it.
describe("core's host surface", () => {
  it("reaches no cron parser, luxon, YAML, compose parser or decider", async () => {
    const out = await build({ entryPoints: [fileURLToPath(new URL("./host.ts", import.meta.url))], bundle: true, platform: "node", format: "esm", write: false, metafile: true, logLevel: "silent" });
    const inputs = Object.keys(out.metafile.inputs);
    expect(inputs.some((i) => i.endsWith("core/src/model.ts"))).toBe(true);
    expect(inputs.filter((i) => /node_modules\/(cron-parser|luxon|yaml)\/|core\/src\/(cron|compose|view|policy)\b|core\/src\/decide\//.test(i))).toEqual([]);
  });

  it("is core's own: every value it exports is index.ts's", () => {
    for (const [name, value] of Object.entries(host)) expect((core as Record<string, unknown>)[name], name).toBe(value);
  });
});
