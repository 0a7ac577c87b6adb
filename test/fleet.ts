import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import Docker from "dockerode";
import type { ChildProcess } from "node:child_process";
import { agentStateDir, cliBin, corral, docker, outputContains, spawnCorral } from "./support.js";

const run = promisify(execFile);

/**
 * Extra Docker hosts on this machine, for the many-hosts tests: each a
 * dockerd in a network namespace of its own, reached from here over a veth
 * pair with addresses from 198.18.0.0/15 (the range set aside for test
 * benches): this side 198.18.N.1, the host 198.18.N.2. The engine is
 * started with nsenter (not `ip netns exec`, which remounts /sys and hides
 * the cgroups from dockerd) and gets the test images from the local engine.
 * It takes plain-HTTP registries on 198.18.0.0/15 (a test registry on this
 * side of a veth, 198.18.N.1).
 */
export interface FleetHost {
  name: string;
  /** The host's address, where its published ports answer. */
  address: string;
  /** DOCKER_HOST for its engine. */
  dockerHost: string;
  docker: Docker;
  /** Its network namespace (for nsenter --net=): where its engine, and an agent started inside, see the network. */
  netns: string;
  /** Stop its engine (as a host lost would), keeping its data; `start` brings it back. */
  stopEngine(): Promise<void>;
  startEngine(): Promise<void>;
  /** Remove everything: engine, data, namespace, veth. */
  remove(): Promise<void>;
}

/** Why extra hosts cannot be made here (not root, no netns), or undefined when they can. */
export async function fleetUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return "the many-hosts tests need root (network namespaces and dockerd)";
  try {
    await run("ip", ["netns", "add", "corral-probe"]);
    await run("ip", ["netns", "del", "corral-probe"]);
    return undefined;
  } catch (e) {
    return `the kernel or the sandbox forbids network namespaces (${String(e).split("\n")[0]}): the many-hosts tests are skipped`;
  }
}

const ping = async (socket: string) => {
  try {
    await new Docker({ socketPath: socket }).ping();
    return true;
  } catch {
    return false;
  }
};

/** Make host number `n` (2..250) named `name`. */
export async function startFleetHost(n: number, name: string, images = ["corral-hello:latest", "corral-busybox:latest"]): Promise<FleetHost> {
  const ns = `corral-${name}`;
  const out = `c${n}-out`;
  const inner = `c${n}-in`;
  const address = `198.18.${n}.2`;
  await cleanupNamespace(ns, out);
  const ip = (...args: string[]) => run("ip", args);
  await ip("netns", "add", ns);
  await ip("link", "add", out, "type", "veth", "peer", "name", inner);
  await ip("link", "set", inner, "netns", ns);
  await ip("addr", "add", `198.18.${n}.1/24`, "dev", out);
  await ip("link", "set", out, "up");
  await ip("netns", "exec", ns, "ip", "addr", "add", `${address}/24`, "dev", inner);
  await ip("netns", "exec", ns, "ip", "link", "set", inner, "up");
  await ip("netns", "exec", ns, "ip", "link", "set", "lo", "up");
  await ip("netns", "exec", ns, "ip", "route", "add", "default", "via", `198.18.${n}.1`);

  const dir = mkdtempSync(join(tmpdir(), `corral-${name}-`));
  const socket = join(dir, "docker.sock");
  const pidFile = join(dir, "docker.pid");
  const startEngine = async () => {
    const child = spawn(
      "nsenter",
      [`--net=/var/run/netns/${ns}`, "dockerd", "--data-root", join(dir, "data"), "--exec-root", join(dir, "exec"), "-H", `unix://${socket}`, "--pidfile", pidFile, "--insecure-registry", "198.18.0.0/15"],
      { stdio: "ignore", detached: true },
    );
    child.unref();
    for (let i = 0; i < 120 && !(await ping(socket)); i++) await new Promise((r) => setTimeout(r, 250));
    if (!(await ping(socket))) throw new Error(`dockerd for ${name} did not answer on ${socket}`);
  };
  const stopEngine = async () => {
    if (!existsSync(pidFile)) return;
    const pid = Number(readFileSync(pidFile, "utf8"));
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      return;
    }
    for (let i = 0; i < 100; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    process.kill(pid, "SIGKILL");
  };
  await startEngine();
  const engine = new Docker({ socketPath: socket });
  for (const image of images) {
    const tar = await docker.getImage(image).get();
    const loading = await engine.loadImage(tar);
    await new Promise((resolve, reject) => engine.modem.followProgress(loading, (err) => (err ? reject(err) : resolve(undefined))));
  }
  return {
    name,
    address,
    dockerHost: `unix://${socket}`,
    docker: engine,
    netns: `/var/run/netns/${ns}`,
    stopEngine,
    startEngine,
    async remove() {
      for (const c of await engine.listContainers({ all: true }).catch(() => [])) await engine.getContainer(c.Id).remove({ force: true }).catch(() => {});
      await stopEngine();
      await cleanupNamespace(ns, out);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function cleanupNamespace(ns: string, out: string): Promise<void> {
  await run("ip", ["netns", "del", ns]).catch(() => {});
  await run("ip", ["link", "del", out]).catch(() => {});
}

/**
 * Join a fleet host to `server` as a node would: `corral host add NAME`
 * (the admin's) for a one-time token, then `corral agent --join URL --token T`
 * on the host's engine. Resolves with the agent once it says it is connected.
 */
export async function joinFleetHost(server: { url: string; token: string }, host: FleetHost): Promise<ChildProcess> {
  const add = await corral(server, ["host", "add", host.name]);
  // a plain throw, not vitest's expect: the fleet bench (outside vitest) imports this file too
  if (add.code !== 0) throw new Error(`corral host add ${host.name} failed (${add.code}): ${add.stderr.trim()}`);
  const token = add.stdout.split("\n")[1]!.trim();
  const agent = spawnCorral({ url: server.url, token: "" }, ["agent", "--join", server.url, "--token", token, "--docker-host", host.dockerHost], { CORRAL_TOKEN: "" });
  await outputContains(agent, `corral agent ${host.name} connected`);
  return agent;
}

/**
 * The control plane's address on the bench: an address of this namespace,
 * reached from every host's namespace through its veth (the
 * hosts' default route), for a server started with `listen: CONTROL_ADDRESS`.
 */
export const CONTROL_ADDRESS = "198.18.0.1";

/**
 * Make the bench routed: the control plane's address, and forwarding between
 * the hosts' namespaces (198.18.0.0/15 to itself, ahead of the local
 * engine's FORWARD policy), so that hosts reach each other as machines on one
 * network would (the overlay's VXLAN packets go host to host). Resolves with
 * the undo.
 */
export async function routeFleet(): Promise<() => Promise<void>> {
  const ip = (...args: string[]) => run("ip", args);
  // on the loopback device (this kernel may have no dummy devices): local all the same, and reached through each veth
  await ip("addr", "replace", `${CONTROL_ADDRESS}/32`, "dev", "lo");
  await run("sysctl", ["-qw", "net.ipv4.ip_forward=1"]);
  const rule = ["-s", "198.18.0.0/15", "-d", "198.18.0.0/15", "-j", "ACCEPT"];
  const chain = (await run("iptables", ["-S", "DOCKER-USER"]).then(() => true, () => false)) ? "DOCKER-USER" : "FORWARD";
  await run("iptables", ["-I", chain, "1", ...rule]);
  return async () => {
    await run("iptables", ["-D", chain, ...rule]).catch(() => {});
    await ip("addr", "del", `${CONTROL_ADDRESS}/32`, "dev", "lo").catch(() => {});
  };
}

/**
 * An agent on the host itself, as on a real machine: `corral agent` inside
 * the host's network namespace (its name servers bind its stack networks'
 * gateways, its overlay is that namespace's), joining `url` (the control
 * plane's address as the host reaches it) with a join token, or (none given)
 * with the credentials it saved in `stateDir`.
 */
export function spawnAgentInside(host: FleetHost, url: string, options: { token?: string; stateDir?: string; env?: Record<string, string>; resolvConf?: string } = {}): ChildProcess {
  const args = ["agent", "--join", url, ...(options.token ? ["--token", options.token] : []), "--docker-host", host.dockerHost, "--address", host.address, "--state-dir", options.stateDir ?? join(agentStateDir, host.name)];
  const agent = [process.execPath, cliBin, ...args];
  // a host with a resolver of its own: the agent in a mount namespace of its own, where that file is its /etc/resolv.conf
  const command = options.resolvConf ? ["unshare", "--mount", "--propagation", "private", "sh", "-c", 'mount --bind "$0" /etc/resolv.conf && exec "$@"', options.resolvConf, ...agent] : agent;
  const child = spawn("nsenter", [`--net=${host.netns}`, ...command], {
    env: { ...process.env, CORRAL_URL: url, CORRAL_TOKEN: "", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stderr?.on("data", () => {});
  return child;
}
