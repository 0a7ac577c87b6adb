import type { PortSpec, SecretMount, VolumeMount } from "../model.js";

// Docker's flag syntax for ports, mounts, secrets and KEY=VALUE pairs, read into corral's model

/** `k=v,k2=v2` (Docker's --mount, --secret and long --publish): the fields, by key; a bare word is a flag set to "true". */
function fields(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of text.split(",")) {
    const eq = part.indexOf("=");
    const key = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (key) out.set(key, eq < 0 ? "true" : part.slice(eq + 1).trim());
  }
  return out;
}

const portNumber = (text: string | undefined) => (text !== undefined && /^\d{1,5}$/.test(text) && Number(text) >= 1 && Number(text) <= 65535 ? Number(text) : undefined);

/** `8080:80`, `80`, `8080:80/udp`, or `published=8080,target=80,protocol=udp,mode=host`; ingress unless it says host, as Docker's. */
export function parsePublish(text: string): PortSpec | string {
  if (text.includes("=")) {
    const f = fields(text);
    const unknown = [...f.keys()].filter((k) => !["published", "target", "protocol", "mode"].includes(k));
    if (unknown.length) return `unknown field ${unknown[0]} (published, target, protocol, mode)`;
    const target = portNumber(f.get("target"));
    if (target === undefined) return "target: a port 1-65535 is required";
    const published = f.has("published") ? portNumber(f.get("published")) : undefined;
    if (f.has("published") && published === undefined) return `published: "${f.get("published")}" is not a port 1-65535`;
    const protocol = f.get("protocol") ?? "tcp";
    if (protocol !== "tcp" && protocol !== "udp" && protocol !== "sctp") return `protocol: "${protocol}" is not tcp, udp or sctp`;
    const mode = f.get("mode");
    if (mode !== undefined && mode !== "ingress" && mode !== "host") return `mode: "${mode}" is not ingress or host`;
    return { target, protocol, ...(published !== undefined ? { published } : {}), mode: mode ?? "ingress" };
  }
  const m = /^(?:(\d+):)?(\d+)(?:\/(tcp|udp|sctp))?$/.exec(text);
  if (!m) return `"${text}" is not PUBLISHED:TARGET[/PROTOCOL] or TARGET[/PROTOCOL]`;
  const target = portNumber(m[2]);
  const published = m[1] !== undefined ? portNumber(m[1]) : undefined;
  if (target === undefined || (m[1] !== undefined && published === undefined)) return `"${text}": ports are 1-65535`;
  // Docker's default for a service: ingress (corral's routing mesh: the replicas share the host port)
  return { target, protocol: (m[3] ?? "tcp") as PortSpec["protocol"], ...(published !== undefined ? { published } : {}), mode: "ingress" };
}

/** `type=volume,source=v,target=/data[,readonly]` (src, dst, destination, ro as Docker takes them). */
export function parseMount(text: string): VolumeMount | string {
  const f = fields(text);
  const known = ["type", "source", "src", "target", "dst", "destination", "readonly", "ro", "tmpfs-size", "tmpfs-mode", "volume-nocopy"];
  const unknown = [...f.keys()].filter((k) => !known.includes(k));
  if (unknown.length) return `unknown field ${unknown[0]} (type, source, target, readonly, tmpfs-size, tmpfs-mode, volume-nocopy)`;
  const type = f.get("type") ?? "volume";
  if (type !== "volume" && type !== "bind" && type !== "tmpfs") return `type: "${type}" is not volume, bind or tmpfs`;
  const target = f.get("target") ?? f.get("dst") ?? f.get("destination");
  if (!target || !target.startsWith("/")) return "target: an absolute path in the container is required";
  const source = f.get("source") ?? f.get("src");
  if (type !== "tmpfs" && !source) return `source: a ${type === "bind" ? "host path" : "volume name"} is required`;
  if (type === "tmpfs" && source) return "source: a tmpfs mount has none";
  const ro = f.get("readonly") ?? f.get("ro");
  if (ro !== undefined && !["true", "false", "1", "0"].includes(ro)) return `readonly: "${ro}" is not true or false`;
  const mount: VolumeMount = { type, target, ...(source ? { source } : {}) };
  if (ro === "true" || ro === "1") mount.read_only = true;
  if (type === "tmpfs" && (f.has("tmpfs-size") || f.has("tmpfs-mode"))) {
    const size = f.has("tmpfs-size") ? Number(f.get("tmpfs-size")) : undefined;
    const mode = f.has("tmpfs-mode") ? Number.parseInt(f.get("tmpfs-mode")!, 8) : undefined;
    if (size !== undefined && !(Number.isInteger(size) && size > 0)) return `tmpfs-size: "${f.get("tmpfs-size")}" is not a number of bytes`;
    if (mode !== undefined && !(Number.isInteger(mode) && mode >= 0 && mode <= 0o7777)) return `tmpfs-mode: "${f.get("tmpfs-mode")}" is not an octal mode`;
    mount.tmpfs = { ...(size !== undefined ? { size } : {}), ...(mode !== undefined ? { mode } : {}) };
  }
  if (f.get("volume-nocopy") === "true") mount.volume = { nocopy: true };
  return mount;
}

/** `NAME` or `source=NAME,target=T,uid=U,gid=G,mode=0440`. */
export function parseSecret(text: string): SecretMount | string {
  if (!text.includes("=")) return { source: text };
  const f = fields(text);
  const unknown = [...f.keys()].filter((k) => !["source", "src", "target", "uid", "gid", "mode"].includes(k));
  if (unknown.length) return `unknown field ${unknown[0]} (source, target, uid, gid, mode)`;
  const source = f.get("source") ?? f.get("src");
  if (!source) return "source: the secret's name is required";
  const mode = f.has("mode") ? Number.parseInt(f.get("mode")!, 8) : undefined;
  if (mode !== undefined && !(Number.isInteger(mode) && mode >= 0 && mode <= 0o777)) return `mode: "${f.get("mode")}" is not an octal mode`;
  for (const id of ["uid", "gid"] as const) if (f.has(id) && !/^\d{1,10}$/.test(f.get(id)!)) return `${id}: "${f.get(id)}" is not a number`;
  return {
    source,
    ...(f.get("target") ? { target: f.get("target")! } : {}),
    ...(f.has("uid") ? { uid: f.get("uid")! } : {}),
    ...(f.has("gid") ? { gid: f.get("gid")! } : {}),
    ...(mode !== undefined ? { mode } : {}),
  };
}

/** `K=V` (env, labels); a removal names the key alone. */
export function keyValue(text: string): [string, string] | undefined {
  const eq = text.indexOf("=");
  if (eq <= 0) return undefined;
  return [text.slice(0, eq), text.slice(eq + 1)];
}
