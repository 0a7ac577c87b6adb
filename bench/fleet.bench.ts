/**
 * `npm run bench` (the fleet part): three Docker hosts on this machine, each a
 * dockerd in a network namespace of its own (test/fleet.ts), each with its
 * own `corral agent` process joined with a one-time token.
 *
 * 1. One service at scale 30 brought up (`up -d`) and removed (`rm`) through
 *    corral, spread over the three hosts, against the direct path: the same 30
 *    containers created and started through dockerode on the three engines in
 *    parallel (a bridge network per engine), then removed. Median of several
 *    interleaved runs (BENCH_RUNS, default 3), ratios to the direct path.
 * 2. Host loss: with the 30 up, one host's agent SIGKILLed and its engine
 *    stopped; the time until all 30 slots run on the other two hosts and
 *    every published endpoint answers, against the host timeout. Then the
 *    host back (engine, agent on its saved credentials) and the time until
 *    its stale containers are gone (BENCH_HEAL_RUNS, default 2; BENCH_EVENTS=1
 *    prints the stack's events during the heal, ms after the host was lost).
 *
 * The CLI runs in this process (`main`, as bench/up.bench.ts does), the server
 * too; the agents are child processes, as on separate machines.
 * Run it under the lock the Docker tests share:
 *   flock /tmp/corral-docker.lock npx tsx bench/fleet.bench.ts
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer, type RunningServer } from "@corral/local";
import { fleetUnavailable, startFleetHost, type FleetHost } from "../test/fleet.js";
import { agentStateDir } from "../test/support.js";
import { row, type Row } from "./report.js";
import { cli, docker, IMAGE, median, runsFor, sleep, time, until, removeNetwork, type BenchOptions, type BenchPart } from "./support.js";

const SCALE = 30;
const HOST_TIMEOUT_MS = 5000;
const TICK_MS = 500;
/** Fleet host numbers 20..29: the tests use lower ones. */
const HOST_NUMBERS = [21, 22, 23];
const DIRECT_PORT_BASE = 61000;
const cliBin = fileURLToPath(new URL("../packages/cli/bin/corral.js", import.meta.url));


function composeFile(dir: string): string {
  const file = join(dir, "docker-compose.yml");
  writeFileSync(
    file,
    `services:\n  web:\n    image: ${IMAGE}\n    scale: ${SCALE}\n    ports: ["80"]\n    cap_drop: [ALL]\n    cap_add: [NET_BIND_SERVICE]\n`,
  );
  return file;
}

interface ContainerJson {
  name: string;
  host: string;
  state: string;
}
interface Endpoint {
  hostId: string;
  ipAddress: string;
  port: number;
}

const containers = async (stack: string) => JSON.parse(await cli("ps", stack, "--containers", "--format", "json")) as ContainerJson[];
const endpoints = async (stack: string) => (JSON.parse(await cli("inspect", `${stack}/web`)) as { publicEndpoints: Endpoint[] }).publicEndpoints;
const answers = async (e: Endpoint) =>
  (await fetch(`http://${e.ipAddress}:${e.port}/`, { signal: AbortSignal.timeout(2000) }).then((r) => r.text()).catch(() => "")).includes("hello from corral");

/** An agent process for a fleet host: joins with `token`, or starts again on what it saved in its state dir. */
class Agent {
  child: ChildProcess;
  seen = "";
  constructor(server: RunningServer, host: FleetHost, stateDir: string, token?: string) {
    this.child = spawn(
      process.execPath,
      [cliBin, "agent", "--join", server.url, ...(token ? ["--token", token] : []), "--docker-host", host.dockerHost, "--address", host.address, "--state-dir", stateDir],
      { env: { ...process.env, CORRAL_URL: server.url, CORRAL_TOKEN: "" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    // keep reading both pipes (a full pipe would stall the agent); the tail is kept for error messages
    this.child.stdout?.on("data", (d: Buffer) => (this.seen = (this.seen + d.toString()).slice(-4000)));
    this.child.stderr?.on("data", (d: Buffer) => (this.seen = (this.seen + d.toString()).slice(-4000)));
  }
  async connected(name: string, ms = 30_000) {
    const deadline = Date.now() + ms;
    while (!this.seen.includes(`corral agent ${name} connected`)) {
      if (Date.now() > deadline || this.child.exitCode !== null) throw new Error(`agent ${name} did not connect; it said: ${this.seen}`);
      await sleep(50);
    }
  }
  kill(signal: NodeJS.Signals = "SIGKILL") {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}

/** Running containers on each engine, by host name (a stopped engine counts 0). */
async function running(fleet: FleetHost[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const h of fleet) counts.set(h.name, (await h.docker.listContainers().catch(() => [])).length);
  return counts;
}
const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
const spread = (m: Map<string, number>) => [...m.entries()].map(([h, n]) => `${h} ${n}`).join(", ");

/** The direct path: 30 containers, a third on each engine, all created and started in parallel. */
async function directUp(fleet: FleetHost[], stack: string) {
  await Promise.all(
    fleet.map(async (h, hi) => {
      const network = `direct-${stack}`;
      await h.docker.createNetwork({ Name: network, Driver: "bridge" });
      await Promise.all(
        Array.from({ length: SCALE / fleet.length }, async (_, j) => {
          const i = hi * (SCALE / fleet.length) + j;
          await h.docker.getImage(IMAGE).inspect();
          const c = await h.docker.createContainer({
            name: `${stack}-web-${i + 1}`,
            Image: IMAGE,
            Labels: { "bench.stack": stack },
            ExposedPorts: { "80/tcp": {} },
            HostConfig: { PortBindings: { "80/tcp": [{ HostIp: "", HostPort: String(DIRECT_PORT_BASE + i) }] }, NetworkMode: network, CapDrop: ["ALL"], CapAdd: ["NET_BIND_SERVICE"] },
            NetworkingConfig: { EndpointsConfig: { [network]: { Aliases: ["web"] } } },
          });
          await c.start();
          await c.inspect();
        }),
      );
    }),
  );
}
async function directRm(fleet: FleetHost[], stack: string) {
  await Promise.all(
    fleet.map(async (h) => {
      const list = await h.docker.listContainers({ all: true, filters: { label: [`bench.stack=${stack}`] } });
      await Promise.all(
        list.map(async (c) => {
          const container = h.docker.getContainer(c.Id);
          await container.stop({ t: 10 }).catch(() => {});
          await container.remove({ force: true, v: true });
        }),
      );
      await removeNetwork(h.docker, `direct-${stack}`);
    }),
  );
}


export async function fleetBench(o: BenchOptions): Promise<BenchPart> {
  const RUNS = runsFor(o, 2, 3);
  const HEAL_RUNS = Number(process.env.BENCH_HEAL_RUNS ?? 2);
  const why = await fleetUnavailable();
  if (why) return { rows: [], notes: [`skipped (${why})`] };
  await docker.getImage(IMAGE).inspect().catch(() => {
    throw new Error(`${IMAGE} is missing: run 'npm run images'`);
  });

  const dataDir = mkdtempSync(join(tmpdir(), "corral-bench-fleet-data-"));
  const stateRoot = mkdtempSync(join(tmpdir(), "corral-bench-fleet-state-"));
  const composeDir = mkdtempSync(join(tmpdir(), "corral-bench-fleet-compose-"));
  const fleet: FleetHost[] = [];
  const agents = new Map<string, Agent>();
  let server: RunningServer | undefined;
  let peak = 0;
  const notePeak = async () => (peak = Math.max(peak, total(await running(fleet))));
  const rows: Row[] = [];
  const notes: string[] = [];

  // once, whoever asks first (the finally below, or Ctrl-C while a step is under way): the other waits for the same
  let stopping: Promise<void> | undefined;
  const stopAll = () => (stopping ??= stopEverything());
  const stopEverything = async () => {
    for (const a of agents.values()) a.kill();
    await server?.stop().catch((e: unknown) => console.error(`server stop: ${String(e)}`));
    server = undefined;
    for (const h of fleet) await h.remove().catch((e: unknown) => console.error(`removing ${h.name}: ${String(e)}`));
    fleet.length = 0;
    rmSync(stateRoot, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(composeDir, { recursive: true, force: true });
    rmSync(agentStateDir, { recursive: true, force: true }); // made by test/support.ts on import; no agent here uses it
  };
  // Ctrl-C still removes the hosts, namespaces and containers
  const onSignal = () => {
    console.error("interrupted: cleaning up");
    void stopAll().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  try {
    server = await startServer({ port: 0, dataDir, hostId: "bench", agent: false, hostTimeoutMs: HOST_TIMEOUT_MS, tickMs: TICK_MS });
    process.env.CORRAL_URL = server.url;
    process.env.CORRAL_TOKEN = server.token;
    for (const n of HOST_NUMBERS) fleet.push(await startFleetHost(n, `fb${n}`, [IMAGE]));
    const startAgent = (h: FleetHost, token?: string) => {
      const agent = new Agent(server!, h, join(stateRoot, h.name), token);
      agents.set(h.name, agent);
      return agent;
    };
    for (const h of fleet) {
      const token = (await cli("host", "add", h.name)).split("\n")[1]!.trim();
      await startAgent(h, token).connected(h.name);
    }

    // 1. up and rm: corral against the direct path
    const file = composeFile(composeDir);
    const up = async (stack: string) => {
      await cli("up", "-d", "-f", file, "-s", stack);
      const counts = await running(fleet);
      if (total(counts) !== SCALE) throw new Error(`after up -d ${stack}: ${total(counts)} containers running, not ${SCALE} (${spread(counts)})`);
      return counts;
    };
    const rm = (stack: string) => cli("rm", "--type", "stack", stack);
    const warm = await up("warm"); // first run warms caches (modules, JIT, engines)
    const spreads = new Set([spread(warm)]);
    await notePeak();
    await rm("warm");
    const t = { corralUp: [] as number[], corralRm: [] as number[], directUp: [] as number[], directRm: [] as number[] };
    for (let r = 0; r < RUNS; r++) {
      let counts = new Map<string, number>();
      t.corralUp.push(await time(async () => (counts = await up(`f${r}c`))));
      spreads.add(spread(counts));
      await notePeak();
      t.corralRm.push(await time(() => rm(`f${r}c`)));
      t.directUp.push(await time(() => directUp(fleet, `f${r}d`)));
      await notePeak();
      t.directRm.push(await time(() => directRm(fleet, `f${r}d`)));
    }
    rows.push(
      row("up -d", `${SCALE} containers, ${fleet.length} hosts`, "every container running (direct: the same containers through dockerode on the 3 engines at once)", { corral: t.corralUp, direct: t.directUp }),
      row("rm", `${SCALE} containers, ${fleet.length} hosts`, "every container gone", { corral: t.corralRm, direct: t.directRm }),
    );
    notes.push(`placement (running per host after up -d): ${[...spreads].join(" | ")}`);

    // 2. host loss and return
    const heal: number[] = [];
    const back: number[] = [];
    const backFromStart: number[] = [];
    const stopped: number[] = [];
    const disconnected: number[] = [];
    const runningAt: number[] = [];
    for (let r = 0; r < HEAL_RUNS; r++) {
      const stack = `heal${r}`;
      // every host active again (the one back from the previous run too) before placing
      await until(async () => (JSON.parse(await cli("host", "ls", "--format", "json")) as Array<{ state: string }>).every((h) => h.state === "active"), "every host active", 30_000, 200);
      await up(stack);
      for (const e of await endpoints(stack)) await until(() => answers(e), `${e.ipAddress}:${e.port} to answer`, 15_000);
      const lost = fleet[(fleet.length - 1 - r) % fleet.length]!;
      const others = new Set(fleet.filter((h) => h !== lost).map((h) => h.name));

      const lostAt = performance.now();
      const lostWall = Date.now();
      agents.get(lost.name)!.kill("SIGKILL");
      await lost.stopEngine();
      stopped.push(performance.now() - lostAt);
      // one poll loop, so the steps on the way are timed from the same moment: the host seen as disconnected,
      // every slot running off it, every endpoint on the other hosts answering
      let seenLost = 0;
      let allRunning = 0;
      await until(async () => {
        if (!seenLost && (JSON.parse(await cli("host", "ls", "--format", "json")) as Array<{ id: string; state: string }>).some((h) => h.id === lost.name && h.state === "disconnected"))
          seenLost = performance.now() - lostAt;
        if (!allRunning) {
          const names = new Set((await containers(stack)).filter((c) => c.state === "running" && others.has(c.host)).map((c) => c.name));
          if (names.size === SCALE) allRunning = performance.now() - lostAt;
          else return false;
        }
        const live = (await endpoints(stack)).filter((e) => others.has(e.hostId));
        return live.length === SCALE && (await Promise.all(live.map(answers))).every(Boolean);
      }, `all ${SCALE} slots of ${stack} running off ${lost.name} and answering`);
      heal.push(performance.now() - lostAt);
      disconnected.push(seenLost);
      runningAt.push(allRunning);
      if (process.env.BENCH_EVENTS === "1") {
        // what the controller did, ms after the SIGKILL (for looking into the heal time)
        for (const line of (await cli("events", stack)).split("\n")) {
          const at = Date.parse(line.split(/\s+/)[0] ?? "");
          if (at >= lostWall) console.log(`  +${String(at - lostWall).padStart(6)} ms  ${line.slice(line.indexOf(" ")).trim().slice(0, 160)}`);
        }
      }
      const afterHeal = await running(fleet);
      peak = Math.max(peak, total(afterHeal));

      // back: engine, then the agent on its saved credentials (no token)
      const startAt = performance.now();
      await lost.startEngine();
      await notePeak();
      const agent = startAgent(lost);
      await agent.connected(lost.name);
      const connectedAt = performance.now();
      await until(
        async () => (await lost.docker.listContainers({ all: true, filters: { label: [`io.corral.stack=${stack}`] } })).length === 0,
        `${lost.name}'s stale containers of ${stack} to go`,
      );
      back.push(performance.now() - connectedAt);
      backFromStart.push(performance.now() - startAt);
      notes.push(`heal run ${r + 1}: lost ${lost.name}; after heal running ${spread(afterHeal)}`);
      await notePeak();
      await rm(stack);
    }
    rows.push(
      row("host loss: heal", `${SCALE / fleet.length} of ${SCALE} slots`, `all ${SCALE} running on the other hosts and answering, from the agent's SIGKILL and engine stop (host timeout ${HOST_TIMEOUT_MS} ms, tick ${TICK_MS} ms)`, { corral: heal }),
      row("host back: stale gone", `${SCALE / fleet.length} containers`, "the returned host's re-placed containers removed, from its agent's connection", { corral: back }),
    );
    notes.push(
      `host loss, on the way (medians from the SIGKILL): engine stopped ${median(stopped).toFixed(0)} ms, host seen disconnected ${median(disconnected).toFixed(0)} ms, all ${SCALE} running ${median(runningAt).toFixed(0)} ms; host back: stale gone ${median(backFromStart).toFixed(0)} ms after its engine started`,
      "Swarm: not measured on the fleet (the hosts' network namespaces are not routed to each other, so their engines cannot form a swarm)",
    );
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await stopAll();
  }

  notes.push(`containers at once: ${peak}`);
  return { rows, notes };
}
