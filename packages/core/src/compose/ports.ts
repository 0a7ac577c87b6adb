import { isIP, isIPv6 } from "node:net";
import { z } from "zod";
import type { PortSpec } from "../model.js";
import { ComposeError, type Collector } from "./issues.js";

/** A short port entry is at most this long: `[ffff:...:ffff]:65535-65535:65535-65535/sctp` fits. */
const maxPortText = 64;
const portNumber = /^\d{1,5}(?:-\d{1,5})?$/;

function range(text: string): [number, number] {
  const [a, b] = text.split("-").map(Number);
  return [a!, b ?? a!];
}

/**
 * The parts of a short port entry, `[IP:][PUBLISHED]:TARGET[/PROTOCOL]`, read
 * from the right by position (no regular expression that could backtrack):
 * the target after the last colon, the published port after the one before,
 * and the address is what is left (`[::1]`, `127.0.0.1`, `fe80::1`).
 */
function portParts(text: string): { ip?: string; published?: string; target: string; protocol?: string } | undefined {
  const slash = text.indexOf("/");
  const protocol = slash < 0 ? undefined : text.slice(slash + 1);
  if (protocol !== undefined && !["tcp", "udp", "sctp"].includes(protocol)) return undefined;
  const body = slash < 0 ? text : text.slice(0, slash);
  const last = body.lastIndexOf(":");
  const target = body.slice(last + 1);
  if (!portNumber.test(target)) return undefined;
  if (last < 0) return { target, ...(protocol ? { protocol } : {}) };
  const head = body.slice(0, last);
  let ip: string | undefined;
  let published: string;
  if (head.startsWith("[")) {
    const close = head.indexOf("]");
    if (close < 0 || head[close + 1] !== ":") return undefined;
    ip = head.slice(1, close);
    published = head.slice(close + 2);
    if (!isIPv6(ip)) return undefined;
  } else {
    const sep = head.lastIndexOf(":");
    published = head.slice(sep + 1);
    if (sep >= 0) ip = head.slice(0, sep);
    if (ip !== undefined && isIP(ip) === 0) return undefined;
  }
  if (published !== "" && !portNumber.test(published)) return undefined;
  return { target, ...(ip ? { ip } : {}), ...(published ? { published } : {}), ...(protocol ? { protocol } : {}) };
}

/** The widest range one entry may expand to. */
const maxPortRange = 1000;

/** Short port syntax, ranges expanded: `80`, `8080:80`, `127.0.0.1:8080:80`, `127.0.0.1::80`, `9090-9091:8080-8081`, `53/udp`. */
export function parsePorts(entry: string | number, file: string, path: string): PortSpec[] {
  const text = String(entry);
  const shown = text.length > 40 ? `${text.slice(0, 40)}...` : text;
  if (text.length > maxPortText) throw new ComposeError(file, path, `invalid port "${shown}" (at most ${maxPortText} characters; examples: 80, 8080:80, 127.0.0.1:8080:80/udp)`);
  const groups = portParts(text);
  if (!groups) throw new ComposeError(file, path, `invalid port "${shown}" (examples: 80, 8080:80, 127.0.0.1:8080:80/udp)`);
  const [t0, t1] = range(groups.target);
  const pub = groups.published ? range(groups.published) : undefined;
  if (t1 < t0 || (pub && pub[1] < pub[0])) throw new ComposeError(file, path, `port range "${text}" runs backwards`);
  if (t1 - t0 >= maxPortRange) throw new ComposeError(file, path, `port range "${text}" is wider than ${maxPortRange} ports`);
  if (pub && pub[1] - pub[0] !== t1 - t0 && pub[0] !== pub[1]) {
    throw new ComposeError(file, path, `port ranges "${text}" differ in length`);
  }
  const out: PortSpec[] = [];
  for (let i = 0; i <= t1 - t0; i++) {
    const target = t0 + i;
    const published = pub ? (pub[0] === pub[1] && t1 > t0 ? undefined : pub[0] + i) : undefined;
    for (const n of [target, published]) {
      if (n !== undefined && (n < 1 || n > 65535)) throw new ComposeError(file, path, `port ${n} out of range 1-65535`);
    }
    const port: PortSpec = { target, protocol: (groups.protocol as PortSpec["protocol"]) ?? "tcp" };
    if (published !== undefined) port.published = published;
    if (groups.ip) port.host_ip = groups.ip.replace(/^\[|\]$/g, "");
    out.push(port);
  }
  return out;
}

/** Kept for callers that parse one short entry. */
export const parsePort = (entry: string | number, file: string, path: string): PortSpec => parsePorts(entry, file, path)[0]!;

const longPort = z
  .object({
    target: z.union([z.number(), z.string()]).transform(Number),
    published: z.union([z.number(), z.string()]).optional(),
    host_ip: z.string().optional(),
    protocol: z.enum(["tcp", "udp", "sctp"]).optional(),
    mode: z.enum(["ingress", "host"]).optional(),
    name: z.string().optional(),
    app_protocol: z.string().optional(),
  })
  .strict();

/** A service's ports, short and long entries, each problem recorded at its index; the same port twice is kept once. */
export function ports(c: Collector, value: unknown, path: string): PortSpec[] {
  const list = c.check(z.array(z.unknown()), value, path) ?? [];
  const out: PortSpec[] = [];
  list.forEach((entry, i) => {
    const at = `${path}.${i}`;
    if (typeof entry === "string" || typeof entry === "number") {
      try {
        out.push(...parsePorts(entry, c.fileOf(path), at));
      } catch (e) {
        if (e instanceof ComposeError) c.issues.push(...e.issues);
        else throw e;
      }
      return;
    }
    const p = c.check(longPort, entry, at);
    if (!p) return;
    const port: PortSpec = { target: p.target, protocol: p.protocol ?? "tcp" };
    if (p.published !== undefined) {
      const published = Number(p.published);
      if (!Number.isInteger(published)) return c.fail(`${at}.published`, `invalid port "${p.published}"`);
      port.published = published;
    }
    if (p.host_ip) port.host_ip = p.host_ip;
    if (p.mode) port.mode = p.mode;
    out.push(port);
  });
  const seen = new Set<string>();
  return out.filter((p) => {
    const key = `${p.host_ip ?? ""}:${p.published ?? ""}:${p.target}/${p.protocol}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
