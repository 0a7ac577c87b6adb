import { z } from "zod";
import { parseBytes } from "../units.js";

/** A byte size as the policy file writes it (`10m`, `1g`, 1048576), in bytes. */
const byteSize = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const n = parseBytes(v);
  if (n === undefined || n <= 0) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `invalid size "${v}" (examples: 10m, 1g)` });
  return n ?? 0;
});

const range = (text: string): [number, number] => {
  const [a, b] = text.split("-").map(Number);
  return [a!, b ?? a!];
};

/** Numeric ids: `1000`, `1000-65535`, or a list of those. */
const idRange = z
  .union([z.number().int().min(0), z.string().regex(/^\d{1,10}(-\d{1,10})?$/, "an id or a range, like 1000 or 1000-65535")])
  .transform((v): [number, number] => (typeof v === "number" ? [v, v] : range(v)))
  .refine(([a, b]) => a <= b, "a range runs from low to high");
const idRanges = z.union([idRange.transform((r) => [r]), z.array(idRange).min(1)]);
/** The uids and gids a caller's bind-mounting service may run as: one set of ranges for both, or each its own. */
const idRule = z.union([
  idRanges.transform((r) => ({ uids: r, gids: r })),
  z
    .object({ uids: idRanges, gids: idRanges.optional() })
    .strict()
    .transform((o) => ({ uids: o.uids, gids: o.gids ?? o.uids })),
]);
export type IdRule = z.output<typeof idRule>;

/** Options an NFS volume may add to `addr=` in `o=`: none of them makes a bind mount, a remount or a setuid file. */
export const safeNfsOptions = [
  "vers", "nfsvers", "proto", "port", "rsize", "wsize", "timeo", "retrans", "hard", "soft", "ro", "rw", "noatime", "nodiratime", "relatime",
  "nolock", "noacl", "actimeo", "acregmin", "acregmax", "acdirmin", "acdirmax", "nosuid", "nodev", "noexec", "sec", "lookupcache", "nconnect",
  "tcp", "udp", "intr", "nointr", "sync", "async",
];

/** The site's rules (Spin's defaults), from `corral server --policy FILE`. */
export const sitePolicySchema = z
  .object({
    /** Allowed image registries; unset: any. */
    registries: z.array(z.string()).optional(),
    /**
     * Registries (HOST or HOST:PORT) the control plane asks for image
     * digests over plain HTTP, as Docker's insecure-registries; and the only
     * ones on a loopback, link-local or private address it asks at all.
     */
    insecureRegistries: z.array(z.string().max(255)).max(100).default([]),
    /** Host paths under which bind mounts are allowed. */
    bindRoots: z.array(z.string()).default([]),
    /**
     * The numeric user (and groups) a service with bind mounts may run as,
     * by the caller's user name, else `default`: what a user may read and
     * write on the host. Root (0) only where a rule names it.
     */
    bindIds: z.object({ default: idRule.default("1000-65535"), users: z.record(idRule).default({}) }).strict().default({}),
    capAdd: z.array(z.string()).default(["CHOWN", "SETGID", "SETUID", "DAC_OVERRIDE", "NET_BIND_SERVICE", "FOWNER", "KILL", "SETPCAP"]),
    portRange: z
      .union([z.string().regex(/^\d+-\d+$/), z.tuple([z.number().int(), z.number().int()]), z.object({ from: z.number().int(), to: z.number().int() })])
      .transform((v): [number, number] => (typeof v === "string" ? (v.split("-").map(Number) as [number, number]) : Array.isArray(v) ? v : [v.from, v.to]))
      .refine(([a, b]) => a >= 1 && a <= b && b <= 65535, "a range of ports from low to high, within 1-65535 (like 60000-60050)")
      .default("60000-60050"),
    publicPorts: z.array(z.number().int()).default([]),
    environment: z.string().default("sandbox"),
    domain: z.string().default("localhost"),
    /** Containers per service (compose scale, deploy.replicas, rancher scale, `corral scale`). */
    maxScale: z.number().int().min(1).default(100),
    /**
     * Volume drivers a volume may name. `local` takes no driver_opts but an
     * NFS mount to a server in `nfsServers`; any other driver listed is a
     * plugin the site installed and vouches for, options and all.
     */
    volumeDrivers: z.array(z.string()).default(["local"]),
    /** NFS servers (as written in `addr=`) a volume may mount; none by default. */
    nfsServers: z.array(z.string()).default([]),
    /** Options an NFS volume may set in `o=` besides `addr=`. */
    nfsOptions: z.array(z.string()).default(safeNfsOptions),
    /** Logging drivers a service may choose; the first is used when it chooses none. */
    loggingDrivers: z.array(z.string()).min(1).default(["json-file", "local", "none"]),
    /** json-file and local logs: the largest max-size and max-file, also applied when a service sets none. */
    logMaxSize: byteSize.default("10m"),
    logMaxFiles: z.number().int().min(1).default(3),
    /** Processes per container: applied when a service sets no limits.pids, and the most it may set. */
    defaultPidsLimit: z.number().int().min(1).default(1024),
    maxPidsLimit: z.number().int().min(1).default(32768),
    /** Memory per container: applied when a service sets none (maxMemory if only that is set), and the most it may set. */
    defaultMemory: byteSize.optional(),
    maxMemory: byteSize.optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.defaultPidsLimit > p.maxPidsLimit) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["defaultPidsLimit"], message: "is above maxPidsLimit" });
    if (p.defaultMemory && p.maxMemory && p.defaultMemory > p.maxMemory) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["defaultMemory"], message: "is above maxMemory" });
  });
export type SitePolicy = z.output<typeof sitePolicySchema>;

export const defaultPolicy: SitePolicy = sitePolicySchema.parse({});
