/**
 * A CreateSpec in the Docker Engine API's words: the body of
 * POST /containers/create. Pure, so that what a container is made with is
 * tested without an engine; the dockerode adapter only sends it.
 */

import type { Healthcheck } from "@corral/core";
import type { CreateSpec, MountRequest } from "./runtime.js";

/** Drop the keys whose value is undefined: the engine takes a missing key as its default. */
export const compact = <T extends Record<string, unknown>>(o: T): Partial<T> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

/** `on-failure:3` → {Name: on-failure, MaximumRetryCount: 3}; `no` → no policy. */
export function restartPolicy(restart: string): { Name: string; MaximumRetryCount?: number } {
  const [name, count] = restart.split(":");
  if (name === "no") return { Name: "" };
  return count ? { Name: name!, MaximumRetryCount: Number(count) } : { Name: name! };
}

/** A mount as the engine takes it (HostConfig.Mounts). */
export interface EngineMount {
  Type: MountRequest["type"];
  Source?: string;
  Target: string;
  ReadOnly?: boolean;
  TmpfsOptions?: { SizeBytes?: number; Mode?: number };
  VolumeOptions?: { NoCopy: boolean };
  BindOptions?: { Propagation: string };
}

/** Published ports as the engine takes them: every port (and every `expose`) exposed, the published ones bound. */
function portsOf(spec: CreateSpec) {
  const exposed: Record<string, object> = {};
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const p of spec.ports) {
    const key = `${p.target}/${p.protocol}`;
    exposed[key] = {};
    (bindings[key] ??= []).push({ HostIp: p.host_ip ?? "", HostPort: p.published === undefined ? "" : String(p.published) });
  }
  for (const e of spec.expose ?? []) exposed[e.includes("/") ? e : `${e}/tcp`] = {};
  return { exposed, bindings };
}

/** A health check in the engine's words: durations in nanoseconds, a disabled check as ["NONE"]. */
function healthcheckOf(h: Healthcheck) {
  const ns = (ms: number | undefined) => (ms === undefined ? undefined : Math.round(ms * 1_000_000));
  return h.disable
    ? { Test: ["NONE"] }
    : compact({ Test: h.test, Interval: ns(h.interval), Timeout: ns(h.timeout), Retries: h.retries, StartPeriod: ns(h.start_period), StartInterval: ns(h.start_interval) });
}

function mountOf(m: MountRequest): EngineMount {
  return compact({
    Type: m.type,
    Source: m.source,
    Target: m.target,
    ReadOnly: m.readOnly,
    ...(m.type === "tmpfs" ? { TmpfsOptions: compact({ SizeBytes: m.tmpfsSize, Mode: m.tmpfsMode }) } : {}),
    ...(m.type === "volume" && m.noCopy ? { VolumeOptions: { NoCopy: true } } : {}),
    ...(m.type === "bind" && m.propagation ? { BindOptions: { Propagation: m.propagation } } : {}),
  }) as EngineMount;
}

/** The engine's create body for a CreateSpec. A network_mode other than the default replaces the stack network (no endpoint config then). */
export function dockerCreateOptions(spec: CreateSpec) {
  const { exposed, bindings } = portsOf(spec);
  const healthcheck = spec.healthcheck ? healthcheckOf(spec.healthcheck) : undefined;
  const mounts = (spec.mounts ?? []).map(mountOf);
  const network = spec.networkMode && spec.networkMode !== "default" && spec.networkMode !== "bridge" ? spec.networkMode : spec.network;
  const endpoint = { Aliases: spec.aliases, ...(spec.ipv4Address ? { IPAMConfig: { IPv4Address: spec.ipv4Address } } : {}) };
  return {
    name: spec.name,
    Image: spec.image,
    ...(spec.command ? { Cmd: spec.command } : {}),
    ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}),
    Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
    Labels: spec.labels,
    ...(spec.user ? { User: spec.user } : {}),
    ...(spec.workingDir ? { WorkingDir: spec.workingDir } : {}),
    ExposedPorts: exposed,
    ...compact({ Healthcheck: healthcheck, StopSignal: spec.stopSignal, StopTimeout: spec.stopGraceMs === undefined ? undefined : Math.ceil(spec.stopGraceMs / 1000), Hostname: spec.hostname }),
    HostConfig: {
      PortBindings: bindings,
      CapAdd: spec.capAdd,
      CapDrop: spec.capDrop,
      NetworkMode: network,
      ...(spec.restart ? { RestartPolicy: restartPolicy(spec.restart) } : {}),
      ...compact({
        Mounts: mounts.length ? mounts : undefined,
        ReadonlyRootfs: spec.readOnly,
        Tmpfs: spec.tmpfs ? Object.fromEntries(spec.tmpfs.map((t) => [t.split(":")[0]!, t.split(":")[1] ?? ""])) : undefined,
        Ulimits: spec.ulimits ? Object.entries(spec.ulimits).map(([Name, v]) => (typeof v === "number" ? { Name, Soft: v, Hard: v } : { Name, Soft: v.soft, Hard: v.hard })) : undefined,
        Memory: spec.memory,
        MemoryReservation: spec.memoryReservation,
        PidsLimit: spec.pidsLimit,
        NanoCpus: spec.nanoCpus,
        ShmSize: spec.shmSize,
        Sysctls: spec.sysctls,
        Init: spec.init,
        Dns: spec.dns,
        ExtraHosts: spec.extraHosts?.map((e) => e.replace("=", ":")),
        LogConfig: spec.logging ? { Type: spec.logging.driver ?? "json-file", Config: spec.logging.options ?? {} } : undefined,
        GroupAdd: spec.groupAdd,
        Privileged: spec.privileged,
      }),
    },
    ...(network === spec.network ? { NetworkingConfig: { EndpointsConfig: { [spec.network]: endpoint } } } : {}),
  };
}
