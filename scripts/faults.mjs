#!/usr/bin/env node
// `npm run test:faults [-- --full] [-- FILE...]`: the fault-injection, fuzz and soak suite (test/faults/).
// The short profile is CI's; --full runs the long one. At the end it prints the table the test files wrote
// to test/faults/report.json: fault, times injected, converged, seconds to converge, orphans, duplicates, lost.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const report = `${root}test/faults/report.json`;
const args = process.argv.slice(2);
const full = args.includes("--full");
const files = args.filter((a) => a !== "--full");

rmSync(report, { force: true });
const run = spawnSync(process.execPath, [`${root}scripts/node22.mjs`, `${root}node_modules/vitest/vitest.mjs`, "run", "--project", "faults", ...files], {
  cwd: root,
  stdio: "inherit",
  env: { ...process.env, CORRAL_FAULTS_PROFILE: full ? "full" : "short" },
});

if (existsSync(report)) {
  const { profile, rows } = JSON.parse(readFileSync(report, "utf8"));
  const median = (xs) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] : NaN);
  const table = rows.map((r) => ({
    fault: r.fault,
    injected: r.injected,
    converged: `${r.converged}/${r.injected}`,
    "median s": median(r.seconds).toFixed(2),
    "max s": Math.max(...r.seconds).toFixed(2),
    orphans: r.orphans,
    duplicates: r.duplicates,
    lost: r.lost,
  }));
  console.log(`\nfault suite, ${profile} profile (test/faults/report.json):`);
  console.table(table);
}
process.exit(run.status ?? 1);
