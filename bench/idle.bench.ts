/**
 * `npm run bench -- --only idle`: what corral costs while nothing happens.
 * A control plane (in this process, as `npm start` runs it, without its
 * local agent) and one `corral agent` (a process of its own, on the local
 * Docker engine, joined as a node joins) with one stack of two services
 * running; then nothing for BENCH_IDLE_SECONDS (60; the target is stated
 * over 300). Measured: the agent's CPU (utime + stime from /proc) and its
 * largest RSS, sampled each second; the server's CPU (this process, idle
 * otherwise); and every request the control plane and the agent make to the
 * stores (counted on the wire to the stand-ins), per minute.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "@corral/local";
import { row, type Row } from "./report.js";
import { cli, docker, IMAGE, RUN, sleep, until, type BenchOptions, type BenchPart } from "./support.js";

const bin = fileURLToPath(new URL("../packages/cli/bin/corral.js", import.meta.url));
const TICKS_PER_SECOND = 100; // Linux's USER_HZ, what /proc/PID/stat counts CPU time in

/** CPU seconds (user + system) a process has used, from /proc/PID/stat. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND; // fields 14 and 15 of stat(5)
}
/** A process's resident size and its two parts, in MB (/proc/PID/status): its own memory, and pages of files (the node binary's among them, shared with every other Node process). */
function residentMb(pid: number) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const mb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024;
  return { rss: mb("VmRSS"), anon: mb("RssAnon"), file: mb("RssFile") };
}

export async function idleBench(o: BenchOptions): Promise<BenchPart> {
  const seconds = Number(process.env.BENCH_IDLE_SECONDS ?? (o.quick ? 20 : 60));
  const counts = { dynamo: 0, sqs: 0 };
  const server = await startServer({
    port: 0,
    dataDir: mkdtempSync(join(tmpdir(), "corral-bench-idle-")),
    agent: false,
    storeTap: (direction, body) => {
      if (direction !== "request") return;
      counts.dynamo++;
      if (process.env.BENCH_IDLE_TRACE) process.stderr.write(`table: ${body.slice(0, 160)}\n`);
    },
    queueTap: (direction) => void (direction === "request" && counts.sqs++),
  });
  process.env.CORRAL_URL = server.url;
  process.env.CORRAL_TOKEN = server.token;
  const dir = mkdtempSync(join(tmpdir(), "corral-bench-idle-agent-"));
  const stack = `idle${RUN}`;
  const joined = (await cli("host", "add", `idle-${RUN}`)).split("\n")[1]!.trim();
  // the overlay as a node runs it by default (auto: on where it can be made, as here as root); BENCH_IDLE_OVERLAY=off without
  const overlay = process.env.BENCH_IDLE_OVERLAY ?? "auto";
  const agent = spawn(process.execPath, [bin, "agent", "--join", server.url, "--token", joined, "--state-dir", join(dir, "state"), "--overlay", overlay], {
    env: { ...process.env, CORRAL_TOKEN: "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let said = "";
  agent.stdout.on("data", (d: Buffer) => (said += d.toString()));
  agent.stderr.on("data", (d: Buffer) => (said += d.toString()));
  const rows: Row[] = [];
  try {
    await until(async () => said.includes("connected"), "the agent to connect", 60_000);
    const file = join(dir, "docker-compose.yml");
    writeFileSync(file, `services:\n  web:\n    image: ${IMAGE}\n    cap_drop: [ALL]\n  worker:\n    image: ${IMAGE}\n    cap_drop: [ALL]\n`);
    await cli("up", "-d", "-s", stack, "-f", file);
    await until(async () => (await docker.listContainers({ filters: { label: [`io.corral.stack=${stack}`] } })).length === 2, "the stack's two containers running", 60_000);
    await sleep(5_000); // what follows the deploy (reports, the first reconcile) is not idle
    const start = { agent: cpuSeconds(agent.pid!), server: process.cpuUsage(), at: performance.now(), dynamo: counts.dynamo, sqs: counts.sqs };
    const samples: Array<ReturnType<typeof residentMb> & { at: number }> = [];
    for (let s = 0; s < seconds; s++) {
      samples.push({ ...residentMb(agent.pid!), at: s });
      await sleep(1_000);
    }
    const top = samples.reduce((a, b) => (b.rss > a.rss ? b : a));
    const middle = [...samples].sort((a, b) => a.rss - b.rss)[Math.floor(samples.length / 2)]!;
    const wall = (performance.now() - start.at) / 1000;
    const agentCpu = ((cpuSeconds(agent.pid!) - start.agent) / wall) * 100;
    const used = process.cpuUsage(start.server);
    const serverCpu = ((used.user + used.system) / 1e6 / wall) * 100;
    const perMinute = (n: number) => ((n * 60) / wall).toFixed(0);
    const size = `${seconds} s, 1 host (overlay ${overlay}), 1 stack of 2 services`;
    rows.push(row("idle agent", size, "CPU (user + system, /proc) and largest RSS of `corral agent`, sampled each second", {}, `CPU ${agentCpu.toFixed(2)}% of a core, RSS at most ${top.rss.toFixed(0)} MB (at ${top.at} s: ${top.anon.toFixed(0)} its own, ${top.file.toFixed(0)} pages of files), median ${middle.rss.toFixed(0)} MB`));
    rows.push(
      row(
        "idle server",
        size,
        "requests to the stores (on the wire to the stand-ins) and CPU of the control plane",
        {},
        `${perMinute(counts.dynamo - start.dynamo)} table requests/min, ${perMinute(counts.sqs - start.sqs)} queue requests/min (the agent's included), CPU ${serverCpu.toFixed(2)}% of a core`,
      ),
    );
  } finally {
    await cli("rm", "--type", "stack", stack).catch(() => {});
    await until(async () => (await docker.listContainers({ all: true, filters: { label: [`io.corral.stack=${stack}`] } })).length === 0, "the stack gone", 60_000).catch(() => {});
    agent.kill("SIGTERM");
    await new Promise((r) => (agent.exitCode !== null ? r(undefined) : agent.once("exit", r)));
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return { rows, notes: [] };
}
