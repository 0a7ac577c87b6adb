import Docker from "dockerode";
import type { PortSpec } from "@corral/core";
import { compact, dockerCreateOptions } from "./docker-create.js";
import { Demuxer, waitExit, watchEngineEvents } from "./docker-stream.js";
import { engineMessage, statusOf } from "./engine-errors.js";
import { execProbe, probePlan, probeUntilHealthy, ProbeSlots } from "./health-probe.js";
import { subnetPool } from "./subnet-pool.js";
import type {
  ContainerEvent,
  ContainerInfo,
  ContainerRuntime,
  CreateSpec,
  HealthOutcome,
  InteractiveExec,
  LogOptions,
  NetworkAssignment,
  OutputSink,
  RegistryAuth,
  RoutedContainer,
  VolumeRequest,
} from "./runtime.js";

/** A container's published ports as inspect tells them, each binding once (its IPv4 one). */
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

/** The only module that speaks dockerode. */
export class DockerRuntime implements ContainerRuntime {
  readonly #docker: Docker;
  /** the agent's own first health probes (see health-probe.ts), a few at a time */
  readonly #probes = new ProbeSlots(4);
  /** containers the agent's probe found healthy while the engine still says starting: ready for the router */
  readonly #probedHealthy = new Set<string>();

  constructor(dockerHost?: string) {
    this.#docker = new Docker(dockerOptions(dockerHost));
  }

  async engineVersion(): Promise<string> {
    return (await this.#docker.version()).Version;
  }

  async imageLabels(image: string): Promise<Record<string, string> | undefined> {
    try {
      return (await this.#docker.getImage(image).inspect()).Config?.Labels ?? {};
    } catch (e) {
      if (statusOf(e) === 404) return undefined;
      throw e;
    }
  }

  async imageIdentity(image: string): Promise<{ id: string; repoDigests: string[] } | undefined> {
    try {
      const info = await this.#docker.getImage(image).inspect();
      return { id: info.Id, repoDigests: info.RepoDigests ?? [] };
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
    const options = dockerCreateOptions(spec);
    // dockerode types a mount more strictly than the engine takes it (a tmpfs has no source, a volume no labels)
    const { Mounts, ...host } = options.HostConfig;
    const container = await this.#docker.createContainer({ ...options, HostConfig: { ...host, ...(Mounts ? { Mounts: Mounts as Docker.MountSettings[] } : {}) } });
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
    let settled = false;
    try {
      const now = await verdict(); // it may have settled before we listened
      if (now) return now;
      return await new Promise<HealthOutcome>((resolve, reject) => {
        const settle = (v: HealthOutcome) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve(v);
        };
        const timer = setTimeout(async () => {
          const h = (await container.inspect().catch(() => undefined))?.State.Health;
          const last = h?.Log?.at(-1);
          settle({ status: "timeout", check, output: (last?.Output ?? "").trim(), failures: h?.FailingStreak ?? 0 });
        }, budget);
        events.on("data", () => {
          verdict()
            .then((v) => v && settle(v))
            .catch(reject);
        });
        events.on("error", reject);
        // the agent's own first probes: healthy as soon as the test passes, not one interval after the start
        const plan = probePlan(hc, (first.Config as { Shell?: string[] }).Shell); // Shell: in the engine's answer, not in the types
        if (plan) {
          void probeUntilHealthy(plan, () => this.#probes.run(() => execProbe(this.#docker, first.Id, plan)), () => settled).then((healthy) => {
            if (!healthy) return;
            this.#probedHealthy.add(first.Id);
            // by then the engine has run its own first probe and says so itself
            setTimeout(() => this.#probedHealthy.delete(first.Id), plan.untilMs + 1_000).unref();
            settle({ status: "healthy" });
          });
        }
      });
    } finally {
      settled = true;
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
        // starting counts as ready once the agent's own probe passed (see waitHealthy), as the engine will say soon
        ready: running && !/\(unhealthy\)/.test(c.Status) && (!/\(health: starting\)/.test(c.Status) || this.#probedHealthy.has(c.Id)),
        ip: Object.values(c.NetworkSettings?.Networks ?? {})[0]?.IPAddress ?? "",
        labels: c.Labels ?? {},
      };
    });
  }

  watchContainers(listener: (event: ContainerEvent) => void): () => void {
    return watchEngineEvents((options) => this.#docker.getEvents(options), listener);
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
