/**
 * `npm run bench -- --only scale`: the control plane on the embedded stores,
 * under load and at size, with simulated hosts (real agents on engines in
 * memory, bench/fake-hosts.ts, in a process of their own). No Docker: what
 * is timed is corral's own work (API, event store, queues, controller).
 *
 *   1. LIVE stacks of one service are brought up (the first `up` of each).
 *   2. RATE `up --upgrade` a second for SECONDS, spread over the LIVE stacks
 *      (each gets one a second), each with a file that differs from the last
 *      (an env value), open loop: a request goes when it is due, answered or
 *      not. Then every stack must come to rest on the last change it
 *      accepted, as its simulated engine runs it: nothing lost.
 *   3. Empty stacks are added until the table holds STACKS; then `ps STACK`
 *      and `inspect STACK/SERVICE` are timed, the reconcile tick's duration
 *      read from the server's log, and a stack with a long history loaded
 *      against one with a short history (snapshots keep that O(1)).
 *
 * BENCH_SCALE_STACKS (10000), _LIVE (200), _HOSTS (100), _RATE (200), _SECONDS (60).
 */
import { fork } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "@corral/local";
import { eachAtMost, type Logger } from "@corral/core";
import { dynamoClient, EventStore } from "@corral/store";
import type { FakeRunning } from "./fake-hosts.js";
import { median, row, type Row } from "./report.js";
import { until, type BenchOptions, type BenchPart } from "./support.js";

const setting = (name: string, full: number, quick: number, o: BenchOptions) => Number(process.env[`BENCH_SCALE_${name}`] ?? (o.quick ? quick : full));
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]! : Number.NaN;
};
const f1 = (x: number) => (Math.round(x * 10) / 10).toString();

/** One HTTP call on a kept-alive connection: its status, body and how long it took. */
function caller(base: string, token: string) {
  const agent = new Agent({ keepAlive: true, maxSockets: 128 });
  const url = new URL(base);
  return (method: string, path: string, body?: unknown) =>
    new Promise<{ status: number; body: unknown; ms: number }>((resolve, reject) => {
      const t0 = performance.now();
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        { host: url.hostname, port: url.port, path, method, agent, headers: { authorization: `Bearer ${token}`, ...(data ? { "content-type": "application/json", "content-length": Buffer.byteLength(data) } : {}) } },
        (res) => {
          const parts: Buffer[] = [];
          res.on("data", (c: Buffer) => parts.push(c));
          res.on("end", () => {
            const text = Buffer.concat(parts).toString();
            resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as unknown) : undefined, ms: performance.now() - t0 });
          });
        },
      );
      req.on("error", reject);
      req.end(data);
    });
}

const composeFor = (rev: number) => ({ files: [{ name: "docker-compose.yml", document: { services: { web: { image: "corral-hello:latest", cap_drop: ["ALL"], environment: { REV: String(rev) } } } } }] });

export async function scaleBench(o: BenchOptions): Promise<BenchPart> {
  const STACKS = setting("STACKS", 10_000, 1_000, o);
  const LIVE = setting("LIVE", 200, 50, o);
  const HOSTS = setting("HOSTS", 100, 20, o);
  const RATE = setting("RATE", 200, 50, o);
  const SECONDS = setting("SECONDS", 60, 10, o);
  const ticks: Array<{ ms: number; stacks: number; acted: number; full: boolean }> = [];
  const log: Logger = {
    debug: (m, f) => void (m === "reconcile tick" && ticks.push(f as (typeof ticks)[number])),
    info: () => {},
    warn: (m, f) => process.stderr.write(`server: ${m} ${JSON.stringify(f ?? {})}\n`),
    error: (m, f) => process.stderr.write(`server: ${m} ${JSON.stringify(f ?? {})}\n`),
  };
  const server = await startServer({ port: 0, dataDir: mkdtempSync(join(tmpdir(), "corral-bench-scale-")), agent: false, mutationsPerMinute: 10_000_000, log });
  const call = caller(server.url, server.token);
  const hosts = fork(fileURLToPath(new URL("./fake-hosts.ts", import.meta.url)), [server.url, String(HOSTS)], { env: { ...process.env, CORRAL_TOKEN: server.token }, execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const fromHosts = <T>(want: string, key: string) =>
    new Promise<T>((resolve) => {
      const on = (m: Record<string, unknown>) => {
        if (!(key in m)) return;
        hosts.off("message", on);
        resolve(m[key] as T);
      };
      hosts.on("message", on);
      if (want) hosts.send({ want });
    });
  const rows: Row[] = [];
  const notes: string[] = [];
  try {
    await fromHosts<number>("", "ready");
    const live = Array.from({ length: LIVE }, (_, i) => `live-${String(i).padStart(4, "0")}`);
    const settled = async (stack: string) => ((await call("GET", `/v1/stacks/${stack}`)).body as { operation: { status?: string } | null }).operation?.status !== "running";
    // every live stack at rest, from one listing (a request per stack, twice a second, would be load of its own)
    const allSettled = async () => {
      const rows = (await call("GET", "/v1/stacks")).body as Array<{ name: string; state: string }>;
      return rows.filter((r) => r.name.startsWith("live-")).every((r) => !/^(activating|upgrading|rolling-back|restarting|deactivating|removing)$/.test(r.state));
    };

    const say = (m: string) => process.stderr.write(`bench: scale: ${m}\n`);
    say(`${HOSTS} hosts joined`);
    // 1. the first up of each live stack
    const first: number[] = [];
    const t1 = performance.now();
    await eachAtMost(live, 16, async (s) => {
      const r = await call("POST", `/v1/stacks/${s}/up`, composeFor(0));
      if (r.status !== 202) throw new Error(`up ${s}: ${r.status} ${JSON.stringify(r.body)}`);
      first.push(r.ms);
    });
    await until(allSettled, `${LIVE} stacks up`, 300_000, 1_000);
    const firstMs = performance.now() - t1;
    rows.push(row("up -d, first deploy, accepted", `${LIVE} stacks × 1 service, ${HOSTS} simulated hosts`, "202 from the API (16 at once)", { corral: first }, `p99 ${f1(pct(first, 99))} ms; all ${LIVE} running after ${(firstMs / 1000).toFixed(1)} s (${f1((LIVE * 1000) / firstMs)} stacks/s)`));

    say(`${LIVE} stacks up`);
    // one upgrade at a time, from the command until the stack is at rest: the fixed hops of an upgrade, no load
    const alone: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const r = await call("POST", `/v1/stacks/${live[0]}/up`, { ...composeFor(-1 - i), upgrade: true });
      if (r.status !== 202) throw new Error(`up --upgrade ${live[0]}: ${r.status} ${JSON.stringify(r.body)}`);
      await until(() => settled(live[0]!), "the upgrade to end", 60_000, 5);
      alone.push(performance.now() - t0);
    }
    rows.push(row("up --upgrade, one at a time", `1 service, ${HOSTS} simulated hosts`, "the stack at rest (its operation ended; polled every 5 ms)", { corral: alone }, `p99 ${f1(pct(alone, 99))} ms`));

    say("upgrades one at a time done");
    // 2. RATE changing ups a second, open loop
    const statuses = new Map<number, number>();
    const said = new Set<number>();
    const accepted: number[] = [];
    // when each accepted one was sent (ms into the load): the first second starts an upgrade on every stack at once
    const acceptedAt: number[] = [];
    const lastAccepted = new Map<string, { version: number; rev: number }>();
    const total = RATE * SECONDS;
    const t2 = performance.now();
    const inFlight: Promise<void>[] = [];
    for (let i = 0; i < total; i++) {
      const due = t2 + (i * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const stack = live[i % LIVE]!;
      const rev = i + 1;
      inFlight.push(
        call("POST", `/v1/stacks/${stack}/up`, { ...composeFor(rev), upgrade: true }).then(
          (r) => {
            statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
            if (r.status !== 202 && r.status !== 409 && !said.has(r.status)) {
              said.add(r.status);
              notes.push(`up --upgrade under load: a ${r.status}: ${JSON.stringify(r.body).slice(0, 300)}`);
            }
            if (r.status !== 202) return;
            accepted.push(r.ms);
            acceptedAt.push(due - t2);
            const version = (r.body as { version: number }).version;
            if ((lastAccepted.get(stack)?.version ?? -1) < version) lastAccepted.set(stack, { version, rev });
          },
          (e: unknown) => {
            statuses.set(0, (statuses.get(0) ?? 0) + 1);
            if (!said.has(0)) notes.push(`up --upgrade under load: no answer: ${String(e).slice(0, 300)}`);
            said.add(0);
          },
        ),
      );
    }
    const sent = performance.now() - t2;
    await Promise.all(inFlight);
    const answered = performance.now() - t2;
    say(`load sent and answered (${(answered / 1000).toFixed(1)} s); waiting for every stack to be at rest`);
    await until(allSettled, "every stack at rest", 900_000, 1_000);
    const drained = performance.now() - t2;
    const running = await fromHosts<FakeRunning[]>("containers", "containers");
    const lost = live.filter((s) => {
      const want = lastAccepted.get(s)?.rev;
      const up = running.filter((c) => c.labels["io.corral.stack"] === s && c.running);
      return want !== undefined && !(up.length === 1 && up[0]!.env.REV === String(want));
    });
    const refusedBusy = statuses.get(409) ?? 0;
    const sentIn = (from: number, to: number) => accepted.filter((_, k) => acceptedAt[k]! >= from && acceptedAt[k]! < to);
    const [burst, after] = [sentIn(0, 10_000), sentIn(10_000, Infinity)];
    const errors = [...statuses].filter(([s]) => s !== 202 && s !== 409).map(([s, n]) => `${n}× ${s || "no answer"}`);
    rows.push(
      row(
        "up --upgrade under load, accepted",
        `${RATE}/s for ${SECONDS} s over ${LIVE} stacks`,
        "202 from the API, every request sent when due (open loop)",
        { corral: accepted },
        `p99 ${f1(pct(accepted, 99))} ms (of those sent in the first 10 s, while the upgrade every stack got at once ran: ${burst.length}, p50 ${f1(pct(burst, 50))}, p99 ${f1(pct(burst, 99))}; ` +
          `sent after: ${after.length}, p50 ${f1(pct(after, 50))}, p99 ${f1(pct(after, 99))}); ${accepted.length} of ${total} accepted, ${refusedBusy} refused busy (409: that stack's last upgrade still ran), ` +
          `errors: ${errors.length ? errors.join(", ") : "none"}; sent over ${(sent / 1000).toFixed(1)} s, all answered at ${(answered / 1000).toFixed(1)} s, every stack at rest at ${(drained / 1000).toFixed(1)} s; ` +
          `stacks not running their last accepted change: ${lost.length}`,
      ),
    );

    say("every stack at rest");
    // 3. the table at STACKS
    const t3 = performance.now();
    const empties = Array.from({ length: Math.max(0, STACKS - LIVE) }, (_, i) => `idle-${String(i).padStart(5, "0")}`);
    await eachAtMost(empties, 32, async (s) => {
      const r = await call("POST", "/v1/stacks", { name: s });
      if (r.status !== 201) throw new Error(`create ${s}: ${r.status} ${JSON.stringify(r.body)}`);
    });
    notes.push(`${empties.length} empty stacks created in ${((performance.now() - t3) / 1000).toFixed(1)} s (32 at once), the table then holds ${STACKS}`);
    const timed = async (path: (s: string) => string) => {
      const ms: number[] = [];
      for (let i = 0; i < 400; i++) {
        const r = await call("GET", path(live[i % LIVE]!));
        if (r.status !== 200) throw new Error(`GET ${path(live[i % LIVE]!)}: ${r.status}`);
        ms.push(r.ms);
      }
      return ms;
    };
    const ps = await timed((s) => `/v1/stacks/${s}`);
    const inspect = await timed((s) => `/v1/inspect?target=${s}/web`);
    const size = `${STACKS} stacks, ${HOSTS} hosts`;
    rows.push(row("ps STACK", size, "the API's answer (GET /v1/stacks/STACK), one at a time", { corral: ps }, `p99 ${f1(pct(ps, 99))} ms`));
    rows.push(row("inspect STACK/SERVICE", size, "the API's answer (GET /v1/inspect), one at a time", { corral: inspect }, `p99 ${f1(pct(inspect, 99))} ms`));
    say("the table full, ps and inspect timed; waiting for ticks");
    // ticks between sweeps read what may need them; a full sweep (every 60 s) reads every stack
    const since = ticks.length;
    await until(async () => ticks.slice(since).some((t) => t.full) && ticks.slice(since).filter((t) => !t.full).length >= 3, "a full sweep and three ticks", 300_000, 200);
    const partial = ticks.slice(since).filter((t) => !t.full);
    const sweeps = ticks.slice(since).filter((t) => t.full);
    rows.push(row("reconcile tick", size, "one tick between full sweeps: the stacks that may need it read and decided (the server's log)", { corral: partial.map((t) => t.ms) }, `median of ${partial.length} ticks; they read ${partial.map((t) => t.stacks).join(", ")} stacks`));
    rows.push(row("reconcile tick, full sweep", size, "one tick that reads every stack (each 60 s)", { corral: sweeps.map((t) => t.ms) }, `${sweeps[0]!.stacks} stacks read`));

    // a stack's load, with no state kept in the process: the snapshot and what follows it
    const store = new EventStore(dynamoClient(server.endpoints.dynamo), { table: server.endpoints.dynamo.table, cacheStacks: 0 });
    const loads = async (stack: string) => {
      const ms: number[] = [];
      let version = 0;
      for (let i = 0; i < 50; i++) {
        const t0 = performance.now();
        version = (await store.load(stack)).version;
        ms.push(performance.now() - t0);
      }
      return { ms, version };
    };
    const long = await loads(live[0]!);
    const short = await loads(empties[0] ?? live[1]!);
    rows.push(row("load a stack, nothing cached", `${long.version} commits`, "the event store's answer (snapshot and the commits after it)", { corral: long.ms }, `against ${f1(median(short.ms))} ms for a stack of ${short.version} commit(s)`));
  } finally {
    hosts.send({ want: "stop" });
    await new Promise((r) => hosts.once("exit", r));
    await server.stop();
  }
  return { rows, notes };
}
