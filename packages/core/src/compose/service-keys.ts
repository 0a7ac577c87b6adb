import { z } from "zod";
import type { ServiceSpec } from "../model.js";
import { deploy, healthcheck } from "./deploy.js";
import type { Collector } from "./issues.js";
import { secretMounts, volumeMounts } from "./mounts.js";
import { ports } from "./ports.js";
import { byteSize, bytes, cpus, definedValues, duration, durationMs, mapOrList, scalar, stringList, stringOrList, toArgv, toMap } from "./values.js";

const restartPattern = /^(no|always|unless-stopped|on-failure(:\d+)?)$/;
const dependsOn = z.union([
  z.array(z.string()),
  z.record(
    z
      .object({
        condition: z.enum(["service_started", "service_healthy", "service_completed_successfully"]).default("service_started"),
        required: z.boolean().default(true),
        restart: z.boolean().optional(),
      })
      .strict(),
  ),
]);
const ulimits = z.record(z.union([z.number().int(), z.object({ soft: z.number().int(), hard: z.number().int() }).strict()]));
const logging = z.object({ driver: z.string().optional(), options: z.record(scalar.nullable()).optional() }).strict();
const serviceNetworks = z.union([z.array(z.string()), z.record(z.union([z.null(), z.object({ aliases: z.array(z.string()).optional() }).strict()]))]);

/** A path component of an image name (distribution's reference grammar): lowercase, separated by ., _, __ or dashes. */
const component = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
/** An image reference as Docker reads it: [REGISTRY[:PORT]/]PATH[:TAG][@ALGORITHM:DIGEST]. */
const imageReference = new RegExp(
  `^(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]+)?/)?${component}(?:/${component})*` +
    "(?::[\\w][\\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$",
);
const image = z
  .string()
  .regex(imageReference, "not an image reference: expected [registry/]name[:tag][@digest], the name in lowercase");
/** A user as Docker takes it: a name or uid, and optionally :GROUP or :GID. */
const user = z
  .union([z.string(), z.number().int()])
  .transform(String)
  .pipe(z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*(?::[A-Za-z0-9_][A-Za-z0-9_.-]*)?$/, "expected a user name or uid, optionally with :group or :gid"));

/** What to do with each service key: validate, normalize, set on the spec. */
export type KeyHandler = (c: Collector, spec: Partial<ServiceSpec>, value: unknown, path: string) => void;

const str = (key: keyof ServiceSpec): KeyHandler => (c, spec, value, path) => {
  const v = c.check(z.union([z.string(), z.number()]).transform(String), value, path);
  if (v !== undefined) (spec as Record<string, unknown>)[key] = v;
};
const bool = (key: keyof ServiceSpec): KeyHandler => (c, spec, value, path) => {
  const v = c.check(z.boolean(), value, path);
  if (v !== undefined) (spec as Record<string, unknown>)[key] = v;
};
const list = (key: keyof ServiceSpec, single = false): KeyHandler => (c, spec, value, path) => {
  const v = c.check(single ? z.union([z.string().transform((s) => [s]), stringList]) : stringList, value, path);
  if (v !== undefined) (spec as Record<string, unknown>)[key] = v;
};
const argv = (key: "command" | "entrypoint"): KeyHandler => (c, spec, value, path) => {
  const v = c.check(stringOrList, value, path);
  if (v === undefined) return;
  try {
    spec[key] = toArgv(v);
  } catch (e) {
    c.fail(path, (e as Error).message);
  }
};
const map = (key: "environment" | "labels" | "sysctls"): KeyHandler => (c, spec, value, path) => {
  const v = c.check(mapOrList, value, path);
  if (v === undefined) return;
  // an environment entry without a value takes the CLI's environment (resolved before the API) or stays unset;
  // a label without a value is an empty label
  const m = toMap(v);
  spec[key] = key === "environment" ? definedValues(m) : Object.fromEntries(Object.entries(m).map(([k, x]) => [k, x ?? ""]));
};

export const serviceKeys: Record<string, KeyHandler> = {
  image: (c, spec, value, path) => {
    const v = c.check(image, value, path);
    if (v !== undefined) spec.image = v;
  },
  build: (c, spec, value, path) => {
    const v = c.check(z.union([z.string().transform((context) => ({ context })), z.record(z.unknown())]), value, path);
    if (v) spec.build = v;
  },
  command: argv("command"),
  entrypoint: argv("entrypoint"),
  environment: map("environment"),
  labels: map("labels"),
  sysctls: map("sysctls"),
  ports: (c, spec, value, path) => void (spec.ports = ports(c, value, path)),
  expose: list("expose"),
  volumes: (c, spec, value, path) => void (spec.volumes = volumeMounts(c, value, path)),
  secrets: (c, spec, value, path) => void (spec.secrets = secretMounts(c, value, path)),
  cap_add: list("cap_add"),
  cap_drop: list("cap_drop"),
  user: (c, spec, value, path) => {
    const v = c.check(user, value, path);
    if (v !== undefined) spec.user = v;
  },
  group_add: list("group_add"),
  working_dir: str("working_dir"),
  healthcheck: (c, spec, value, path) => {
    const h = healthcheck(c, value, path);
    if (h) spec.healthcheck = h;
  },
  restart: (c, spec, value, path) => {
    const v = c.check(z.string(), value, path);
    if (v === undefined) return;
    if (!restartPattern.test(v)) return c.fail(path, `must be one of no, always, on-failure[:N], unless-stopped`);
    spec.restart = v;
  },
  stop_signal: str("stop_signal"),
  stop_grace_period: (c, spec, value, path) => {
    const ms = durationMs(c, c.check(duration, value, path), path);
    if (ms !== undefined) spec.stop_grace_period = ms;
  },
  read_only: bool("read_only"),
  tmpfs: list("tmpfs", true),
  ulimits: (c, spec, value, path) => {
    const v = c.check(ulimits, value, path);
    if (v) spec.ulimits = v;
  },
  mem_limit: (c, spec, value, path) => {
    const n = byteSize(c, c.check(bytes, value, path), path);
    if (n !== undefined) spec.mem_limit = n;
  },
  shm_size: (c, spec, value, path) => {
    const n = byteSize(c, c.check(bytes, value, path), path);
    if (n !== undefined) spec.shm_size = n;
  },
  cpus: (c, spec, value, path) => {
    const n = c.check(cpus.pipe(z.number().min(0)), value, path);
    if (n !== undefined) spec.cpus = n;
  },
  init: bool("init"),
  hostname: str("hostname"),
  dns: list("dns", true),
  extra_hosts: (c, spec, value, path) => {
    const v = c.check(z.union([z.record(z.string()), z.array(z.string())]), value, path);
    if (v === undefined) return;
    const pairs = Array.isArray(v) ? v.map((e) => e.replace(/^([^:=]+)[:=]/, "$1=")) : Object.entries(v).map(([h, ip]) => `${h}=${ip}`);
    const bad = pairs.find((p) => !/^[^=]+=.+$/.test(p));
    if (bad) return c.fail(path, `invalid host entry "${bad}" (example: somehost:162.242.195.82)`);
    spec.extra_hosts = pairs;
  },
  logging: (c, spec, value, path) => {
    const v = c.check(logging, value, path);
    if (v) spec.logging = { ...(v.driver ? { driver: v.driver } : {}), ...(v.options ? { options: definedValues(toMap(v.options)) } : {}) };
  },
  depends_on: (c, spec, value, path) => {
    const v = c.check(dependsOn, value, path);
    if (v === undefined) return;
    spec.depends_on = Array.isArray(v)
      ? Object.fromEntries(v.map((s) => [s, { condition: "service_started" as const, required: true }]))
      : Object.fromEntries(Object.entries(v).map(([s, d]) => [s, { condition: d.condition, required: d.required }]));
  },
  scale: (c, spec, value, path) => {
    const v = c.check(z.number().int().min(0), value, path);
    if (v !== undefined) spec.scale = v;
  },
  deploy: (c, spec, value, path) => {
    const d = deploy(c, value, path);
    if (d) spec.deploy = d;
  },
  retain_ip: bool("retain_ip"),
  privileged: bool("privileged"),
  network_mode: str("network_mode"),
  pid: str("pid"),
  ipc: str("ipc"),
  networks: (c, _spec, value, path) => {
    const v = c.check(serviceNetworks, value, path);
    if (v === undefined) return;
    const names = Array.isArray(v) ? v : Object.keys(v);
    for (const n of names) if (n !== "default") c.unknown(`${path}.${n}`, "a stack has one network, default");
    if (!Array.isArray(v)) {
      const aliases = (v.default as { aliases?: string[] } | null | undefined)?.aliases;
      if (aliases && aliases.length > 0) c.unknown(`${path}.default.aliases`, "services are reached by their name");
    }
  },
};
