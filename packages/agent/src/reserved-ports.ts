import { readFile, writeFile } from "node:fs/promises";
import type { Logger } from "@corral/core";

/** Linux's list of ports the kernel never hands out as ephemeral (source) ports. */
export const reservedPortsFile = "/proc/sys/net/ipv4/ip_local_reserved_ports";

export type PortRange = [number, number];

/**
 * `ip_local_reserved_ports` as the kernel writes it: a comma list of ports
 * and ranges (`8080,60000-60050`), maybe empty. Throws on anything else.
 */
export function parsePortList(text: string): PortRange[] {
  const out: PortRange[] = [];
  for (const part of text.trim().split(",")) {
    const item = part.trim();
    if (item === "") continue;
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(item);
    const [a, b] = m ? [Number(m[1]), Number(m[2] ?? m[1])] : [NaN, NaN];
    if (!m || a > b || b > 65535) throw new Error(`not a port or a range of ports: "${item}"`);
    out.push([a, b]);
  }
  return out;
}

/** Ranges sorted and merged where they overlap or touch. */
export function mergeRanges(ranges: PortRange[]): PortRange[] {
  const sorted = [...ranges].sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  const out: PortRange[] = [];
  for (const [a, b] of sorted) {
    const last = out.at(-1);
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

export const formatPortList = (ranges: PortRange[]): string => ranges.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(",");

const covers = (ranges: PortRange[], [a, b]: PortRange) => ranges.some(([x, y]) => x <= a && b <= y);

export type ReserveOutcome =
  | { kind: "reserved"; value: string }
  | { kind: "already"; value: string }
  | { kind: "refused"; command: string; reason: string }
  | { kind: "unsupported"; reason: string };

/**
 * Reserve the site's port range against the kernel's ephemeral ports: the
 * policy's default range (60000-60050) lies inside Linux's 32768-60999, so an
 * outgoing connection may hold a published port for a moment and make a
 * container's start fail with "address already in use". What is reserved
 * already stays: the range is merged into the list, written back
 * normalized. Where this process may not write the file (not root, a
 * read-only /proc), it says the command that would; it logs once, at start.
 */
export async function reservePortRange(range: PortRange, { file = reservedPortsFile, log }: { file?: string; log?: Logger } = {}): Promise<ReserveOutcome> {
  const shown = formatPortList([range]);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    const reason = `cannot read ${file}: ${(e as Error).message}`;
    log?.info("published ports are not reserved against ephemeral ports", { range: shown, reason });
    return { kind: "unsupported", reason };
  }
  let current: PortRange[];
  try {
    current = mergeRanges(parsePortList(text));
  } catch (e) {
    const reason = `${file}: ${(e as Error).message}`;
    (log?.warn ?? log?.error)?.call(log, `cannot reserve the host port range ${shown} against ephemeral ports: ${reason}`, { file });
    return { kind: "unsupported", reason };
  }
  if (covers(current, range)) {
    const value = formatPortList(current);
    log?.info("host port range already reserved against ephemeral ports", { range: shown, file, value });
    return { kind: "already", value };
  }
  const value = formatPortList(mergeRanges([...current, range]));
  try {
    await writeFile(file, `${value}\n`);
  } catch (e) {
    const command = `sysctl -w net.ipv4.ip_local_reserved_ports=${value}`;
    const reason = (e as Error).message;
    const warn = log?.warn ?? log?.error;
    warn?.call(log, `cannot reserve the host port range ${shown} against ephemeral ports: an outgoing connection may take a published port; run as root: ${command}`, { file, reason });
    return { kind: "refused", command, reason };
  }
  log?.info("reserved the host port range against ephemeral ports", { range: shown, file, value });
  return { kind: "reserved", value };
}
