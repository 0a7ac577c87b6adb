import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { containerRows, fold, initialState, type Commit, type StackEvent } from "@corral/core";
import { fleetUnavailable } from "../fleet.js";
import { corral } from "../support.js";
import { send, settled } from "./drill.js";
import { addRow, full, type FaultRow } from "./profile.js";
import { engineContainers, reapShims, startSystem, type Api, type System } from "./system.js";

/**
 * The soak (full profile only): SOAK_STACKS small stacks (a service of two
 * slots, restarted unless stopped) each through up, upgrade, rollback,
 * scale and rm, SOAK_PARALLEL at a time, for at most SOAK_MINUTES, while
 * faults from the list strike at random (the server SIGKILLed, an agent
 * SIGKILLed, a dockerd restarted). After every step of every stack the
 * invariants hold: every corral container on the engines is one the
 * control plane lists (none unwanted) and the other way round; no slot runs
 * twice; every slot that should run does, or says why; and the stack's
 * event log, folded afresh, gives the containers the control plane lists.
 */

const why = await fleetUnavailable();
if (why) console.warn(`skipped: ${why}`);

const STACKS = Number(process.env.CORRAL_SOAK_STACKS ?? 200);
const PARALLEL = Number(process.env.CORRAL_SOAK_PARALLEL ?? 6);
const MINUTES = Number(process.env.CORRAL_SOAK_MINUTES ?? 10);
const FAULT_EVERY_MS = 45_000;

type Step = "up" | "upgrade" | "rollback" | "scale" | "rm";
const steps: Step[] = ["up", "upgrade", "rollback", "scale", "rm"];
const running: Record<Step, number> = { up: 2, upgrade: 2, rollback: 2, scale: 3, rm: 0 };

const loop = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"];
const doc = (v: string) => ({
  services: { app: { image: "corral-busybox:latest", command: loop, environment: { V: v }, cap_drop: ["ALL"], restart: "unless-stopped", deploy: { replicas: 2 } } },
});
const files = (v: string) => [{ name: "docker-compose.yml", document: doc(v) }];

/** A command, as a pipeline sends one (drill.ts's send: an Idempotency-Key, the same again while unanswered). */
async function sendOp(api: Api, method: string, path: string, body: unknown): Promise<string> {
  const sent = await send(api, path, body, randomUUID(), method, 180_000);
  if (sent.status !== 202 || !sent.body.op) throw new Error(`${method} ${path}: ${sent.status} ${sent.body.message ?? ""}`);
  return sent.body.op;
}

function command(api: Api, stack: string, step: Step): Promise<string> {
  const at = `/v1/stacks/${stack}`;
  if (step === "up") return sendOp(api, "POST", `${at}/up`, { files: files("1") });
  if (step === "upgrade") return sendOp(api, "POST", `${at}/up`, { files: files("2"), upgrade: true });
  if (step === "rollback") return sendOp(api, "POST", `${at}/up`, { files: [], rollback: true });
  if (step === "scale") return sendOp(api, "POST", `${at}/scale`, { scales: { app: 3 } });
  return sendOp(api, "DELETE", at, {});
}

interface Listed {
  name: string;
  state: string;
  docker: string;
  detail: string;
}

/** The stack's log, folded afresh from its first event, as the control plane's API gives it. */
async function replayed(api: Api, stack: string) {
  const commits: Commit[] = [];
  let after = 0;
  for (;;) {
    // (a server a fault killed answers nothing: this look fails, and the invariants are looked at again)
    const res = await fetch(`${api.url}/v1/stacks/${stack}/events?after=${after}`, { headers: { authorization: `Bearer ${api.token}` } }).catch(() => undefined);
    if (!res?.ok) return undefined;
    const page = (await res.json()) as { version: number; events: Array<{ version: number; at: string; event: StackEvent }> };
    if (page.events.length === 0) break;
    for (const e of page.events) {
      const last = commits.at(-1);
      if (last?.version === e.version) last.events.push(e.event);
      else commits.push({ stack, version: e.version, at: Date.parse(e.at), events: [e.event] });
    }
    after = page.version;
  }
  return fold(initialState(stack), commits);
}

/** The invariants after a step, as problems (none: they hold). */
async function invariants(sys: System, stack: string, step: Step): Promise<{ problems: string[]; orphans: number; duplicates: number }> {
  const engines = (await Promise.all(sys.hosts.map((h) => engineContainers(h.docker, stack)))).flat();
  const ps = await corral(sys.api, ["ps", "--all", "--containers", "--format", "json"]);
  const listed = ps.code === 0 ? (JSON.parse(ps.stdout) as Listed[]).filter((c) => c.name.startsWith(`${stack}-`)) : [];
  const problems: string[] = [];
  const listedIds = new Set(listed.map((c) => c.docker).filter(Boolean));
  const orphans = engines.filter((c) => !listedIds.has(c.id)).length;
  if (orphans) problems.push(`${orphans} containers on an engine that corral does not list`);
  const slots = new Map<string, number>();
  for (const c of engines.filter((x) => x.state === "running")) slots.set(c.slot, (slots.get(c.slot) ?? 0) + 1);
  const duplicates = [...slots.values()].reduce((a, n) => a + Math.max(0, n - 1), 0);
  if (duplicates) problems.push(`${duplicates} slots running twice`);
  const up = listed.filter((c) => c.state === "running");
  const unexplained = listed.filter((c) => c.state !== "running" && !c.detail && step !== "upgrade");
  if (up.length !== running[step] && unexplained.length > 0) problems.push(`${up.length} of ${running[step]} running, ${unexplained.map((c) => c.name).join(", ")} not, saying nothing`);
  if (step !== "rm") {
    const folded = await replayed(sys.api, stack);
    if (!folded || ps.code !== 0) return { problems: ["the control plane did not answer"], orphans, duplicates };
    const fromLog = containerRows(folded).map((r) => `${r.name} ${r.state} ${r.docker}`).sort();
    const fromApi = listed.map((c) => `${c.name} ${c.state} ${c.docker}`).sort();
    if (JSON.stringify(fromLog) !== JSON.stringify(fromApi)) problems.push(`the log folded afresh says ${fromLog.join(", ")}; the API ${fromApi.join(", ")}`);
  }
  return { problems, orphans, duplicates };
}

describe.skipIf(why !== undefined || !full)("soak", () => {
  let sys: System;
  beforeAll(async () => {
    sys = await startSystem({ first: 42 });
  }, 300_000);
  afterAll(async () => {
    await sys?.stop();
  }, 120_000);

  it(`${STACKS} stacks through up, upgrade, rollback, scale and rm, ${PARALLEL} at a time, with random faults, for at most ${MINUTES} minutes`, async () => {
    const seed = Number(process.env.CORRAL_FAULTS_SEED ?? Math.floor(Math.random() * 2 ** 31));
    let random = seed;
    const next = () => (random = (random * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    console.log(`soak: seed ${seed}`);
    const end = Date.now() + MINUTES * 60_000;
    const struck: Array<{ fault: string; at: number; until: number }> = [];
    const results: Array<{ at: number; until: number; ok: boolean; orphans: number; duplicates: number }> = [];
    const problems: string[] = [];
    let faulting = true;
    // faults, one at a time, at random moments, until the stacks are done
    const faults = (async () => {
      const list = ["server SIGKILL", "agent SIGKILL", "dockerd restart"] as const;
      while (faulting) {
        await new Promise((r) => setTimeout(r, FAULT_EVERY_MS * (0.5 + next())));
        if (!faulting) break;
        const fault = list[Math.floor(next() * list.length)]!;
        const i = Math.floor(next() * sys.hosts.length);
        const at = Date.now();
        if (fault === "server SIGKILL") {
          await sys.killServer();
          await sys.startServer();
        } else if (fault === "agent SIGKILL") {
          await sys.killAgent(i);
          await sys.startAgent(i);
        } else {
          await sys.hosts[i]!.stopEngine();
          await new Promise((r) => setTimeout(r, 2000));
          await sys.hosts[i]!.startEngine();
          await new Promise((r) => setTimeout(r, 3000));
          await reapShims(sys.hosts[i]!);
        }
        struck.push({ fault, at, until: Date.now() });
      }
    })();
    let started = 0;
    let done = 0;
    const worker = async () => {
      while (started < STACKS && Date.now() < end) {
        const stack = `soak-${++started}`;
        let failed = false;
        for (const step of steps) {
          // a stack a step failed on goes on to its removal only: the steps after it would fail for that one reason
          if (failed && step !== "rm") continue;
          const at = Date.now();
          const ended = await command(sys.api, stack, step)
            .then((op) => settled(sys.api, stack, op, 300_000))
            .catch((e: Error) => ({ ok: false, reason: e.message }));
          // the invariants hold once the faults' effects are undone: looked at until they do, at most 2 minutes
          let seen = await invariants(sys, stack, step);
          for (let t = Date.now(); seen.problems.length > 0 && Date.now() - t < 120_000; ) {
            await new Promise((r) => setTimeout(r, 1000));
            seen = await invariants(sys, stack, step);
          }
          const ok = ended.ok && seen.problems.length === 0;
          results.push({ at, until: Date.now(), ok, orphans: seen.orphans, duplicates: seen.duplicates });
          if (!ok) {
            failed = true;
            problems.push(`${stack} ${step}: ${ended.ok ? "" : `operation ${ended.reason ?? "failed"}; `}${seen.problems.join("; ")}`);
            // what the server and agents said about that stack meanwhile, for whoever reads the failure
            const file = join(tmpdir(), `corral-soak-${seed}-${stack}-${step}.log`);
            writeFileSync(file, `${JSON.stringify(struck)}\n${sys.logsSince(at - 60_000)}\n`);
            console.log(`soak: ${stack} ${step} failed; the logs from a minute before the step began: ${file}`);
          }
        }
        done++;
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    faulting = false;
    await faults;
    // a row per fault: each injection converged when every step running across it did; its seconds, from the
    // fault's end to the last of those steps' end; the steps no fault struck make the baseline's row
    const across = (f: { at: number; until: number }) => results.filter((r) => r.at <= f.until && r.until >= f.at);
    const rows = new Map<string, FaultRow>();
    for (const f of struck) {
      const row = rows.get(f.fault) ?? { fault: `soak: ${f.fault}`, injected: 0, converged: 0, seconds: [], orphans: 0, duplicates: 0, lost: 0 };
      rows.set(f.fault, row);
      const hit = across(f);
      row.injected++;
      if (hit.every((r) => r.ok)) row.converged++;
      row.seconds.push(Math.max(0, ...hit.map((r) => (r.until - f.until) / 1000)));
      row.orphans += hit.reduce((a, r) => a + r.orphans, 0);
      row.duplicates += hit.reduce((a, r) => a + r.duplicates, 0);
      row.lost += hit.filter((r) => !r.ok).length;
    }
    const calm = results.filter((r) => !struck.some((f) => r.at <= f.until && r.until >= f.at));
    rows.set("none", {
      fault: `soak: no fault (${done} stacks, ${results.length} steps)`,
      injected: calm.length,
      converged: calm.filter((r) => r.ok).length,
      seconds: calm.map((r) => (r.until - r.at) / 1000),
      orphans: calm.reduce((a, r) => a + r.orphans, 0),
      duplicates: calm.reduce((a, r) => a + r.duplicates, 0),
      lost: calm.filter((r) => !r.ok).length,
    });
    for (const r of rows.values()) addRow(r);
    console.log(`soak: ${done} stacks through every step, ${struck.length} faults; ${problems.length} problems`);
    expect(problems).toEqual([]);
    expect(done).toBeGreaterThan(0);
  }, (MINUTES + 15) * 60_000);
});
