/** Compose durations (`1m30s`, `10s`, `500ms`, `1h`) in milliseconds; undefined when malformed. */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === "number") return value * 1000; // a bare number is seconds
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * unit[m[2]!]!;
    consumed = re.lastIndex;
  }
  return consumed === text.length && text.length > 0 ? total : undefined;
}

/** Milliseconds as Go prints a time.Duration (`1m0s`, `10s`, `1.5s`, `500ms`): compose-go's canonical form. */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 1000) return `${ms}ms`;
  let rest = ms / 1000;
  const h = Math.floor(rest / 3600);
  rest -= h * 3600;
  const m = Math.floor(rest / 60);
  rest -= m * 60;
  const s = `${Number(rest.toFixed(3))}s`;
  if (h > 0) return `${h}h${m}m${s}`;
  if (m > 0) return `${m}m${s}`;
  return s;
}

/** Byte sizes (`50M`, `1g`, `512k`, `1024`, `20mb`) in bytes (binary multiples, as Docker reads them). */
export function parseBytes(value: string | number): number | undefined {
  if (typeof value === "number") return value;
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)b?$/i.exec(value.trim());
  if (!m) return undefined;
  const power = { "": 0, b: 0, k: 1, m: 2, g: 3, t: 4 }[m[2]!.toLowerCase() as "" | "b" | "k" | "m" | "g" | "t"];
  return Math.round(Number(m[1]) * 1024 ** power);
}
