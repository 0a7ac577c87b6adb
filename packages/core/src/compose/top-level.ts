import { z } from "zod";
import type { SecretSpec, VolumeSpec } from "../model.js";
import { isRecord, type Collector } from "./issues.js";
import { reservedLabels } from "./service.js";
import { definedValues, mapOrList, scalar, toMap } from "./values.js";

const externalFlag = z.union([z.boolean(), z.object({ name: z.string() }).strict()]);
const rawVolume = z
  .object({ name: z.string().optional(), driver: z.string().optional(), driver_opts: z.record(scalar).optional(), external: externalFlag.optional(), labels: mapOrList.optional() })
  .strict();
const rawSecret = z
  .object({ name: z.string().optional(), file: z.string().optional(), external: externalFlag.optional(), environment: z.string().optional(), labels: mapOrList.optional() })
  .strict();

export function topVolumes(c: Collector, value: unknown): Record<string, VolumeSpec> {
  const out: Record<string, VolumeSpec> = {};
  const entries = c.check(z.record(z.unknown()), value ?? {}, "volumes") ?? {};
  for (const [name, raw] of Object.entries(entries)) {
    const path = `volumes.${name}`;
    const v = c.check(rawVolume, raw === null ? {} : withoutExtensions(raw), path);
    if (!v) continue;
    const spec: VolumeSpec = { ...extensionsOf(raw) };
    if (v.name) spec.name = v.name;
    if (v.driver) spec.driver = v.driver;
    if (v.driver_opts) spec.driver_opts = Object.fromEntries(Object.entries(v.driver_opts).map(([k, x]) => [k, String(x)]));
    if (v.external) {
      spec.external = true;
      if (typeof v.external === "object") spec.name = v.external.name;
    }
    if (v.labels) spec.labels = definedValues(toMap(v.labels));
    reservedLabels(c, spec.labels, `${path}.labels`);
    out[name] = spec;
  }
  return out;
}

export function topSecrets(c: Collector, value: unknown): Record<string, SecretSpec> {
  const out: Record<string, SecretSpec> = {};
  const entries = c.check(z.record(z.unknown()), value ?? {}, "secrets") ?? {};
  for (const [name, raw] of Object.entries(entries)) {
    const path = `secrets.${name}`;
    const s = c.check(rawSecret, raw === null ? {} : withoutExtensions(raw), path);
    if (!s) continue;
    if (s.labels) c.unknown(`${path}.labels`);
    const spec: SecretSpec = { ...extensionsOf(raw) };
    if (s.name) spec.name = s.name;
    if (s.file) spec.file = s.file;
    if (s.environment) spec.environment = s.environment;
    if (s.external) {
      spec.external = true;
      if (typeof s.external === "object") spec.name = s.external.name;
    }
    if (!spec.file && !spec.external && !spec.environment) c.fail(path, "needs file:, environment: or external: true");
    out[name] = spec;
  }
  return out;
}

/** A stack has one network, default, with nothing to set: any other, or any key of it, is not supported. */
export function topNetworks(c: Collector, value: unknown) {
  if (!isRecord(value)) return;
  for (const [name, raw] of Object.entries(value)) {
    if (name !== "default") c.unknown(`networks.${name}`, "a stack has one network, default");
    else if (raw !== null && !(isRecord(raw) && Object.keys(raw).length === 0)) c.unknown(`networks.default.${Object.keys(raw as object)[0] ?? ""}`);
  }
}

function extensionsOf(value: unknown): { extensions?: Record<string, unknown> } {
  const ext = isRecord(value) ? Object.fromEntries(Object.entries(value).filter(([k]) => k.startsWith("x-"))) : {};
  return Object.keys(ext).length > 0 ? { extensions: ext } : {};
}

function withoutExtensions(value: unknown): unknown {
  return isRecord(value) ? Object.fromEntries(Object.entries(value).filter(([k]) => !k.startsWith("x-"))) : value;
}
