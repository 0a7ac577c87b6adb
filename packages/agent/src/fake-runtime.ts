import { createHash } from "node:crypto";
import type { ContainerInfo, ContainerRuntime, CreateSpec, RegistryAuth } from "./runtime.js";

/** A container as the fake engine keeps it: what it was created from, and whether it runs. */
export interface FakeContainer {
  id: string;
  name: string;
  spec: CreateSpec;
  labels: Record<string, string>;
  running: boolean;
  status: string;
  exitCode?: number;
  finishedAt?: number;
  restartPolicy?: string;
}

/**
 * An in-memory container engine for the agent's unit tests (testcontainers
 * style: the agent sees only the ContainerRuntime port). Images have labels;
 * containers get the image's labels under their own, as Docker merges them.
 * `calls` records every action that changes something, in order.
 */
export class FakeRuntime implements ContainerRuntime {
  readonly images = new Map<string, Record<string, string>>();
  readonly containers = new Map<string, FakeContainer>();
  readonly calls: string[] = [];
  #next = 1;

  constructor(images: Record<string, Record<string, string>> = {}) {
    for (const [name, labels] of Object.entries(images)) this.images.set(name, labels);
  }

  /** A container that someone (another stack, or not corral) made under `name`. */
  plant(name: string, labels: Record<string, string>, running = true): FakeContainer {
    const spec: CreateSpec = { name, image: "x", env: {}, labels, ports: [], capAdd: [], capDrop: [], network: "", aliases: [] };
    const c: FakeContainer = { id: `planted${this.#next++}`.padEnd(64, "0"), name, labels, running, status: running ? "running" : "exited", spec };
    this.containers.set(name, c);
    return c;
  }

  /** A container by name, or by engine id as Docker also takes it. */
  #find(ref: string): FakeContainer | undefined {
    return this.containers.get(ref) ?? [...this.containers.values()].find((c) => c.id === ref);
  }

  /** Its process ends by itself (a crash, `docker kill`): exited with this code, now. */
  exit(name: string, exitCode: number, at = Date.now()): void {
    Object.assign(this.#get(name), { running: false, status: "exited", exitCode, finishedAt: at });
  }

  #get(name: string): FakeContainer {
    const c = this.#find(name);
    if (!c) throw Object.assign(new Error(`No such container: ${name}`), { statusCode: 404 });
    return c;
  }

  engineVersion = () => Promise.resolve("fake");
  imageLabels = (image: string) => Promise.resolve(this.images.get(image));
  /** Each image's id: made up from its name, as an engine's is its own. */
  imageIdentity = (image: string) => Promise.resolve(this.images.has(image) ? { id: `sha256:${createHash("sha256").update(image).digest("hex")}`, repoDigests: [] } : undefined);
  /** A registry's answer to a pull: Docker's message when it refuses, undefined when it gives the image. */
  refusePull?: (image: string, auth?: RegistryAuth) => string | undefined;
  /** The logins pulls came with, in order (undefined: anonymous). */
  readonly pullAuth: Array<RegistryAuth | undefined> = [];
  pull = (image: string, auth?: RegistryAuth) => {
    this.calls.push(`pull ${image}`);
    this.pullAuth.push(auth);
    const refused = this.refusePull?.(image, auth);
    if (refused) return Promise.reject(new Error(refused));
    if (!this.images.has(image)) this.images.set(image, {});
    return Promise.resolve();
  };
  inspect = (name: string): Promise<ContainerInfo | undefined> => {
    const c = this.#find(name);
    return Promise.resolve(
      c && {
        id: c.id,
        name: c.name,
        running: c.running,
        status: c.status,
        ...(c.exitCode !== undefined ? { exitCode: c.exitCode } : {}),
        ...(c.finishedAt !== undefined ? { finishedAt: c.finishedAt } : {}),
        ...(c.restartPolicy ? { restartPolicy: c.restartPolicy } : {}),
        labels: c.labels,
        ports: [],
        ip: "10.0.0.2",
      },
    );
  };
  create = (spec: CreateSpec) => {
    this.calls.push(`create ${spec.name}`);
    if (this.containers.has(spec.name)) return Promise.reject(new Error(`Conflict. The container name "/${spec.name}" is already in use`));
    const image = this.images.get(spec.image);
    if (!image) return Promise.reject(Object.assign(new Error(`No such image: ${spec.image}`), { statusCode: 404 }));
    const c: FakeContainer = {
      id: `c${this.#next++}`.padEnd(64, "0"),
      name: spec.name,
      spec,
      labels: { ...image, ...spec.labels },
      running: false,
      status: "created",
      ...(spec.restart ? { restartPolicy: spec.restart.split(":")[0] } : {}),
    };
    this.containers.set(spec.name, c);
    return Promise.resolve(c.id);
  };
  start = (name: string) => {
    this.calls.push(`start ${name}`);
    const c = this.#get(name);
    if (this.staleTasks.has(c.id)) return Promise.reject(Object.assign(new Error("(HTTP code 500) server error"), { statusCode: 500, json: { message: `task ${c.id}: already exists` } }));
    if (this.failStart) return Promise.reject(Object.assign(new Error("(HTTP code 500) server error"), { statusCode: 500, json: { message: this.failStart } }));
    Object.assign(c, { running: true, status: "running" });
    delete c.exitCode;
    delete c.finishedAt;
    return Promise.resolve();
  };
  /** Test switch: containerd's leftover task of a cut-short first start, that every start of it meets until it is made anew. */
  readonly staleTasks = new Set<string>();
  /** The engine's words for a start it refuses (any container). */
  failStart?: string;
  recreate = (name: string) => {
    this.calls.push(`recreate ${name}`);
    const c = this.#get(name);
    this.staleTasks.delete(c.id);
    const fresh: FakeContainer = { ...c, id: `c${this.#next++}`.padEnd(64, "0"), running: false, status: "created" };
    this.containers.set(name, fresh);
    return Promise.resolve(fresh.id);
  };
  stop = (name: string) => {
    this.calls.push(`stop ${name}`);
    Object.assign(this.#get(name), { running: false, status: "exited" });
    return Promise.resolve();
  };
  rename = (name: string, to: string) => {
    this.calls.push(`rename ${name} ${to}`);
    const c = this.#get(name);
    this.containers.delete(name);
    this.containers.set(to, { ...c, name: to });
    return Promise.resolve();
  };
  waitHealthy = () => Promise.resolve({ status: "none" as const });
  wait = (name: string) => {
    Object.assign(this.#get(name), { running: false, status: "exited" });
    return Promise.resolve(0);
  };
  remove = (name: string) => {
    this.calls.push(`remove ${name}`);
    const c = this.#find(name);
    return Promise.resolve(c ? this.containers.delete(c.name) : false);
  };
  ensureNetwork = () => Promise.resolve();
  ensureVolume = () => Promise.resolve();
  removeVolume = () => Promise.resolve(false);
  removeNetworkIfUnused = () => Promise.resolve();
  listByLabel = (label: string, value?: string) =>
    Promise.all(
      [...this.containers.values()]
        .filter((c) => label in c.labels && (value === undefined || c.labels[label] === value))
        .map(async (c) => {
          // as Docker's list: no exit code, no restart policy (inspect tells those)
          const { exitCode: _e, finishedAt: _f, restartPolicy: _r, ...listed } = (await this.inspect(c.name))!;
          return listed;
        }),
    );
  logs = () => Promise.reject(new Error("the fake runtime has no logs"));
  exec = () => Promise.reject(new Error("the fake runtime has no exec"));
  execInteractive = () => Promise.reject(new Error("the fake runtime has no exec"));
  listRouted = () => Promise.resolve([]);
  watchContainers = () => () => {};
}
