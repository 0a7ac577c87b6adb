import { z } from "zod";
import type { SecretMount, VolumeMount } from "../model.js";
import type { Collector } from "./issues.js";
import { byteSize, bytes, scalar } from "./values.js";

// ---- volumes --------------------------------------------------------------

const longVolume = z
  .object({
    type: z.enum(["bind", "volume", "tmpfs"]),
    source: z.string().optional(),
    target: z.string(),
    read_only: z.boolean().optional(),
    consistency: z.string().optional(),
    bind: z.object({ propagation: z.string().optional(), create_host_path: z.boolean().optional(), selinux: z.string().optional() }).strict().optional(),
    volume: z.object({ nocopy: z.boolean().optional() }).strict().optional(),
    tmpfs: z.object({ size: bytes.optional(), mode: z.number().optional() }).strict().optional(),
  })
  .strict();

const isPath = (s: string) => s.startsWith("/") || s.startsWith(".") || s.startsWith("~");

export function volumeMounts(c: Collector, value: unknown, path: string): VolumeMount[] {
  const list = c.check(z.array(z.unknown()), value, path) ?? [];
  const out: VolumeMount[] = [];
  list.forEach((entry, i) => {
    const at = `${path}.${i}`;
    if (typeof entry === "string") {
      const parts = entry.split(":");
      if (parts.length > 3 || parts.some((p) => p === "")) return c.fail(at, `invalid volume "${entry}" (examples: data:/var/lib/data, ./site:/www:ro)`);
      const [first, second, mode] = parts as [string, string | undefined, string | undefined];
      if (second === undefined) {
        out.push({ type: "volume", target: first, volume: {} });
        return;
      }
      const modes = (mode ?? "").split(",").filter(Boolean);
      for (const m of modes) if (!["ro", "rw", "z", "Z", "cached", "delegated", "consistent", "nocopy"].includes(m)) return c.fail(at, `unknown volume mode "${m}"`);
      const mount: VolumeMount = isPath(first) ? { type: "bind", source: first, target: second } : { type: "volume", source: first, target: second };
      if (modes.includes("ro")) mount.read_only = true;
      if (mount.type === "bind") mount.bind = {};
      else mount.volume = modes.includes("nocopy") ? { nocopy: true } : {};
      out.push(mount);
      return;
    }
    const v = c.check(longVolume, entry, at);
    if (!v) return;
    const mount: VolumeMount = { type: v.type, target: v.target };
    if (v.source !== undefined) mount.source = v.source;
    if (v.read_only !== undefined) mount.read_only = v.read_only;
    if (v.consistency !== undefined) mount.consistency = v.consistency;
    if (v.bind) mount.bind = { ...(v.bind.propagation ? { propagation: v.bind.propagation } : {}), ...(v.bind.create_host_path !== undefined ? { create_host_path: v.bind.create_host_path } : {}) };
    if (v.volume) mount.volume = v.volume;
    if (v.tmpfs) {
      const size = byteSize(c, v.tmpfs.size, `${at}.tmpfs.size`);
      mount.tmpfs = { ...(size !== undefined ? { size } : {}), ...(v.tmpfs.mode !== undefined ? { mode: v.tmpfs.mode } : {}) };
    }
    if (v.type !== "tmpfs" && !v.source && v.type === "bind") return c.fail(`${at}.source`, "is required for a bind mount");
    out.push(mount);
  });
  return out;
}

// ---- secrets --------------------------------------------------------------

const octal = z.union([z.number(), z.string()]);
const longSecret = z
  .object({ source: z.string(), target: z.string().optional(), uid: scalar.optional(), gid: scalar.optional(), mode: octal.optional() })
  .strict();

/** A YAML `0440` reads as octal 288 in YAML 1.1, or as decimal 440 in YAML 1.2: accept both, as Compose does. */
function fileMode(c: Collector, value: number | string | undefined, path: string): number | undefined {
  if (value === undefined) return undefined;
  const text = typeof value === "number" ? value.toString(10) : value;
  if (typeof value === "number" && !/[89]/.test(text) && value > 7 && value <= 777) return parseInt(text, 8);
  if (typeof value === "number") return value;
  if (/^0?[0-7]{1,4}$/.test(text)) return parseInt(text, 8);
  c.fail(path, `invalid file mode "${value}" (example: 0440)`);
  return undefined;
}

export function secretMounts(c: Collector, value: unknown, path: string): SecretMount[] {
  const list = c.check(z.array(z.unknown()), value, path) ?? [];
  const out: SecretMount[] = [];
  list.forEach((entry, i) => {
    const at = `${path}.${i}`;
    if (typeof entry === "string") return void out.push({ source: entry });
    const s = c.check(longSecret, entry, at);
    if (!s) return;
    const mount: SecretMount = { source: s.source };
    if (s.target) mount.target = s.target;
    for (const k of ["uid", "gid"] as const) {
      if (s[k] === undefined) continue;
      if (!/^\d+$/.test(String(s[k]))) c.fail(`${at}.${k}`, `must be a number, not "${s[k]}"`);
      else mount[k] = String(s[k]);
    }
    const mode = fileMode(c, s.mode, `${at}.mode`);
    if (mode !== undefined) mount.mode = mode;
    out.push(mount);
  });
  return out;
}
