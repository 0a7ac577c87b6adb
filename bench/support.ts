import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Docker from "dockerode";
import { dockerOptions } from "@corral/agent";
import { main } from "@corral/cli";
import { startServer } from "@corral/local";

/** What the benchmarks share: the engine, timing, medians, and a single-node swarm for the side-by-side. */
export const docker = new Docker(dockerOptions());
export const IMAGE = "corral-hello:latest";
export const silent = { out: () => {}, err: (l: string) => process.stderr.write(`${l}\n`) };

export { median } from "./report.js";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The CLI in this process, for the fleet benches (CORRAL_URL and CORRAL_TOKEN set): its stdout, or an error with what it said. */
export async function cli(...args: string[]): Promise<string> {
  let out = "";
  let err = "";
  const code = await main(["node", "corral", ...args], { out: (l: string) => (out += `${l}\n`), err: (l: string) => (err += `${l}\n`) });
  if (code !== 0) throw new Error(`corral ${args.join(" ")} failed (${code}): ${err.trim()}`);
  return out;
}

/** Wait until `check` holds (a check that throws counts as not yet), or fail saying what did not happen. */
export async function until(check: () => Promise<boolean>, what: string, ms = 120_000, every = 100): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, every));
  }
  throw new Error(`timed out (${ms} ms) waiting for ${what}`);
}

export const time = async (fn: () => Promise<unknown>) => {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
};

/**
 * Make the engine a single-node swarm unless it is one (or BENCH_SWARM=0).
 * Returns why Swarm cannot be measured, if it cannot, and how to leave it.
 */
export async function joinSwarm(): Promise<{ problem?: string; leave: () => Promise<void> }> {
  const stay = async () => {};
  if (process.env.BENCH_SWARM === "0") return { problem: "disabled (BENCH_SWARM=0)", leave: stay };
  try {
    const info = await docker.info();
    if (info.Swarm?.LocalNodeState === "active") return { leave: stay };
    await docker.swarmInit({ ListenAddr: "127.0.0.1:2377", AdvertiseAddr: "127.0.0.1:2377" });
    return { leave: () => docker.swarmLeave({ force: true }).catch(() => {}) };
  } catch (e) {
    return { problem: (e as Error).message.split("\n")[0] ?? "unknown", leave: stay };
  }
}

/**
 * A corral server in this process (as `npm start` runs it), the CLI pointed at
 * it, and the engine a swarm when it can be: what each benchmark starts with.
 */
export async function benchSetup(name: string) {
  await docker.getImage(IMAGE).inspect().catch(() => {
    throw new Error(`${IMAGE} is missing: run 'npm run images'`);
  });
  const server = await startServer({ port: 0, dataDir: mkdtempSync(join(tmpdir(), `corral-bench-${name}-`)), hostId: "bench" });
  process.env.CORRAL_URL = server.url;
  process.env.CORRAL_TOKEN = server.token;
  const swarm = await joinSwarm();
  return { server, swarm };
}

/** Run a tool a user would type (docker, docker-compose): its stdout, or an error with what it said. */
export function tool(cmd: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { env: { ...process.env, ...env }, maxBuffer: 16 << 20 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${cmd} ${args.join(" ")}: ${stderr.trim() || error.message}`)) : resolve(stdout),
    ),
  );
}

/**
 * `docker-compose down` until it succeeds: Docker 20.10 now and then refuses to remove the project's network
 * just after its containers ("has active endpoints", the endpoints' cleanup lagging), and a user types it
 * again. The time is until the project is gone; at most three tries, any other error at once.
 */
export async function composeDown(project: string, file: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await tool("docker-compose", ["-p", project, "-f", file, "down"]);
      return;
    } catch (e) {
      if (attempt >= 3 || !/has active endpoints/.test(String(e))) throw e;
    }
  }
}

/** Why docker-compose (Debian's, v1) cannot be measured here, if it cannot. */
export async function composeProblem(): Promise<string | undefined> {
  if (process.env.BENCH_COMPOSE === "0") return "disabled (BENCH_COMPOSE=0)";
  return tool("docker-compose", ["version", "--short"]).then(
    () => undefined,
    () => "docker-compose is not installed (apt-get install docker-compose)",
  );
}

/** Wait until no container carries `label` (key=value): what `docker stack rm` leaves to its caller. */
export async function goneByLabel(label: string) {
  await until(async () => (await docker.listContainers({ all: true, filters: { label: [label] } })).length === 0, `containers labelled ${label} to go`, 120_000, 20);
}

/** What bench/run.ts hands each part: quick (a small subset, a few runs) or the full set. */
export interface BenchOptions {
  quick: boolean;
}
/** What each part gives back: its rows of the table, and notes (what was not measured, and why) printed beneath it. */
export interface BenchPart {
  rows: import("./report.js").Row[];
  notes: string[];
}
/** BENCH_RUNS if set, else the part's own count for a quick or a full run. */
export const runsFor = (o: BenchOptions, quick: number, full: number) => Number(process.env.BENCH_RUNS ?? (o.quick ? quick : full));

/**
 * Remove a network once the engine has let go of its endpoints (it may lag a force-removal by a moment).
 * Docker 20.10 now and then keeps an endpoint of a removed container for good ("has active endpoints" with
 * no container on it, until dockerd restarts): then the network is left, said on stderr, and the bench goes on
 * (each run's names are its own: see RUN).
 */
export async function removeNetwork(engine: Docker, name: string) {
  try {
    await until(async () => (await engine.getNetwork(name).remove(), true), `network ${name} removed`, 5_000, 50);
  } catch {
    process.stderr.write(`bench: the engine keeps network ${name} (an endpoint it did not let go); left in place\n`);
  }
}

/** A tag of this run, in the names of what it makes: what an earlier run left cannot be in its way. */
export const RUN = Date.now().toString(36).slice(-4);

/** `docker stack rm` returns before its containers and network are gone: wait for both, as a redeploy must. */
export async function stackRm(stack: string) {
  await tool("docker", ["stack", "rm", stack]);
  await goneByLabel(`com.docker.stack.namespace=${stack}`);
  await until(async () => (await docker.listNetworks({ filters: { label: [`com.docker.stack.namespace=${stack}`] } })).length === 0, `${stack}'s network to go`, 60_000, 20);
}
