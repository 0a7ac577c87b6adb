import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cliBin, repoRoot } from "./support.js";

// corral --help and --version are answered by bin/corral.js without loading the CLI (a file the build wrote,
// the package's version): they must read exactly as the CLI itself prints them (npm test builds first).
const run = (file: string, args: string[]) => execFileSync(process.execPath, [file, ...args], { encoding: "utf8" });
const bundle = join(repoRoot, "packages/cli/dist/corral.js");

describe("the answers bin/corral.js gives without loading the CLI", () => {
  it("--help and -h: the CLI's own help, byte for byte", () => {
    const live = run(bundle, ["--help"]);
    expect(live).toMatch(/^Usage: corral \[options\] \[command\]/);
    expect(run(cliBin, ["--help"])).toBe(live);
    expect(run(cliBin, ["-h"])).toBe(live);
  });

  it("--version and -V: the package's version, as the CLI prints it", () => {
    const { version } = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string };
    expect(run(bundle, ["--version"])).toBe(`${version}\n`);
    expect(run(cliBin, ["--version"])).toBe(`${version}\n`);
    expect(run(cliBin, ["-V"])).toBe(`${version}\n`);
  });

  it("anything else goes to the CLI: a verb's help, a typo", () => {
    expect(run(cliBin, ["ps", "--help"])).toMatch(/^Usage: corral ps/);
    expect(() => run(cliBin, ["--helpp"])).toThrow(/unknown option '--helpp'/);
  });
});

// What a verb loads, as the process sees it when it ends: the packages of every module in Node's module cache
// (the externals the bundle imports, @aws-sdk/*, dynalite, fauxqs, stay files of their own there).
describe("what each verb loads", () => {
  const probe = join(mkdtempSync(join(tmpdir(), "corral-loads-")), "probe.mjs");
  writeFileSync(
    probe,
    [
      'import { createRequire } from "node:module";',
      "const require = createRequire(import.meta.url);",
      "process.on('exit', () => {",
      "  const names = new Set(Object.keys(require.cache).flatMap((k) => { const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(k); return m ? [m[1]] : []; }));",
      "  process.stderr.write(`LOADED ${JSON.stringify([...names])}\\n`);",
      "});",
      "setTimeout(() => process.exit(0), 4000).unref();",
    ].join("\n"),
  );
  const loaded = (args: string[]) => {
    const r = spawnSync(process.execPath, [cliBin, ...args], { encoding: "utf8", timeout: 20_000, env: { ...process.env, NODE_OPTIONS: `--import=${probe}`, CORRAL_URL: "http://127.0.0.1:9", CORRAL_TOKEN: "t" } });
    const line = /LOADED (.*)/.exec(r.stderr)?.[1];
    if (!line) throw new Error(`no module list from corral ${args.join(" ")}: ${r.stderr}`);
    return JSON.parse(line) as string[];
  };
  const serverOnly = ["dynalite", "fauxqs", "@aws-sdk/client-dynamodb", "@aws-sdk/client-kms", "@hono/node-server"];
  // what dockerode loads at its top and corral never calls (see scripts/build.mjs: dockerodeOnDemand)
  const neverCalled = ["ssh2", "@grpc/grpc-js", "protobufjs"];

  it("a client verb (ps) loads no AWS SDK, no Docker client, no stand-in", () => {
    const got = loaded(["ps"]);
    for (const name of [...serverOnly, ...neverCalled, "@aws-sdk/client-sqs", "dockerode"]) expect(got, name).not.toContain(name);
  });

  it("nor the bundle's heavy chunks: corral's decider, zod, yaml, cron (a few helpers of core's may come along)", () => {
    // Node's ESM loader says each file it loads (NODE_DEBUG=esm); esbuild heads each module in a chunk with its path
    const r = spawnSync(process.execPath, [cliBin, "ps"], { encoding: "utf8", timeout: 20_000, env: { ...process.env, NODE_DEBUG: "esm", CORRAL_URL: "http://127.0.0.1:9", CORRAL_TOKEN: "t" } });
    const files = [...new Set([...r.stderr.matchAll(/Translating StandardModule file:\/\/(\S+)/g)].map((m) => m[1]!))];
    expect(files.some((f) => f.endsWith("dist/corral.js"))).toBe(true);
    for (const f of files) expect(readFileSync(f, "utf8"), f).not.toMatch(/^\/\/ (packages\/core\/src\/decide|node_modules\/(zod|yaml|cron-parser|luxon))\//m);
  });

  it("nor does the agent load the cron parser (luxon pages in ICU's data), the compose parser or the decider: core's host surface", () => {
    const r = spawnSync(process.execPath, [cliBin, "agent", "--join", "http://127.0.0.1:9", "--token", "t", "--state-dir", join(tmpdir(), `corral-loads-${process.pid}`)], {
      encoding: "utf8",
      timeout: 20_000,
      env: { ...process.env, NODE_OPTIONS: `--import=${probe}`, NODE_DEBUG: "esm", CORRAL_URL: "http://127.0.0.1:9", CORRAL_TOKEN: "t" },
    });
    const files = [...new Set([...r.stderr.matchAll(/Translating StandardModule file:\/\/(\S+)/g)].map((m) => m[1]!))];
    expect(files.some((f) => /dist\/chunks\//.test(f))).toBe(true);
    for (const f of files) expect(readFileSync(f, "utf8"), f).not.toMatch(/^\/\/ (packages\/core\/src\/(decide|compose)\/|node_modules\/(yaml|cron-parser|luxon)\/)/m);
  });

  it("the agent loads the queue's SDK client, and neither the stand-ins nor what dockerode never needs", () => {
    const got = loaded(["agent", "--join", "http://127.0.0.1:9", "--token", "t", "--state-dir", join(tmpdir(), `corral-loads-${process.pid}`)]);
    expect(got).toContain("@aws-sdk/client-sqs"); // the probe sees the externals
    for (const name of [...serverOnly, ...neverCalled]) expect(got, name).not.toContain(name);
  });
});

describe.skipIf(typeof (process as { execve?: unknown }).execve !== "function")("corral agent, a long-running daemon", () => {
  const probe = join(mkdtempSync(join(tmpdir(), "corral-flags-")), "probe.mjs");
  writeFileSync(probe, "process.stderr.write(`EXECARGV ${JSON.stringify(process.execArgv)}\\n`);\nsetTimeout(() => process.exit(0), 1500).unref();\n");
  const flagsOf = (nodeArgs: string[]) => {
    const args = [...nodeArgs, cliBin, "agent", "--join", "http://127.0.0.1:9", "--token", "t", "--state-dir", join(tmpdir(), `corral-flags-${process.pid}`)];
    const r = spawnSync(process.execPath, args, { encoding: "utf8", timeout: 20_000, env: { ...process.env, NODE_OPTIONS: `--import=${probe}`, CORRAL_AGENT_NODE_FLAGS_SET: "" } });
    return [...r.stderr.matchAll(/EXECARGV (.*)/g)].map((m) => JSON.parse(m[1]!) as string[]);
  };

  it("starts again once, in place, with a small young generation and no optimizing compilers", () => {
    expect(flagsOf([])).toEqual([[], ["--max-semi-space-size=1", "--no-opt", "--no-maglev"]]);
  });

  it("flags given to node by hand win: no second start", () => {
    expect(flagsOf(["--max-old-space-size=200"])).toEqual([["--max-old-space-size=200"]]);
  });
});
