/**
 * `npm run bench` (the overlay part, issue 13): TCP throughput between two
 * containers of one stack on two hosts (over corral's VXLAN overlay, agents
 * with CORRAL_OVERLAY=1) against TCP throughput between the two hosts
 * themselves over the same link: the underlay the VXLAN packets take (each
 * host's veth to this namespace, forwarded here). The goal: overlay at least
 * 70% of host to host.
 *
 * The hosts are dockerds in network namespaces of their own on a routed bench
 * (test/fleet.ts: startFleetHost, routeFleet), the agents run inside them,
 * the control plane in this process on CONTROL_ADDRESS, as test/overlay.test.ts
 * sets it up. A stack of two busybox sleepers, `sink` pinned to host A and
 * `source` to host B. The measurement is a small Node TCP sender and
 * receiver (this machine's node, not anything in the image) run in a network
 * namespace with nsenter: the containers' (`nsenter -t PID -n`) for the
 * overlay, the hosts' (`nsenter --net=`) for host to host. One TCP stream,
 * from B to A both times: the sender writes 1 MiB buffers as fast as
 * backpressure lets it for BENCH_SECONDS (default 3), then ends; the
 * receiver counts bytes from the first to the end. One warm-up of each, then
 * BENCH_RUNS (default 5) of each, alternating; medians in Gbit/s.
 * If iperf3 is on PATH, one iperf3 run of each is reported as well.
 *
 * Run it under the lock the Docker tests share:
 *   flock /tmp/corral-docker.lock npx tsx bench/overlay.bench.ts
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { startServer, type RunningServer } from "@corral/local";
import { CONTROL_ADDRESS, fleetUnavailable, routeFleet, spawnAgentInside, startFleetHost, type FleetHost } from "../test/fleet.js";
import { agentStateDir, outputContains } from "../test/support.js";
import { cli, median, sleep, until } from "./support.js";

const run = promisify(execFile);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
/** Fleet host numbers 31, 32: the tests use 2..12, the fleet bench 21..23. */
const HOST_NUMBERS = [31, 32] as const;
const PORT = 5201;
const BUSYBOX = "corral-busybox:latest";
const GOAL = 0.7;


/**
 * The sender and the receiver, one script: `recv PORT` listens on 0.0.0.0,
 * says "listening", takes one connection, counts its bytes and prints
 * {bytes, seconds} (first byte to end) as JSON; `send HOST PORT SECONDS`
 * connects (retrying while the path is not there yet, up to 30 s), writes
 * 1 MiB buffers for SECONDS as backpressure allows, then ends.
 */
const TOOL = `import net from "node:net";
const [mode, a, b, c] = process.argv.slice(2);
if (mode === "recv") {
  const server = net.createServer((sock) => {
    server.close();
    let bytes = 0;
    let first = 0;
    sock.on("data", (d) => {
      if (!first) first = performance.now();
      bytes += d.length;
    });
    sock.on("end", () => {
      const seconds = (performance.now() - first) / 1000;
      process.stdout.write(JSON.stringify({ bytes, seconds }) + "\\n");
      sock.end();
    });
    sock.on("error", (e) => {
      console.error(String(e));
      process.exit(1);
    });
  });
  server.listen(Number(a), "0.0.0.0", () => process.stdout.write("listening\\n"));
} else if (mode === "send") {
  const host = a, port = Number(b), seconds = Number(c);
  const buf = Buffer.alloc(1 << 20, 0x5a);
  const deadline = Date.now() + 30000;
  const attempt = () => {
    const sock = net.connect({ host, port });
    sock.setTimeout(2000, () => sock.destroy(new Error("connect timed out")));
    sock.once("error", (e) => {
      if (Date.now() > deadline) {
        console.error(String(e));
        process.exit(1);
      }
      setTimeout(attempt, 250);
    });
    sock.once("connect", () => {
      sock.setTimeout(0);
      sock.removeAllListeners("error");
      sock.on("error", (e) => {
        console.error(String(e));
        process.exit(1);
      });
      const end = performance.now() + seconds * 1000;
      const pump = () => {
        while (performance.now() < end) if (!sock.write(buf)) return void sock.once("drain", pump);
        sock.end();
      };
      pump();
    });
  };
  attempt();
} else {
  console.error("usage: recv PORT | send HOST PORT SECONDS");
  process.exit(2);
}
`;

/** A process's stdout and stderr, and its exit. */
function child(argv: string[]) {
  const p: ChildProcess = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  p.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  p.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const done = new Promise<void>((resolve, reject) =>
    p.on("exit", (code, signal) => (code === 0 ? resolve() : reject(new Error(`${argv.join(" ")} exited ${code ?? signal}: ${err.trim()}`)))),
  );
  done.catch(() => {}); // looked at by whoever awaits it
  return { p, done, out: () => out, err: () => err };
}

/** nsenter prefixes: a container's network namespace (by its pid), a fleet host's (by its file). */
const inPid = (pid: number) => ["nsenter", "-t", String(pid), "-n"];
const inNetns = (h: FleetHost) => ["nsenter", `--net=${h.netns}`];

/** One TCP stream from `from` to `to`'s `address`: Gbit/s as the receiver counted. */
async function throughput(tool: string, to: string[], from: string[], address: string, seconds = SECONDS): Promise<number> {
  const recv = child([...to, process.execPath, tool, "recv", String(PORT)]);
  try {
    const deadline = Date.now() + 10_000;
    while (!recv.out().includes("listening")) {
      if (Date.now() > deadline || recv.p.exitCode !== null) throw new Error(`the receiver did not listen: ${recv.err()}`);
      await sleep(20);
    }
    const send = child([...from, process.execPath, tool, "send", address, String(PORT), String(seconds)]);
    await Promise.race([Promise.all([send.done, recv.done]), sleep(60_000 + seconds * 1000).then(() => Promise.reject(new Error(`no result in ${60 + seconds} s`)))]);
    const line = recv.out().split("\n").find((l) => l.startsWith("{"));
    if (!line) throw new Error(`the receiver said nothing: ${recv.err()}`);
    const { bytes, seconds: s } = JSON.parse(line) as { bytes: number; seconds: number };
    if (bytes < 1 << 20) throw new Error(`only ${bytes} bytes arrived`);
    return (bytes * 8) / s / 1e9;
  } finally {
    if (recv.p.exitCode === null) recv.p.kill("SIGKILL");
  }
}

/** iperf3 (when installed): one run, Gbit/s at the receiver. */
async function iperf3(to: string[], from: string[], address: string): Promise<number> {
  const server = child([...to, "iperf3", "-s", "-1", "-p", String(PORT + 1)]);
  try {
    await sleep(500);
    const { stdout } = await run(from[0]!, [...from.slice(1), "iperf3", "-c", address, "-p", String(PORT + 1), "-t", String(SECONDS), "-J"], { maxBuffer: 16 << 20 });
    const report = JSON.parse(stdout) as { end: { sum_received: { bits_per_second: number } } };
    return report.end.sum_received.bits_per_second / 1e9;
  } finally {
    if (server.p.exitCode === null) server.p.kill("SIGKILL");
  }
}

const hasIperf3 = () => run("sh", ["-c", "command -v iperf3"]).then(() => true, () => false);

/** What `ip -d link show DEV` says in a namespace, on one line (the MTU and the VXLAN settings), or why not. */
async function linkDetails(ns: string[], dev: string): Promise<string> {
  try {
    const { stdout } = await run(ns[0]!, [...ns.slice(1), "ip", "-d", "link", "show", "dev", dev]);
    return stdout.replace(/\s+/g, " ").trim();
  } catch (e) {
    return `(${String(e).split("\n")[0]})`;
  }
}
const mtuOf = (details: string) => /\bmtu (\d+)/.exec(details)?.[1] ?? "?";

interface Row {
  name: string;
  host: string;
  ip: string;
  state: string;
  docker: string;
}


async function runBench() {
  const why = await fleetUnavailable();
  if (why) {
    console.log(`overlay bench: skipped (${why})`);
    return;
  }
  const dataDir = mkdtempSync(join(tmpdir(), "corral-bench-overlay-data-"));
  const stateRoot = mkdtempSync(join(tmpdir(), "corral-bench-overlay-state-"));
  const work = mkdtempSync(join(tmpdir(), "corral-bench-overlay-"));
  const tool = join(work, "tcp.mjs");
  writeFileSync(tool, TOOL);
  const fleet: FleetHost[] = [];
  const agents: ChildProcess[] = [];
  let server: RunningServer | undefined;
  let unroute: () => Promise<void> = async () => {};
  const rows: string[] = [];

  let stopping: Promise<void> | undefined;
  const stopAll = () => (stopping ??= stopEverything());
  const stopEverything = async () => {
    for (const a of agents) if (a.exitCode === null && a.signalCode === null) a.kill("SIGKILL");
    await server?.stop().catch((e: unknown) => console.error(`server stop: ${String(e)}`));
    server = undefined;
    for (const h of fleet) await h.remove().catch((e: unknown) => console.error(`removing ${h.name}: ${String(e)}`));
    fleet.length = 0;
    await unroute().catch((e: unknown) => console.error(`unroute: ${String(e)}`));
    for (const d of [dataDir, stateRoot, work, agentStateDir]) rmSync(d, { recursive: true, force: true });
  };
  const onSignal = () => {
    console.error("interrupted: cleaning up");
    void stopAll().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  try {
    unroute = await routeFleet();
    server = await startServer({ port: 0, dataDir, hostId: "bench", agent: false, hostTimeoutMs: 5000, tickMs: 300, listen: CONTROL_ADDRESS });
    process.env.CORRAL_URL = server.url;
    process.env.CORRAL_TOKEN = server.token;
    const [a, b] = [await startFleetHost(HOST_NUMBERS[0], `ob${HOST_NUMBERS[0]}`, [BUSYBOX]), await startFleetHost(HOST_NUMBERS[1], `ob${HOST_NUMBERS[1]}`, [BUSYBOX])];
    fleet.push(a, b);
    for (const [h, zone] of [
      [a, "sink"],
      [b, "source"],
    ] as const) {
      const token = (await cli("host", "add", h.name, "--label", `zone=${zone}`)).split("\n")[1]!.trim();
      const agent = spawnAgentInside(h, server.url, { token, stateDir: join(stateRoot, h.name), env: { CORRAL_OVERLAY: "1" } });
      agents.push(agent);
      await outputContains(agent, `corral agent ${h.name} connected`);
    }

    const sleeper = `["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]`;
    const service = (zone: string) => `  ${zone}:\n    image: ${BUSYBOX}\n    command: ${sleeper}\n    cap_drop: [ALL]\n    deploy:\n      placement:\n        constraints: [node.labels.zone==${zone}]\n`;
    const file = join(work, "docker-compose.yml");
    writeFileSync(file, `services:\n${service("sink")}${service("source")}`);
    await cli("up", "-d", "-f", file, "-s", "tp");
    const ps = JSON.parse(await cli("ps", "tp", "--containers", "--format", "json")) as Row[];
    const sink = ps.find((c) => c.name === "tp-sink-1");
    const source = ps.find((c) => c.name === "tp-source-1");
    if (sink?.host !== a.name || source?.host !== b.name || sink.state !== "running" || source.state !== "running")
      throw new Error(`the stack is not placed as asked: ${ps.map((c) => `${c.name} ${c.host} ${c.state}`).join(", ")}`);
    const pid = async (h: FleetHost, id: string) => {
      const pid = (await h.docker.getContainer(id).inspect()).State.Pid;
      if (!pid) throw new Error(`${id} on ${h.name} has no pid`);
      return pid;
    };
    const sinkNs = inPid(await pid(a, sink.docker));
    const sourceNs = inPid(await pid(b, source.docker));
    const aNs = inNetns(a);
    const bNs = inNetns(b);

    const overlay = () => throughput(tool, sinkNs, sourceNs, sink.ip);
    const underlay = () => throughput(tool, aNs, bNs, a.address);
    // the overlay's routes follow the control plane within seconds: a short stream until one gets through
    await until(() => throughput(tool, sinkNs, sourceNs, sink.ip, 0.5).then(() => true), `source (${b.name}) to reach sink ${sink.ip} (${a.name}) over the overlay`);
    await underlay(); // warm-up, both paths
    await overlay();
    const o: number[] = [];
    const u: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      u.push(await underlay());
      o.push(await overlay());
    }
    const [om, um] = [median(o), median(u)];
    const runs = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(", ");
    const fmt = (g: number) => g.toFixed(2).padStart(6);
    rows.push(
      `container to container (overlay, ${source.ip} on ${b.name} → ${sink.ip} on ${a.name}) ${fmt(om)} Gbit/s   (runs: ${runs(o)})`,
      `host to host (underlay, ${b.address} → ${a.address}, the path the VXLAN packets take) ${fmt(um)} Gbit/s   (runs: ${runs(u)})`,
      `overlay/host-to-host ${((om / um) * 100).toFixed(0)}%   (goal ≥ ${GOAL * 100}%: ${om / um >= GOAL ? "met" : "NOT met"})`,
    );
    if (await hasIperf3()) {
      const io = await iperf3(sinkNs, sourceNs, sink.ip).catch(() => NaN);
      const iu = await iperf3(aNs, bNs, a.address).catch(() => NaN);
      rows.push(`iperf3 (one run each): overlay ${fmt(io)} Gbit/s  host to host ${fmt(iu)} Gbit/s  ratio ${((io / iu) * 100).toFixed(0)}%`);
    } else rows.push("iperf3: not on PATH (not measured)");
    const vx = await linkDetails(aNs, "corral.vx");
    const underMtu = mtuOf(await linkDetails(aNs, `c${HOST_NUMBERS[0]}-in`));
    const eth0 = mtuOf(await linkDetails(sinkNs, "eth0"));
    rows.push(`MTU: overlay device corral.vx ${mtuOf(vx)}, underlay veth ${underMtu}, the containers' eth0 ${eth0}`, `corral.vx on ${a.name}: ${vx}`);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await stopAll();
  }

  console.log(`\ncorral overlay bench: one TCP stream, ${SECONDS} s each, medians of ${RUNS} alternating runs (a Node sender and receiver in the network namespaces)`);
  for (const r of rows) console.log(r);
}

runBench().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
