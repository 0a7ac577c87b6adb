import { formatDuration } from "./units.js";
import type { Healthcheck, PortSpec, Project, ServiceSpec, UpdateConfig, VolumeMount, VolumeSpec } from "./model.js";

const sortKeys = <T>(m: Record<string, T>): Record<string, T> => Object.fromEntries(Object.entries(m).sort(([a], [b]) => (a < b ? -1 : 1)));
const compact = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

function portText(p: PortSpec): string | Record<string, unknown> {
  if (p.mode) return compact({ target: p.target, published: p.published, host_ip: p.host_ip, protocol: p.protocol, mode: p.mode });
  const ip = p.host_ip ? `${p.host_ip.includes(":") ? `[${p.host_ip}]` : p.host_ip}:` : "";
  const published = p.published !== undefined ? `${p.published}:` : ip ? ":" : "";
  return `${ip}${published}${p.target}/${p.protocol}`;
}

function volumeEntry(v: VolumeMount): Record<string, unknown> {
  return compact({
    type: v.type,
    source: v.source,
    target: v.target,
    read_only: v.read_only,
    consistency: v.consistency,
    bind: v.bind,
    volume: v.volume,
    tmpfs: v.tmpfs,
  });
}

const durations = <K extends string>(o: Partial<Record<K, unknown>>, keys: K[]) => {
  const out: Record<string, unknown> = { ...o };
  for (const k of keys) if (typeof out[k] === "number") out[k] = formatDuration(out[k] as number);
  return out;
};

const healthEntry = (h: Healthcheck) => (h.disable ? { disable: true } : durations(h, ["interval", "timeout", "start_period", "start_interval"]));
const updateEntry = (u: UpdateConfig) => durations(u, ["delay", "monitor"]);

function serviceEntry(s: ServiceSpec): Record<string, unknown> {
  const deploy = s.deploy
    ? compact({
        ...s.deploy,
        update_config: s.deploy.update_config ? updateEntry(s.deploy.update_config) : undefined,
        rollback_config: s.deploy.rollback_config ? updateEntry(s.deploy.rollback_config) : undefined,
        restart_policy: s.deploy.restart_policy ? durations(s.deploy.restart_policy, ["delay", "window"]) : undefined,
      })
    : undefined;
  return compact({
    image: s.image || undefined,
    build: s.build,
    command: s.command,
    entrypoint: s.entrypoint,
    environment: Object.keys(s.environment).length ? sortKeys(s.environment) : undefined,
    labels: Object.keys(s.labels).length ? sortKeys(s.labels) : undefined,
    ports: s.ports.length ? s.ports.map(portText) : undefined,
    expose: s.expose,
    volumes: s.volumes?.map(volumeEntry),
    secrets: s.secrets?.map((m) => compact({ ...m, mode: m.mode === undefined ? undefined : `0${m.mode.toString(8)}` })),
    cap_add: s.cap_add.length ? s.cap_add : undefined,
    cap_drop: s.cap_drop.length ? s.cap_drop : undefined,
    user: s.user,
    group_add: s.group_add,
    working_dir: s.working_dir,
    healthcheck: s.healthcheck ? healthEntry(s.healthcheck) : undefined,
    restart: s.restart,
    stop_signal: s.stop_signal,
    stop_grace_period: s.stop_grace_period === undefined ? undefined : formatDuration(s.stop_grace_period),
    read_only: s.read_only,
    tmpfs: s.tmpfs,
    ulimits: s.ulimits,
    mem_limit: s.mem_limit,
    cpus: s.cpus,
    shm_size: s.shm_size,
    sysctls: s.sysctls,
    init: s.init,
    hostname: s.hostname,
    dns: s.dns,
    extra_hosts: s.extra_hosts,
    logging: s.logging,
    depends_on: s.depends_on,
    deploy: deploy && Object.keys(deploy).length ? deploy : undefined,
    privileged: s.privileged,
    network_mode: s.network_mode,
    pid: s.pid,
    ipc: s.ipc,
    ...(s.extensions ?? {}),
  });
}

/**
 * A top-level volume as its file would declare it: without corral's own
 * io.corral.* labels (a file may not set them), and an external volume
 * without the driver and options corral looked up for it ('volume create').
 */
function topVolumeEntry(v: VolumeSpec): Record<string, unknown> {
  const labels = Object.fromEntries(Object.entries(v.labels ?? {}).filter(([k]) => !k.startsWith("io.corral.")));
  const { labels: _labels, driver, driver_opts, ...rest } = v;
  return { ...rest, ...(v.external ? {} : compact({ driver, driver_opts })), ...(Object.keys(labels).length ? { labels } : {}) };
}

/** `$` written as `$$`, so that reading the file back (interpolation) gives the same text. */
function escapeDollars<T>(value: T): T {
  if (typeof value === "string") return value.replace(/\$/g, "$$$$") as T;
  if (Array.isArray(value)) return value.map(escapeDollars) as T;
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, escapeDollars(v)])) as T;
  return value;
}

/**
 * A project as compose documents: docker-compose.yml, and rancher-compose.yml
 * for scale, retain_ip and Rancher's health_check. Parsing them back gives
 * the same project (and so the same config hashes).
 */
export function toComposeDocuments(project: Project): { compose: Record<string, unknown>; rancher: Record<string, unknown> } {
  const compose: Record<string, unknown> = {
    services: Object.fromEntries(Object.entries(project.services).map(([n, s]) => [n, serviceEntry(s)])),
  };
  if (Object.keys(project.volumes).length) compose.volumes = Object.fromEntries(Object.entries(project.volumes).map(([n, v]) => [n, topVolumeEntry(v)]));
  if (Object.keys(project.secrets).length) compose.secrets = project.secrets;
  const rancher: Record<string, unknown> = {
    version: "2",
    services: Object.fromEntries(
      Object.entries(project.services).map(([n, s]) => [
        n,
        compact({ scale: s.scale, retain_ip: s.retain_ip, health_check: s.health_check }),
      ]),
    ),
  };
  return { compose: escapeDollars(compose), rancher: escapeDollars(rancher) };
}
