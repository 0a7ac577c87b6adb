/**
 * `npm run bench` (and `npx tsx bench/startup.bench.ts` alone): how long a
 * `corral` command takes from the shell, start-up included, beside Node's
 * own start (`node -e 0`) on the same machine in the same run, interleaved,
 * several runs each; medians and the ratio to Node's. The built CLI
 * (`npm run build`, what bin/corral.js runs) and, for the record, the
 * TypeScript sources through tsx. `ps` asks a server started here, with
 * no agent (its answer is an empty list).
 */
import { execFile } from "node:child_process";
import { cpSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "@corral/local";
import { median } from "./support.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 9);
const root = fileURLToPath(new URL("..", import.meta.url));
const bin = join(root, "packages/cli/bin/corral.js");
const sources = join(root, "packages/cli/src/bin.ts");
const tsx = join(root, "node_modules/tsx/dist/cli.mjs");

const run = (args: string[], env: Record<string, string> = {}) =>
  new Promise<number>((resolve, reject) => {
    const started = process.hrtime.bigint();
    execFile(process.execPath, args, { env: { ...process.env, ...env } }, (error) => {
      if (error) return reject(error);
      resolve(Number(process.hrtime.bigint() - started) / 1e6);
    });
  });

// as installed (npm pack, npm install -g): the package's bin, dist and package.json, and no sources, so no check for
// sources newer than the build (the checkout's bin/corral.js walks them first, a cost a user's install never has)
const installed = mkdtempSync(join(tmpdir(), "corral-bench-installed-"));
for (const part of ["bin", "dist", "package.json"]) cpSync(join(root, "packages/cli", part), join(installed, part), { recursive: true });
const installedBin = join(installed, "bin/corral.js");

const server = await startServer({ port: 0, dataDir: mkdtempSync(join(tmpdir(), "corral-bench-startup-")), hostId: "bench", agent: false });
const env = { CORRAL_URL: server.url, CORRAL_TOKEN: server.token };
const cases: Array<[string, string[], Record<string, string>?]> = [
  ["node -e 0", ["-e", "0"]],
  ["corral --help (installed)", [installedBin, "--help"]],
  ["corral --version (installed)", [installedBin, "--version"]],
  ["corral ps --help (installed)", [installedBin, "ps", "--help"]],
  ["corral ps (installed)", [installedBin, "ps"], env],
  ["corral --help (checkout, built)", [bin, "--help"]],
  ["corral ps (checkout, built)", [bin, "ps"], env],
  ["corral --help (sources, tsx)", [tsx, sources, "--help"]],
];
const times = new Map(cases.map(([name]) => [name, [] as number[]]));
try {
  for (let i = 0; i < RUNS; i++) for (const [name, args, e] of cases) times.get(name)!.push(await run(args, e));
} finally {
  await server.stop();
}
const node = median(times.get("node -e 0")!);
console.log(`\nCLI start-up, median of ${RUNS} runs, interleaved (wall time):`);
console.table(cases.map(([name]) => ({ command: name, "median ms": Math.round(median(times.get(name)!)), "× node -e 0": (median(times.get(name)!) / node).toFixed(2) })));
