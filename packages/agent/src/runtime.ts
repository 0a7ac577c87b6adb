/**
 * The container runtime port: the ContainerRuntime interface and the
 * records it speaks in. DockerRuntime (docker-runtime.ts) implements it on
 * the engine, FakeRuntime (fake-runtime.ts) in memory for the unit tests.
 */

import type { Healthcheck, PortSpec } from "@corral/core";

/** What the agent needs from a container engine, in corral's own types. */
export interface ContainerRuntime {
  engineVersion(): Promise<string>;
  /** The labels an image carries (its LABEL lines, and its bases'); undefined when the image is not on the host. */
  imageLabels(image: string): Promise<Record<string, string> | undefined>;
  /** The image's id, and the digests a registry knows it by (RepoDigests: `REPOSITORY@sha256:...`); undefined when it is not on the host. */
  imageIdentity(image: string): Promise<{ id: string; repoDigests: string[] } | undefined>;
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

/** A stack network's place on this host, from the control plane: its subnet (routed across hosts), bridge and gateway. */
export interface NetworkAssignment {
  subnet: string;
  bridge: string;
  gateway: string;
  /** The overlay's MTU: a container's packets to other hosts fit in a VXLAN packet on the underlay without relying on path MTU discovery. */
  mtu?: number;
}
