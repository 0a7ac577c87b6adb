import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type Docker from "dockerode";
import { CONTROL_ADDRESS, routeFleet, spawnAgentInside, startFleetHost, type FleetHost } from "../fleet.js";
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
  /** Start `corral server` on the data folder (again), with extra environment (a fault switch, say). */
  startServer(env?: Record<string, string>): Promise<void>;
  /** SIGKILL the server and wait for it to be gone. */
  killServer(): Promise<void>;
  /** (Re)start host i's agent with its saved credentials, and extra environment. */
  startAgent(i: number, env?: Record<string, string>): Promise<Agent>;
  killAgent(i: number): Promise<void>;
  /** Cut host i off the network (its veth down), or bring it back. */
  cut(i: number, on: boolean): Promise<void>;
  stop(): Promise<void>;
}

const freePort = (address: string) =>
  new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, address, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

const exited = (child: ChildProcess) => (child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => child.once("exit", () => r())));

/** Short timeouts, so that a fault costs seconds: a tick of 300 ms, a host lost after 6 s, steps retried after 5 s. */
export const systemEnv = { CORRAL_TICK_MS: "300", CORRAL_VISIBILITY_SECONDS: "5" };

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
    async startServer(env = {}) {
      const child = spawn(process.execPath, [cliBin, "server", "--data", data, "--listen", CONTROL_ADDRESS, "--port", String(port), "--no-agent", "--host-timeout", "6s"], {
        env: { ...process.env, ...systemEnv, ...options.serverEnv, ...env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      child.stderr?.on("data", (d: Buffer) => (serverLog += d.toString()));
      server = child;
      await outputContains(child, "corral server on", 60_000);
      sys.api.token = readFileSync(join(data, "token"), "utf8").trim();
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
      const child = spawnAgentInside(host, url, { stateDir: states[i]!, env: { CORRAL_OVERLAY: "off", CORRAL_ENGINE_WAIT_MS: "60000", ...env } });
      const agent: Agent = { host, child, log: "" };
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
