import Docker from "dockerode";
import { subnetsOf, type Healthcheck, type PortSpec } from "@corral/core";

/** What the agent needs from a container engine, in corral's own types. */
export interface ContainerRuntime {
  engineVersion(): Promise<string>;
  imageExists(image: string): Promise<boolean>;
  /** The labels an image carries (its LABEL lines, and its bases'); undefined when the image is not on the host. */
  imageLabels(image: string): Promise<Record<string, string> | undefined>;
  /** Pull an image, with a registry login when one is given. */
  pull(image: string, auth?: RegistryAuth): Promise<void>;
  inspect(name: string): Promise<ContainerInfo | undefined>;
  create(spec: CreateSpec): Promise<string>;
  start(name: string): Promise<void>;
  /**
   * Make a container that never ran anew under its name, with the
   * configuration it has (its labels, mounts, network and address): the way
   * past containerd's task of a first start a dockerd restart cut short
   * (see staleTask). Returns its new id.
   */
  recreate(name: string): Promise<string>;
  /** Stop with the container's own grace period unless one is given. */
  stop(name: string, graceSeconds?: number): Promise<void>;
  rename(name: string, to: string): Promise<void>;
  /** For a container with a health check: wait until it is healthy or unhealthy (Docker's events, no polling). */
  waitHealthy(name: string, timeoutMs?: number): Promise<HealthOutcome>;
  /** Wait until the container has exited; its exit code. */
  wait(name: string): Promise<number>;
  /** Force-remove (by name or engine id); false when there was nothing to remove. */
  remove(name: string): Promise<boolean>;
  /** A stack's network; with `assigned`, on the subnet and bridge the control plane gave it (the cross-host stack network). */
  ensureNetwork(name: string, labels: Record<string, string>, assigned?: NetworkAssignment): Promise<void>;
  /** Create a named volume unless it exists; an external one must exist. */
  ensureVolume(volume: VolumeRequest): Promise<void>;
  /** Remove a named volume; false when there was none. */
  removeVolume(name: string): Promise<boolean>;
  removeNetworkIfUnused(name: string): Promise<void>;
  listByLabel(label: string, value?: string): Promise<ContainerInfo[]>;
  /** A container's output: what is there (the last `tail` lines, since a time), then, with `follow`, what comes until `stop`. */
  logs(name: string, options: LogOptions, sink: OutputSink): Promise<{ done: Promise<void>; stop(): void }>;
  /** Run a command in a running container; its exit code. */
  exec(name: string, cmd: string[], sink: OutputSink): Promise<number>;
  /** Run a command with its stdin open (and a terminal, with `tty`): write to it, end it, wait for the exit code. */
  execInteractive(name: string, cmd: string[], tty: { rows: number; cols: number } | undefined, sink: OutputSink): Promise<InteractiveExec>;
  /** Containers carrying `label` (stopped ones too), with their health and address, for the port router. */
  listRouted(label: string): Promise<RoutedContainer[]>;
  /** Calls `listener` on every container start, stop, health change or removal; returns the way to stop listening. */
  watchContainers(listener: (event: ContainerEvent) => void): () => void;
}

/** A login for the registry an image comes from, as the engine takes it (X-Registry-Auth). */
export interface RegistryAuth {
  server: string;
  username: string;
  password: string;
}

export interface ContainerEvent {
  id: string;
  name: string;
  /** Docker's action: start, die, stop, destroy, rename, `health_status: healthy`, ... */
  action: string;
  labels: Record<string, string>;
}

export interface InteractiveExec {
  write(data: Buffer): void;
  /** Close the command's stdin (end of input). */
  end(): void;
  /** Stop it from this side (the session was cancelled). */
  kill(): void;
  done: Promise<number>;
}

export interface LogOptions {
  follow: boolean;
  tail?: number;
  /** Unix seconds. */
  since?: number;
  timestamps: boolean;
}

export type OutputSink = (stream: "stdout" | "stderr", data: Buffer) => void;

/** Docker's multiplexed output (8-byte frame headers: stream, size), parsed as it arrives. */
export class Demuxer {
  #pending: Buffer = Buffer.alloc(0);
  constructor(private readonly sink: OutputSink) {}

  write(chunk: Buffer): void {
    this.#pending = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    while (this.#pending.length >= 8) {
      const size = this.#pending.readUInt32BE(4);
      if (this.#pending.length < 8 + size) break;
      const type = this.#pending[0];
      const data = this.#pending.subarray(8, 8 + size);
      this.#pending = this.#pending.subarray(8 + size);
      if (type === 1 || type === 2) this.sink(type === 2 ? "stderr" : "stdout", Buffer.from(data));
    }
  }
}

export interface RoutedContainer {
  id: string;
  name: string;
  running: boolean;
  /** Running and either without a health check or healthy. */
  ready: boolean;
  ip: string;
  labels: Record<string, string>;
}

export interface ContainerInfo {
  id: string;
  name: string;
  running: boolean;
  /** Docker's word for it: created, running, restarting (its restart policy brings it back), exited, dead, ... */
  status?: string;
  /** Once it has exited: its exit code, and when (ms since the epoch), as inspect tells. */
  exitCode?: number;
  finishedAt?: number;
  /** Its restart policy (no, always, unless-stopped, on-failure), as inspect tells. */
  restartPolicy?: string;
  labels: Record<string, string>;
  ports: PortSpec[];
  ip: string;
}

export type HealthOutcome =
  | { status: "none" }
  | { status: "healthy" }
  | { status: "unhealthy" | "timeout"; check: string; output: string; failures: number };

export interface VolumeRequest {
  name: string;
  driver?: string;
  driverOpts?: Record<string, string>;
  labels: Record<string, string>;
  external: boolean;
}

export interface MountRequest {
  type: "bind" | "volume" | "tmpfs";
  source?: string;
  target: string;
  readOnly?: boolean;
  tmpfsSize?: number;
  tmpfsMode?: number;
  noCopy?: boolean;
  propagation?: string;
}

export interface CreateSpec {
  name: string;
  mounts?: MountRequest[];
  healthcheck?: Healthcheck;
  stopSignal?: string;
  stopGraceMs?: number;
  readOnly?: boolean;
  tmpfs?: string[];
  ulimits?: Record<string, number | { soft: number; hard: number }>;
  memory?: number;
  memoryReservation?: number;
  /** deploy.resources.limits.pids (the site's default applies when a service sets none). */
  pidsLimit?: number;
  nanoCpus?: number;
  shmSize?: number;
  sysctls?: Record<string, string>;
  init?: boolean;
  hostname?: string;
  dns?: string[];
  extraHosts?: string[];
  logging?: { driver?: string; options?: Record<string, string> };
  groupAdd?: string[];
  expose?: string[];
  privileged?: boolean;
  networkMode?: string;
  image: string;
  command?: string[];
  entrypoint?: string[];
  env: Record<string, string>;
  labels: Record<string, string>;
  ports: PortSpec[];
  capAdd: string[];
  capDrop: string[];
  user?: string;
  workingDir?: string;
  restart?: string;
  network: string;
  aliases: string[];
  /** A fixed address in the stack network (retain_ip). */
  ipv4Address?: string;
}

/** Docker's own words for a failure, without dockerode's "(HTTP code 404) ..." wrapping. */
export function engineMessage(e: unknown): string {
  const err = e as { json?: { message?: string } | null; message?: string; statusCode?: number };
  const fromJson = err?.json && typeof err.json === "object" ? err.json.message : undefined;
  return (fromJson ?? err?.message ?? String(e)).trim();
}

const statusOf = (e: unknown) => (e as { statusCode?: number })?.statusCode;

/** Socket errors that say nobody answers where the engine should be, or that it hung up mid-call. */
const goneCodes = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "ECONNABORTED"]);
/** What a stopping or starting dockerd answers for a call its containerd (or its own shutdown) cut off. */
const engineGoingAway = /transport is closing|grpc: the client connection is closing|failed to update store for object type|rpc error: code = Unavailable|error reading from server: EOF|connection error: desc = "transport|the daemon is shutting down|Cannot connect to the Docker daemon|socket hang up/i;

/**
 * A start refused because containerd still holds a task for the container:
 * a dockerd stopped while it started it (its first start) leaves that task,
 * with its shim, and no later start replaces it (Docker 20.10), whatever the
 * retries. Only a new container gets past it.
 */
export function staleTask(e: unknown): boolean {
  return /task [0-9a-f]{12,}: already exists/i.test(engineMessage(e));
}

/**
 * Whether a failure says the engine itself could not be reached (not
 * running, restarting, its socket gone) rather than anything about the
 * step: worth waiting out, since the same step will do once it is back.
 * A missing file is the engine's only when connecting to its socket.
 */
export function engineUnreachable(e: unknown): boolean {
  const err = e as { code?: unknown; syscall?: unknown } | null;
  const code = typeof err?.code === "string" ? err.code : undefined;
  if (code && goneCodes.has(code)) return true;
  if (code === "ENOENT" || code === "EACCES") return err?.syscall === "connect";
  return engineGoingAway.test(engineMessage(e));
}

function portsOf(raw: Record<string, Array<{ HostIp: string; HostPort: string }> | null> | undefined): PortSpec[] {
  const out: PortSpec[] = [];
  for (const [key, bindings] of Object.entries(raw ?? {})) {
    const [port, protocol] = key.split("/");
    for (const b of bindings ?? []) {
      if (b.HostIp.includes(":")) continue; // report the IPv4 binding once
      out.push({ target: Number(port), published: Number(b.HostPort), host_ip: b.HostIp || "0.0.0.0", protocol: (protocol ?? "tcp") as PortSpec["protocol"] });
    }
  }
  return out;
}

const compact = <T extends Record<string, unknown>>(o: T): Partial<T> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

/** `on-failure:3` → {Name: on-failure, MaximumRetryCount: 3}; `no` → no policy. */
function restartPolicy(restart: string): { Name: string; MaximumRetryCount?: number } {
  const [name, count] = restart.split(":");
  if (name === "no") return { Name: "" };
  return count ? { Name: name!, MaximumRetryCount: Number(count) } : { Name: name! };
}

/** An exec's exit code, once Docker has seen its output end and the process go (it may lag a little). */
async function waitExit(inspect: () => Promise<{ Running?: boolean; ExitCode?: number | null } | undefined>, gone: number): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const state = await inspect();
    if (!state?.Running) return state?.ExitCode ?? gone;
    await new Promise((r) => setTimeout(r, 20));
  }
  return (await inspect())?.ExitCode ?? gone;
}

/** A stack network's place on this host, from the control plane: its subnet (routed across hosts), bridge and gateway. */
export interface NetworkAssignment {
  subnet: string;
  bridge: string;
  gateway: string;
  /** The overlay's MTU: a container's packets to other hosts fit in a VXLAN packet on the underlay without relying on path MTU discovery. */
  mtu?: number;
}

/** The /24 subnets of an IPv4 pool (`10.200.0.0/14` → 1024 of them). */
export function subnetPool(cidr: string): string[] {
  try {
    return subnetsOf(cidr, 24);
  } catch {
    throw new Error(`subnet pool ${cidr}: expected an IPv4 network of /24 or larger`);
  }
}

/** The only module that speaks dockerode. */
export class DockerRuntime implements ContainerRuntime {
  readonly #docker: Docker;

  constructor(dockerHost?: string) {
    this.#docker = new Docker(dockerOptions(dockerHost));
  }

  async engineVersion(): Promise<string> {
    return (await this.#docker.version()).Version;
  }

  async imageExists(image: string): Promise<boolean> {
    try {
      await this.#docker.getImage(image).inspect();
      return true;
    } catch (e) {
      if (statusOf(e) === 404) return false;
      throw e;
    }
  }

  async imageLabels(image: string): Promise<Record<string, string> | undefined> {
    try {
      return (await this.#docker.getImage(image).inspect()).Config?.Labels ?? {};
    } catch (e) {
      if (statusOf(e) === 404) return undefined;
      throw e;
    }
  }

  async pull(image: string, auth?: RegistryAuth): Promise<void> {
    const stream = await this.#docker.pull(image, auth ? { authconfig: { username: auth.username, password: auth.password, serveraddress: auth.server } } : {});
    await new Promise<void>((resolve, reject) => {
      this.#docker.modem.followProgress(stream, (err: Error | null, output: Array<{ error?: string; errorDetail?: { message?: string } }>) => {
        if (err) return reject(err);
        const failure = output.find((o) => o.error);
        if (failure) return reject(new Error(failure.errorDetail?.message ?? failure.error));
        resolve();
      });
    });
  }

  async inspect(name: string): Promise<ContainerInfo | undefined> {
    try {
      const i = await this.#docker.getContainer(name).inspect();
      const nets = Object.values(i.NetworkSettings.Networks ?? {});
      const finished = Date.parse(i.State.FinishedAt ?? "");
      return {
        id: i.Id,
        name: i.Name.replace(/^\//, ""),
        running: i.State.Running,
        status: i.State.Status,
        ...(!i.State.Running && finished > 0 ? { exitCode: i.State.ExitCode, finishedAt: finished } : {}),
        ...(i.HostConfig?.RestartPolicy?.Name ? { restartPolicy: i.HostConfig.RestartPolicy.Name } : {}),
        labels: i.Config.Labels ?? {},
        ports: portsOf(i.NetworkSettings.Ports as never),
        ip: nets[0]?.IPAddress ?? "",
      };
    } catch (e) {
      if (statusOf(e) === 404) return undefined;
      throw e;
    }
  }

  async create(spec: CreateSpec): Promise<string> {
    const exposed: Record<string, object> = {};
    const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
    for (const p of spec.ports) {
      const key = `${p.target}/${p.protocol}`;
      exposed[key] = {};
      (bindings[key] ??= []).push({ HostIp: p.host_ip ?? "", HostPort: p.published === undefined ? "" : String(p.published) });
    }
    for (const e of spec.expose ?? []) exposed[e.includes("/") ? e : `${e}/tcp`] = {};
    const ns = (ms: number | undefined) => (ms === undefined ? undefined : Math.round(ms * 1_000_000));
    const h = spec.healthcheck;
    const healthcheck = h
      ? h.disable
        ? { Test: ["NONE"] }
        : compact({ Test: h.test, Interval: ns(h.interval), Timeout: ns(h.timeout), Retries: h.retries, StartPeriod: ns(h.start_period), StartInterval: ns(h.start_interval) })
      : undefined;
    const mounts = (spec.mounts ?? []).map(
      (m) =>
        compact({
        Type: m.type,
        Source: m.source,
        Target: m.target,
        ReadOnly: m.readOnly,
        ...(m.type === "tmpfs" ? { TmpfsOptions: compact({ SizeBytes: m.tmpfsSize, Mode: m.tmpfsMode }) } : {}),
        ...(m.type === "volume" && m.noCopy ? { VolumeOptions: { NoCopy: true } } : {}),
        ...(m.type === "bind" && m.propagation ? { BindOptions: { Propagation: m.propagation } } : {}),
      }) as Docker.MountSettings,
    );
    const network = spec.networkMode && spec.networkMode !== "default" && spec.networkMode !== "bridge" ? spec.networkMode : spec.network;
    const container = await this.#docker.createContainer({
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
      ...(network === spec.network ? { NetworkingConfig: { EndpointsConfig: { [spec.network]: { Aliases: spec.aliases, ...(spec.ipv4Address ? { IPAMConfig: { IPv4Address: spec.ipv4Address } } : {}) } } } } : {}),
    });
    return container.id;
  }

  async start(name: string): Promise<void> {
    try {
      await this.#docker.getContainer(name).start();
    } catch (e) {
      if (statusOf(e) !== 304) throw e; // 304: already started
    }
  }

  async recreate(name: string): Promise<string> {
    const old = this.#docker.getContainer(name);
    const info = await old.inspect();
    // the engine's own hostname for a container is its short id: the new one gets its own
    const { Hostname, ...config } = info.Config;
    const endpoints = Object.fromEntries(
      Object.entries(info.NetworkSettings?.Networks ?? {}).map(([network, e]) => [
        network,
        compact({ Aliases: e.Aliases?.filter((a: string) => !info.Id.startsWith(a)), IPAMConfig: e.IPAMConfig ?? undefined }),
      ]),
    );
    await old.remove({ force: true });
    const created = await this.#docker.createContainer({
      ...config,
      name,
      ...(Hostname && !info.Id.startsWith(Hostname) ? { Hostname } : {}),
      HostConfig: info.HostConfig,
      NetworkingConfig: { EndpointsConfig: endpoints },
    } as Docker.ContainerCreateOptions);
    return created.id;
  }

  async stop(name: string, graceSeconds?: number): Promise<void> {
    try {
      await this.#docker.getContainer(name).stop(graceSeconds === undefined ? {} : { t: graceSeconds });
    } catch (e) {
      if (statusOf(e) !== 304 && statusOf(e) !== 404) throw e;
    }
  }

  async waitHealthy(name: string, timeoutMs?: number): Promise<HealthOutcome> {
    const container = this.#docker.getContainer(name);
    const first = await container.inspect();
    const hc = first.Config.Healthcheck;
    const test = hc?.Test;
    if (!test || test[0] === "NONE") return { status: "none" };
    // the check's own budget (Docker's defaults: 30 s interval and timeout, 3 retries), with room to spare
    const ms = (ns: number | undefined, fallback: number) => (ns ? ns / 1e6 : fallback);
    const budget = timeoutMs ?? ms(hc?.StartPeriod, 0) + (ms(hc?.Interval, 30_000) + ms(hc?.Timeout, 30_000)) * ((hc?.Retries || 3) + 1) + 5_000;
    const check = test.slice(test[0] === "CMD" || test[0] === "CMD-SHELL" ? 1 : 0).join(" ");
    const verdict = async (): Promise<HealthOutcome | undefined> => {
      const h = (await container.inspect()).State.Health;
      if (h?.Status === "healthy") return { status: "healthy" };
      if (h?.Status === "unhealthy") {
        const last = h.Log?.at(-1);
        return { status: "unhealthy", check, output: (last?.Output ?? "").trim(), failures: h.FailingStreak ?? 0 };
      }
      return undefined;
    };
    const events = (await this.#docker.getEvents({ filters: { container: [first.Id], event: ["health_status", "die"] } })) as NodeJS.ReadableStream & { destroy?: () => void };
    try {
      const now = await verdict(); // it may have settled before we listened
      if (now) return now;
      return await new Promise<HealthOutcome>((resolve, reject) => {
        const timer = setTimeout(async () => {
          const h = (await container.inspect().catch(() => undefined))?.State.Health;
          const last = h?.Log?.at(-1);
          resolve({ status: "timeout", check, output: (last?.Output ?? "").trim(), failures: h?.FailingStreak ?? 0 });
        }, budget);
        events.on("data", () => {
          verdict()
            .then((v) => {
              if (!v) return;
              clearTimeout(timer);
              resolve(v);
            })
            .catch(reject);
        });
        events.on("error", reject);
      });
    } finally {
      events.destroy?.();
    }
  }

  async wait(name: string): Promise<number> {
    const out = (await this.#docker.getContainer(name).wait()) as { StatusCode?: number };
    return out.StatusCode ?? 0;
  }

  async rename(name: string, to: string): Promise<void> {
    await this.#docker.getContainer(name).rename({ name: to });
  }

  async remove(name: string): Promise<boolean> {
    try {
      await this.#docker.getContainer(name).remove({ force: true, v: true });
      return true;
    } catch (e) {
      if (statusOf(e) === 404) return false;
      if (statusOf(e) === 409 && /already in progress/.test(engineMessage(e))) return true;
      throw e;
    }
  }

  /**
   * A stack's network, with a subnet of its own from corral's pool (a /24 of
   * 10.200.0.0/14 by default, CORRAL_SUBNET_POOL): Docker gives a container a
   * fixed address (retain_ip) only on a network whose subnet was chosen.
   */
  async ensureNetwork(name: string, labels: Record<string, string>, assigned?: NetworkAssignment): Promise<void> {
    const existing = await this.#docker.listNetworks({ filters: { name: [name] } });
    if (existing.some((n) => n.Name === name)) return;
    if (assigned) {
      try {
        await this.#docker.createNetwork({
          Name: name,
          Driver: "bridge",
          Labels: labels,
          CheckDuplicate: true,
          IPAM: { Driver: "default", Config: [{ Subnet: assigned.subnet, Gateway: assigned.gateway }] },
          Options: { "com.docker.network.bridge.name": assigned.bridge, ...(assigned.mtu ? { "com.docker.network.driver.mtu": String(assigned.mtu) } : {}) },
        });
      } catch (e) {
        if (statusOf(e) !== 409) throw e; // created meanwhile
      }
      return;
    }
    const subnets = subnetPool(process.env.CORRAL_SUBNET_POOL ?? "10.200.0.0/14");
    let start = 0;
    for (const ch of name) start = (start * 31 + ch.charCodeAt(0)) % subnets.length;
    for (let i = 0; i < Math.min(subnets.length, 64); i++) {
      const subnet = subnets[(start + i) % subnets.length]!;
      try {
        await this.#docker.createNetwork({ Name: name, Driver: "bridge", Labels: labels, CheckDuplicate: true, IPAM: { Driver: "default", Config: [{ Subnet: subnet }] } });
        return;
      } catch (e) {
        if (statusOf(e) === 409) return; // created meanwhile
        if (!/overlap/i.test(engineMessage(e))) throw e; // another network has it: the next one
      }
    }
    throw new Error(`no free subnet for network ${name} in ${process.env.CORRAL_SUBNET_POOL ?? "10.200.0.0/14"}`);
  }

  async ensureVolume(v: VolumeRequest): Promise<void> {
    try {
      await this.#docker.getVolume(v.name).inspect();
      return;
    } catch (e) {
      if (statusOf(e) !== 404) throw e;
    }
    if (v.external) throw new Error(`external volume ${v.name} does not exist on this host`);
    await this.#docker.createVolume({ Name: v.name, Driver: v.driver ?? "local", DriverOpts: v.driverOpts ?? {}, Labels: v.labels });
  }

  async removeVolume(name: string): Promise<boolean> {
    try {
      await this.#docker.getVolume(name).remove();
      return true;
    } catch (e) {
      if (statusOf(e) === 404) return false;
      throw e;
    }
  }

  async removeNetworkIfUnused(name: string): Promise<void> {
    try {
      const net = await this.#docker.getNetwork(name).inspect();
      if (Object.keys(net.Containers ?? {}).length === 0) await this.#docker.getNetwork(name).remove();
    } catch (e) {
      if (statusOf(e) !== 404 && statusOf(e) !== 403 && statusOf(e) !== 409) throw e;
    }
  }

  async logs(name: string, options: LogOptions, sink: OutputSink): Promise<{ done: Promise<void>; stop(): void }> {
    const container = this.#docker.getContainer(name);
    const info = await container.inspect();
    const raw = (await container.logs({
      stdout: true,
      stderr: true,
      timestamps: options.timestamps,
      ...(options.tail !== undefined ? { tail: options.tail } : {}),
      ...(options.since !== undefined ? { since: options.since } : {}),
      follow: options.follow as true,
    })) as unknown as NodeJS.ReadableStream | Buffer;
    const write = info.Config.Tty ? (b: Buffer) => sink("stdout", b) : ((d) => (b: Buffer) => d.write(b))(new Demuxer(sink));
    if (Buffer.isBuffer(raw)) {
      write(raw);
      return { done: Promise.resolve(), stop() {} };
    }
    const stream = raw as NodeJS.ReadableStream & { destroy?: () => void };
    const done = new Promise<void>((resolve) => {
      stream.on("data", (b: Buffer) => write(b));
      stream.on("end", () => resolve());
      stream.on("close", () => resolve());
      stream.on("error", () => resolve());
    });
    return { done, stop: () => stream.destroy?.() };
  }

  async exec(name: string, cmd: string[], sink: OutputSink): Promise<number> {
    const exec = await this.#docker.getContainer(name).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({ hijack: true, stdin: false });
    const demux = new Demuxer(sink);
    await new Promise<void>((resolve, reject) => {
      stream.on("data", (b: Buffer) => demux.write(b));
      stream.on("end", () => resolve());
      stream.on("error", reject);
    });
    return waitExit(() => exec.inspect(), 0);
  }

  async execInteractive(name: string, cmd: string[], tty: { rows: number; cols: number } | undefined, sink: OutputSink): Promise<InteractiveExec> {
    const exec = await this.#docker.getContainer(name).exec({ Cmd: cmd, AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: tty !== undefined });
    const stream = (await exec.start({ hijack: true, stdin: true, Tty: tty !== undefined })) as NodeJS.ReadWriteStream & { destroy?: () => void; end: () => void };
    if (tty) await exec.resize({ h: tty.rows, w: tty.cols }).catch(() => {});
    const demux = tty ? undefined : new Demuxer(sink);
    const done = new Promise<number>((resolve) => {
      stream.on("data", (b: Buffer) => (demux ? demux.write(b) : sink("stdout", b)));
      // end, close and error may all come: the exit code is asked for once
      let finishing: Promise<void> | undefined;
      const finish = () => void (finishing ??= waitExit(() => exec.inspect().catch(() => undefined), 137).then(resolve));
      stream.on("end", finish);
      stream.on("close", finish);
      stream.on("error", finish);
    });
    return { write: (data) => void stream.write(data), end: () => stream.end(), kill: () => stream.destroy?.(), done };
  }

  async listRouted(label: string): Promise<RoutedContainer[]> {
    const list = await this.#docker.listContainers({ all: true, filters: { label: [label] } });
    return list.map((c) => {
      const running = c.State === "running";
      return {
        id: c.Id,
        name: (c.Names[0] ?? "").replace(/^\//, ""),
        running,
        ready: running && !/\((health: starting|unhealthy)\)/.test(c.Status),
        ip: Object.values(c.NetworkSettings?.Networks ?? {})[0]?.IPAddress ?? "",
        labels: c.Labels ?? {},
      };
    });
  }

  watchContainers(listener: (event: ContainerEvent) => void): () => void {
    let stream: (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
    let stopped = false;
    const open = () => {
      this.#docker
        .getEvents({ filters: { type: ["container"], event: ["start", "die", "stop", "health_status", "destroy", "rename"] } })
        .then((s) => {
          stream = s as typeof stream;
          if (stopped) return stream?.destroy?.();
          let buffered = "";
          s.on("data", (chunk: Buffer) => {
            buffered += chunk.toString();
            const lines = buffered.split("\n");
            buffered = lines.pop() ?? "";
            for (const line of lines.filter((l) => l.trim())) {
              try {
                const e = JSON.parse(line) as { id?: string; Action?: string; Actor?: { Attributes?: Record<string, string> } };
                const attrs = e.Actor?.Attributes ?? {};
                listener({ id: e.id ?? "", name: attrs.name ?? "", action: e.Action ?? "", labels: attrs });
              } catch {
                // a partial or foreign line: the next event brings the state anyway
              }
            }
          });
          s.on("error", () => {});
          s.on("end", () => !stopped && setTimeout(open, 1000).unref());
        })
        .catch(() => !stopped && setTimeout(open, 1000).unref());
    };
    open();
    return () => {
      stopped = true;
      stream?.destroy?.();
    };
  }

  async listByLabel(label: string, value?: string): Promise<ContainerInfo[]> {
    const list = await this.#docker.listContainers({ all: true, filters: { label: [value === undefined ? label : `${label}=${value}`] } });
    return list.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? "").replace(/^\//, ""),
      running: c.State === "running",
      status: c.State,
      labels: c.Labels ?? {},
      ports: [],
      ip: "",
    }));
  }
}

/** dockerode options from a DOCKER_HOST-style URL (unix:///path, tcp://host:port). */
export function dockerOptions(dockerHost = process.env.DOCKER_HOST): Docker.DockerOptions {
  if (!dockerHost) return { socketPath: "/var/run/docker.sock" };
  if (dockerHost.startsWith("unix://")) return { socketPath: dockerHost.slice("unix://".length) };
  const url = new URL(dockerHost.replace(/^tcp:/, "http:"));
  return { host: url.hostname, port: Number(url.port || 2375), protocol: "http" };
}
