/**
 * The one table `npm run bench` prints and the rows it writes to
 * bench/results.json: each operation at each size, what it waits for, and the
 * median (with min–max) of corral and of each tool a user could pick instead,
 * measured side by side in the same run.
 */
import { writeFileSync } from "node:fs";
import { markdownTable } from "markdown-table";

export const TOOLS = ["corral", "direct", "swarm", "compose"] as const;
export type Tool = (typeof TOOLS)[number];
export type Samples = Partial<Record<Tool, number[]>>;

/** One row of bench/results.json: medians in ms, null where a column was not measured. */
export interface Row {
  operation: string;
  size: string;
  waits_for: string;
  corral_ms: number | null;
  direct_ms: number | null;
  swarm_ms: number | null;
  compose_ms: number | null;
  /** the fewest samples any measured column has */
  runs: number;
  /** min and max of each measured column */
  range: Partial<Record<Tool, [number, number]>>;
  /** what a column means when it is not the obvious (e.g. "direct: node -e 0") */
  note?: string;
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const round = (ms: number) => Math.round(ms * 10) / 10;

export function row(operation: string, size: string | number, waitsFor: string, samples: Samples, note?: string): Row {
  const measured = TOOLS.filter((t) => samples[t]?.length);
  const stat = (t: Tool) => (samples[t]?.length ? round(median(samples[t]!)) : null);
  return {
    operation,
    size: String(size),
    waits_for: waitsFor,
    corral_ms: stat("corral"),
    direct_ms: stat("direct"),
    swarm_ms: stat("swarm"),
    compose_ms: stat("compose"),
    runs: measured.length ? Math.min(...measured.map((t) => samples[t]!.length)) : 0,
    range: Object.fromEntries(measured.map((t) => [t, [round(Math.min(...samples[t]!)), round(Math.max(...samples[t]!))]])),
    ...(note ? { note } : {}),
  };
}

/** Collects samples by key, so a bench can add as it goes and make rows at the end. */
export class Timings {
  private readonly samples = new Map<string, Samples>();
  add(key: string, tool: Tool, ms: number) {
    const s = this.samples.get(key) ?? {};
    (s[tool] ??= []).push(ms);
    this.samples.set(key, s);
  }
  get(key: string): Samples {
    return this.samples.get(key) ?? {};
  }
}

const ms = (v: number | null, range?: [number, number]) => {
  if (v === null) return "–";
  const f = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
  return range && range[0] !== range[1] ? `${f(v)} (${f(range[0])}–${f(range[1])})` : f(v);
};
const ratio = (a: number | null, b: number | null) => (a === null || b === null || b === 0 ? "–" : `${(a / b).toFixed(2)}×`);

/** The markdown table: medians (min–max), corral's ratio to each other column, and what each row waits for. */
export function markdown(rows: Row[]): string {
  return markdownTable(
    [
      ["operation", "size", "corral ms", "direct ms", "Swarm ms", "compose ms", "corral/direct", "corral/Swarm", "corral/compose", "runs", "waits for"],
      ...rows.map((r) => [
        r.operation,
        r.size,
        ms(r.corral_ms, r.range.corral),
        ms(r.direct_ms, r.range.direct),
        ms(r.swarm_ms, r.range.swarm),
        ms(r.compose_ms, r.range.compose),
        ratio(r.corral_ms, r.direct_ms),
        ratio(r.corral_ms, r.swarm_ms),
        ratio(r.corral_ms, r.compose_ms),
        String(r.runs),
        r.note ? `${r.waits_for} (${r.note})` : r.waits_for,
      ]),
    ],
    { align: ["l", "l", "r", "r", "r", "r", "r", "r", "r", "r", "l"] },
  );
}

/** bench/results.json: the rows, as an array (what the run measured on is in the table's heading). */
export function writeResults(file: string, rows: Row[]) {
  writeFileSync(file, `${JSON.stringify(rows, null, 2)}\n`);
}
