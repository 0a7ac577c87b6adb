/**
 * `npm run bench`: every part in turn, one markdown table of all their rows
 * (operation × size × corral / direct / Swarm / compose: medians, min–max,
 * ratios, what each waits for), written to bench/results.json too.
 *
 *   npm run bench                  the full set
 *   npm run bench -- --quick       a small subset, a few runs (under 3 minutes)
 *   npm run bench -- --only up,health
 *
 * BENCH_RUNS overrides each part's run count; BENCH_SWARM=0 / BENCH_COMPOSE=0
 * leave those columns out. Run it alone on the machine (it times the engine).
 */
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { markdown, writeResults, type Row } from "./report.js";
import { docker, type BenchOptions, type BenchPart } from "./support.js";
import { digestsBench } from "./digests.bench.js";
import { fleetBench } from "./fleet.bench.js";
import { healthBench } from "./health.bench.js";
import { idleBench } from "./idle.bench.js";
import { scaleBench } from "./scale.bench.js";
import { startupBench } from "./startup.bench.js";
import { upBench } from "./up.bench.js";
import { upgradeBench } from "./upgrade.bench.js";

type Part = { name: string; quick: boolean; run: (o: BenchOptions) => Promise<BenchPart> };
/** In the order they run; `quick` ones make up --quick. */
const parts: Part[] = [
  { name: "startup", quick: true, run: startupBench },
  { name: "up", quick: true, run: upBench },
  { name: "upgrade", quick: true, run: upgradeBench },
  { name: "health", quick: true, run: healthBench },
  { name: "digests", quick: false, run: digestsBench },
  { name: "fleet", quick: false, run: fleetBench },
  { name: "scale", quick: false, run: scaleBench },
  { name: "idle", quick: false, run: idleBench },
];

const { values } = parseArgs({ options: { quick: { type: "boolean", default: false }, only: { type: "string" }, out: { type: "string" } } });
const only = values.only?.split(",").map((s) => s.trim());
const unknown = only?.filter((n) => !parts.some((p) => p.name === n)) ?? [];
if (unknown.length) {
  console.error(`bench: no part named ${unknown.join(", ")} (parts: ${parts.map((p) => p.name).join(", ")})`);
  process.exit(2);
}
const chosen = parts.filter((p) => (only ? only.includes(p.name) : !values.quick || p.quick));
const options: BenchOptions = { quick: values.quick };
const rows: Row[] = [];
const notes: string[] = [];
const out = values.out ?? fileURLToPath(new URL("./results.json", import.meta.url));
const started = Date.now();
for (const part of chosen) {
  const t0 = Date.now();
  process.stderr.write(`bench: ${part.name}...\n`);
  const result = await part.run(options);
  rows.push(...result.rows);
  notes.push(...result.notes.map((n) => `${part.name}: ${n}`));
  // written after each part: a part that fails later (or a run stopped) keeps what the others measured
  writeResults(out, rows);
  process.stderr.write(`bench: ${part.name} done in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
}
const version = await docker.version();
console.log(`\ncorral bench${values.quick ? " (quick)" : ""}: Docker ${version.Version}, Node ${process.version}, ${((Date.now() - started) / 1000).toFixed(0)} s; medians (min–max) in ms of interleaved runs\n`);
console.log(markdown(rows));
if (notes.length) console.log(`\n${notes.map((n) => `- ${n}`).join("\n")}`);
console.log(`\nrows written to ${out}`);
