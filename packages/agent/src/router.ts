import { connect, createServer, type Server, type Socket } from "node:net";
import { labels as L, parseRoutes, type Logger, type Route } from "@corral/core/host";
import type { ContainerRuntime } from "./runtime.js";

interface Backend {
  id: string;
  ip: string;
  port: number;
}

interface Listener {
  key: string;
  server: Server;
  backends: Backend[];
  next: number;
}

const keyOf = (r: Route) => `${r.hostIp ?? "0.0.0.0"}:${r.published}`;

/**
 * The host's port router, corral's routing mesh on one host: for each routed
 * port (see `routedPorts`) it holds the host port and forwards every
 * connection to a running, healthy container of the service, round robin.
 * A container is taken out before it is stopped and its connections are let
 * finish, and a new one is put in as soon as it is healthy: a start-first
 * upgrade hands over with no failed request. What to route comes from the
 * containers' labels, so a restarted agent routes the same ports again.
 * That is sound only because io.corral.routes is the agent's alone: it is
 * set at create from the control plane's step (routesLabel of the step's
 * spec), a service may not set it, and an image carrying any io.corral.*
 * label is refused before create (StepRunner#reservedLabels). Keep it so:
 * never route from a label that a user or an image could have written.
 */
export class PortRouter {
  readonly #listeners = new Map<string, Listener>();
  readonly #draining = new Set<string>();
  readonly #active = new Map<string, Set<Socket>>();
  readonly #failed = new Map<string, string>();
  readonly #opening = new Map<string, Promise<string | undefined>>();
  #unwatch: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #queued: Promise<void> | undefined;

  constructor(
    private readonly rt: ContainerRuntime,
    private readonly log?: Logger,
  ) {}

  async start(): Promise<void> {
    this.#unwatch = this.rt.watchContainers(() => void this.refresh().catch(() => {}));
    this.#timer = setInterval(() => void this.refresh().catch(() => {}), 5000);
    this.#timer.unref();
    await this.refresh();
  }

  /** Re-read the routed containers; calls made while one runs share the next run. */
  refresh(): Promise<void> {
    if (!this.#running) {
      this.#running = this.#refresh().finally(() => (this.#running = undefined));
      return this.#running;
    }
    this.#queued ??= this.#running.then(() => {
      this.#queued = undefined;
      return this.refresh();
    });
    return this.#queued;
  }

  /** Hold these ports now (a create step), so a port taken by something else fails the step, with a reason. */
  async claim(routes: Route[]): Promise<string | undefined> {
    for (const r of routes) {
      const problem = await this.#listen(r);
      if (problem) return problem;
    }
    return undefined;
  }

  /** Take a container out of the rotation and let its connections finish (at most `ms`) before it is stopped. */
  async drain(id: string, ms = 3000): Promise<void> {
    this.#draining.add(id);
    await this.refresh();
    const deadline = Date.now() + ms;
    while ((this.#active.get(id)?.size ?? 0) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const socket of this.#active.get(id) ?? []) socket.destroy();
  }

  async stop(): Promise<void> {
    this.#unwatch?.();
    clearInterval(this.#timer);
    await this.#running?.catch(() => {});
    for (const l of this.#listeners.values()) await this.#close(l);
  }

  async #refresh(): Promise<void> {
    const containers = await this.rt.listRouted(L.routes);
    const wanted = new Map<string, { route: Route; backends: Backend[] }>();
    const present = new Set(containers.map((c) => c.id));
    // a drain ends with the container's stop: one started again (a rollback, a restart) joins the rotation anew
    for (const id of this.#draining) if (!present.has(id)) this.#draining.delete(id);
    for (const c of containers) if (!c.running) this.#draining.delete(c.id);
    for (const c of containers) {
      for (const route of parseRoutes(c.labels[L.routes])) {
        const entry = wanted.get(keyOf(route)) ?? { route, backends: [] };
        if (c.ready && c.ip && !this.#draining.has(c.id)) entry.backends.push({ id: c.id, ip: c.ip, port: route.target });
        wanted.set(keyOf(route), entry);
      }
    }
    for (const { route, backends } of wanted.values()) {
      await this.#listen(route);
      const l = this.#listeners.get(keyOf(route));
      if (l) l.backends = backends;
    }
    for (const [key, l] of this.#listeners) if (!wanted.has(key)) await this.#close(l);
  }

  /** Listen on a route's port once, however many creates and refreshes ask at the same moment. */
  #listen(route: Route): Promise<string | undefined> {
    const key = keyOf(route);
    if (this.#listeners.has(key)) return Promise.resolve(undefined);
    let pending = this.#opening.get(key);
    if (!pending) {
      pending = this.#open(route).finally(() => this.#opening.delete(key));
      this.#opening.set(key, pending);
    }
    return pending;
  }

  async #open(route: Route): Promise<string | undefined> {
    const key = keyOf(route);
    const listener: Listener = { key, server: createServer((client) => this.#forward(listener, client, 0)), backends: [], next: 0 };
    const problem = await new Promise<string | undefined>((resolve) => {
      listener.server.once("error", (e: NodeJS.ErrnoException) =>
        resolve(e.code === "EADDRINUSE" ? `host port ${route.published} is already in use on this host` : `cannot listen on ${key}: ${e.message}`),
      );
      listener.server.listen(route.published, route.hostIp ?? "0.0.0.0", () => resolve(undefined));
    });
    if (problem) {
      if (this.#failed.get(key) !== problem) this.log?.error("port router", { port: key, error: problem });
      this.#failed.set(key, problem);
      return problem;
    }
    this.#failed.delete(key);
    this.#listeners.set(key, listener);
    this.log?.info("routing port", { port: key });
    return undefined;
  }

  async #close(l: Listener): Promise<void> {
    // no container has the route any more: stop accepting; connections in flight end on their own
    this.#listeners.delete(l.key);
    l.server.close();
    this.log?.info("port released", { port: l.key });
  }

  /** Connect `client` to a backend; a backend that refuses (it just died) is skipped for the next one. */
  #forward(l: Listener, client: Socket, tries: number): void {
    client.pause();
    if (tries === 0) client.on("error", () => {});
    if (l.backends.length === 0) {
      // between an old container leaving and a new one arriving: wait a little rather than refuse
      if (tries > 50) return void client.destroy();
      setTimeout(() => this.#forward(l, client, tries + 1), 100);
      return;
    }
    const b = l.backends[l.next++ % l.backends.length]!;
    const upstream = connect(b.port, b.ip);
    // counted from the moment it is chosen: a drain must wait for a connection still being made
    const set = this.#active.get(b.id) ?? new Set<Socket>();
    this.#active.set(b.id, set);
    set.add(upstream);
    let connected = false;
    upstream.on("error", () => {
      set.delete(upstream);
      if (!connected && tries < l.backends.length + 3) return this.#forward(l, client, tries + 1);
      client.destroy();
    });
    upstream.once("connect", () => {
      connected = true;
      upstream.once("close", () => {
        set.delete(upstream);
        client.destroy();
      });
      client.once("close", () => upstream.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
  }
}
