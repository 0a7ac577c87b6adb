import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import type Docker from "dockerode";
import { CONTROL_ADDRESS, routeFleet, spawnAgentInside, startFleetHost, type FleetHost } from "../fleet.js";
import { freePort } from "../registry.js";
import { agentStateDir, cliBin, corral, outputContains } from "../support.js";

const run = promisify(execFile);

/**
 * The real system for the fault suite: `corral server` as a process of its
 * own (to SIGKILL it), on a data folder it is started again on; two hosts,
 * each a dockerd in a network namespace with an agent inside it (to cut its
 * network, stop its engine, SIGKILL its agent). The control plane listens
 * on the bench's address (test/fleet.ts), which the hosts reach through
 * their veths.
 */
export interface Api {
  url: string;
  token: string;
}

export interface Agent {
  host: FleetHost;
  child: ChildProcess;
  log: string;
}

export interface System {
  api: Api;
  hosts: FleetHost[];
  agents: Agent[];
  serverLog(): string;
  /** Environment every server and agent started from now on gets (a fault switch kept over the whole workload). */
  env: Record<string, string>;
  /** The server's and agents' log lines since a time (their own timestamps), for a phase that took long. */
  logsSince(ms: number): string;
  /** Start `corral server` on the data folder (again), with extra environment (a fault switch, say). */
  startServer(env?: Record<string, string>): Promise<void>;
  /** SIGKILL the server and wait for it to be gone. */
  killServer(): Promise<void>;
  /** Resolves once the server running now has ended by itself (a fault point's SIGKILL). */
  serverEnded(): Promise<void>;
  /** (Re)start host i's agent with its saved credentials, and extra environment. */
  startAgent(i: number, env?: Record<string, string>): Promise<Agent>;
  killAgent(i: number): Promise<void>;
  /** Cut host i off the network (its veth down), or bring it back. */
  cut(i: number, on: boolean): Promise<void>;
  stop(): Promise<void>;
}

const exited = (child: ChildProcess) => (child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => child.once("exit", () => r())));

/** Short timeouts, so that a fault costs seconds: a tick of 300 ms, steps retried after 5 s. */
export const systemEnv = { CORRAL_TICK_MS: "300", CORRAL_VISIBILITY_SECONDS: "5" };

/**
 * A host not heard from for this long is disconnected, and the steps planned
 * on it fail at once. Longer than an agent takes to start again (a few
 * seconds here, where the CLI runs from TypeScript): a restarted agent must
 * not pass for a lost host.
 */
export const HOST_TIMEOUT_S = 15;

export async function startSystem(options: { hosts?: number; first?: number; dataDir?: string; serverEnv?: Record<string, string> } = {}): Promise<System> {
  const first = options.first ?? 40;
  const unroute = await routeFleet();
  const hosts: FleetHost[] = [];
  for (let i = 0; i < (options.hosts ?? 2); i++) hosts.push(await startFleetHost(first + i, `f${first + i}`));
  const data = options.dataDir ?? mkdtempSync(join(tmpdir(), "corral-faults-"));
  const port = await freePort(CONTROL_ADDRESS);
  const url = `http://${CONTROL_ADDRESS}:${port}`;
  let server: ChildProcess | undefined;
  let serverLog = "";
  const agents: Agent[] = [];
  const states = hosts.map((h) => join(agentStateDir, `faults-${h.name}`));

  const sys: System = {
    api: { url, token: "" },
    hosts,
    agents,
    serverLog: () => serverLog,
    env: {},
    logsSince(ms) {
      const since = (log: string, who: string) =>
        log
          .split("\n")
          .filter((l) => {
            const at = Date.parse(/"(?:time|at|ts)":"([^"]+)"/.exec(l)?.[1] ?? /^(\S+Z)\s/.exec(l)?.[1] ?? "");
            return Number.isNaN(at) ? false : at >= ms;
          })
          .map((l) => `${who}: ${l.slice(0, 300)}`);
      return [...since(serverLog, "server"), ...agents.flatMap((a) => since(a.log, a.host.name))].join("\n");
    },
    async startServer(env = {}) {
      const child = spawn(process.execPath, [cliBin, "server", "--data", data, "--listen", CONTROL_ADDRESS, "--port", String(port), "--no-agent", "--host-timeout", `${HOST_TIMEOUT_S}s`], {
        env: { ...process.env, ...systemEnv, ...options.serverEnv, ...sys.env, ...env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      child.stderr?.on("data", (d: Buffer) => (serverLog += d.toString()));
      server = child;
      await outputContains(child, "corral server on", 60_000);
      sys.api.token = readFileSync(join(data, "token"), "utf8").trim();
    },
    serverEnded() {
      return server ? exited(server) : Promise.resolve();
    },
    async killServer() {
      if (!server) return;
      server.kill("SIGKILL");
      await exited(server);
      server = undefined;
    },
    async startAgent(i, env = {}) {
      const host = hosts[i]!;
      await sys.killAgent(i);
      const child = spawnAgentInside(host, url, { stateDir: states[i]!, env: { CORRAL_OVERLAY: "off", CORRAL_ENGINE_WAIT_MS: "60000", ...sys.env, ...env } });
      // (the log goes on from the killed agent's: what it did before the kill tells what the next one resumed)
      const agent: Agent = { host, child, log: agents[i]?.log ?? "" };
      child.stderr?.on("data", (d: Buffer) => (agent.log += d.toString()));
      agents[i] = agent;
      await outputContains(child, `corral agent ${host.name} connected`, 60_000);
      return agent;
    },
    async killAgent(i) {
      const agent = agents[i];
      if (!agent) return;
      agent.child.kill("SIGKILL");
      await exited(agent.child);
    },
    async cut(i, on) {
      await run("ip", ["link", "set", `c${first + i}-out`, on ? "down" : "up"]);
    },
    async stop() {
      for (let i = 0; i < agents.length; i++) await sys.killAgent(i);
      if (server) {
        server.kill("SIGTERM");
        await Promise.race([exited(server), new Promise((r) => setTimeout(r, 10_000))]);
        server.kill("SIGKILL");
      }
      for (const h of hosts) await h.remove();
      await unroute();
    },
  };

  await sys.startServer();
  // each host joins once (a one-time token), then its agent starts again on the credentials it saved
  for (let i = 0; i < hosts.length; i++) {
    const add = await corral(sys.api, ["host", "add", hosts[i]!.name]);
    if (add.code !== 0) throw new Error(`corral host add ${hosts[i]!.name}: ${add.stderr}`);
    const token = add.stdout.split("\n")[1]!.trim();
    const child = spawnAgentInside(hosts[i]!, url, { token, stateDir: states[i]!, env: { CORRAL_OVERLAY: "off" } });
    const agent: Agent = { host: hosts[i]!, child, log: "" };
    child.stderr?.on("data", (d: Buffer) => (agent.log += d.toString()));
    agents[i] = agent;
    await outputContains(child, `corral agent ${hosts[i]!.name} connected`, 60_000);
  }
  return sys;
}

/**
 * Docker's own leak, not corral's: a container start cut short by its
 * engine's stop leaves containerd's shim of that task running, holding the
 * container's root filesystem (its removal then fails with "device or
 * resource busy"). After an engine restart the shims of that engine's
 * containers that no longer run are ended, by pid, as test/drills.test.ts
 * does.
 */
export async function reapShims(host: FleetHost): Promise<number> {
  const dir = dirname(host.dockerHost.replace(/^unix:\/\//, ""));
  const running = new Set((await host.docker.listContainers().catch(() => [])).map((c) => c.Id));
  let reaped = 0;
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    let args = "";
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    } catch {
      continue;
    }
    const id = /-id\0([0-9a-f]{64})/.exec(args)?.[1];
    if (args.startsWith("/usr/bin/containerd-shim") && args.includes(`${dir}/`) && (!id || !running.has(id))) {
      process.kill(Number(pid), "SIGKILL");
      reaped++;
    }
  }
  return reaped;
}

/** A stack's containers on one engine: id, name, state, service, slot, revision. */
export async function engineContainers(engine: Docker, stack: string) {
  const list = await engine.listContainers({ all: true, filters: { label: [`io.corral.stack=${stack}`] } }).catch(() => []);
  return list.map((c) => ({
    id: c.Id,
    name: (c.Names[0] ?? "").replace(/^\//, ""),
    state: c.State,
    service: c.Labels["io.corral.service"] ?? "",
    slot: c.Labels["io.corral.slot"] ?? "",
    revision: c.Labels["io.corral.revision"] ?? "",
  }));
}
