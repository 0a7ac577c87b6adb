import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * The fault suite's profile: `npm run test:faults` runs the short one (CI's),
 * `npm run test:faults -- --full` the full one (scripts/faults.mjs sets
 * CORRAL_FAULTS_PROFILE). CORRAL_FUZZ_SEED repeats a fuzz run.
 */
export const full = process.env.CORRAL_FAULTS_PROFILE === "full";
export const fuzzSeed = Number(process.env.CORRAL_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
export const fuzzRuns = Number(process.env.CORRAL_FUZZ_RUNS ?? 1000);

/** One row of the table the suite prints at its end (and writes to test/faults/report.json). */
export interface FaultRow {
  fault: string;
  injected: number;
  converged: number;
  /** Seconds from the fault (or its end: the server answering again, the engine or the network back) to the end state the commands asked for. */
  seconds: number[];
  orphans: number;
  duplicates: number;
  lost: number;
}

export const reportPath = fileURLToPath(new URL("./report.json", import.meta.url));

/** Add a row to the report (each test file runs in its own worker, so the file is the meeting place). */
export function addRow(row: FaultRow): void {
  const rows: FaultRow[] = existsSync(reportPath) ? (JSON.parse(readFileSync(reportPath, "utf8")) as { rows: FaultRow[] }).rows : [];
  const at = rows.findIndex((r) => r.fault === row.fault);
  if (at >= 0) rows[at] = row;
  else rows.push(row);
  writeFileSync(reportPath, `${JSON.stringify({ profile: full ? "full" : "short", rows }, null, 2)}\n`);
}

/** A fuzz property as a row: every input was a fault injected, every 4xx one converged (nothing written). */
export function record(fault: string, runs: number, ms: number): void {
  addRow({ fault, injected: runs, converged: runs, seconds: [ms / 1000], orphans: 0, duplicates: 0, lost: 0 });
}
