import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONTROL_ADDRESS, fleetUnavailable } from "../fleet.js";
import { corral } from "../support.js";
import { dropImage, pushImage, registryUnavailable, startRegistry, type TestRegistry } from "../registry.js";
import { command, converge, phases, settled, type Phase } from "./drill.js";
import { addRow, full, type FaultRow } from "./profile.js";
import { HOST_TIMEOUT_S, reapShims, startSystem, type System } from "./system.js";

/**
 * Faults injected into the real system while it works: the workload of
 * drill.ts on two hosts, one fault at a time, and after each phase the
 * invariants (converged to what the commands asked, no orphan, no
 * duplicate, no accepted command lost). Each row of the report says how
 * often the fault was injected and how it ended.
 */

const why = (await fleetUnavailable()) ?? (await registryUnavailable());
if (why) console.warn(`skipped: ${why}`);

/** When a fault strikes, relative to the phase's command: before it is sent, or once it was accepted and runs. */
interface Fault {
  name: string;
  /** The phases it strikes in (default: every one). */
  phases?: Phase[];
  /** The system as this fault needs it for the whole workload (environment switches), undone after. */
  setup?: (sys: System) => Promise<void>;
  teardown?: (sys: System) => Promise<void>;
  /**
   * Strike, with the phase's operation running; resolves with when the
   * system was whole again, if that was later than the strike (a server
   * started again answers), to count the seconds to converge from there.
   */
  strike?: (sys: System, phase: Phase) => Promise<number | void>;
  /** Before the phase's command (to make a step happen: an image dropped, so that it is pulled). */
  before?: (sys: System, phase: Phase) => Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(why !== undefined)("fault injection", () => {
  let sys: System;
  let registry: TestRegistry;
  let image = "";
  const seed = Number(process.env.CORRAL_FAULTS_SEED ?? Math.floor(Math.random() * 2 ** 31));
  let random = seed;
  const next = () => ((random = (random * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);

  beforeAll(async () => {
    console.log(`faults: seed ${seed} (CORRAL_FAULTS_SEED=${seed} repeats the random timings)`);
    sys = await startSystem();
    // on the bench's address (which startSystem routes), pushed from a host's engine (which takes it as insecure)
    registry = await startRegistry(CONTROL_ADDRESS, { faults: "faults-pw" });
    image = `${registry.server}/faults/hello:v1`;
    await pushImage(sys.hosts[0]!.docker, "corral-hello:latest", image, { username: "faults", password: "faults-pw", serveraddress: registry.server });
    const login = await fetch(`${sys.api.url}/v1/registries`, {
      method: "POST",
      headers: { authorization: `Bearer ${sys.api.token}`, "content-type": "application/json" },
      body: JSON.stringify({ server: registry.server, username: "faults", password: "faults-pw" }),
    });
    expect(login.status).toBe(201);
  }, 300_000);

  afterAll(async () => {
    await sys?.stop();
    await registry?.stop();
  }, 120_000);

  let n = 0;
  /** The whole workload on a stack of its own, with the fault; one report row. */
  async function drill(fault: Fault): Promise<FaultRow> {
    const stack = `faults-${++n}`;
    const row: FaultRow = { fault: fault.name, injected: 0, converged: 0, seconds: [], orphans: 0, duplicates: 0, lost: 0 };
    const problems: string[] = [];
    await fault.setup?.(sys);
    try {
      for (const phase of phases) {
        const striking = !fault.phases || fault.phases.includes(phase);
        if (striking) await fault.before?.(sys, phase);
        let op: string;
        try {
          op = await command(sys, stack, phase, image);
        } catch (e) {
          // a command refused: what the stack's log says of how it got there
          const events = await corral(sys.api, ["events", stack]);
          problems.push(`${phase}: ${(e as Error).message}\n${events.stdout.split("\n").slice(-40).join("\n")}`);
          row.lost++;
          break;
        }
        let started = Date.now();
        if (striking) {
          row.injected++;
          started = (await fault.strike?.(sys, phase)) ?? started;
        }
        const ended = await settled(sys.api, stack, op).catch((e: Error) => ({ ok: false, reason: e.message }));
        if (!ended.ok) problems.push(`${phase}: operation ${op} ${ended.reason ?? "failed"}`);
        const c = await converge(sys, stack, phase);
        const seconds = (Date.now() - started) / 1000;
        if (striking) {
          if (c.converged && ended.ok) row.converged++;
          row.seconds.push(seconds);
          if (seconds > 20) console.log(`${fault.name}, ${phase}: ${seconds} s; the logs since the command:\n${sys.logsSince(started)}`);
        }
        row.orphans += c.orphans;
        row.duplicates += c.duplicates;
        if (!ended.ok || !c.converged) {
          row.lost++;
          problems.push(`${phase}: ${c.detail}`);
        }
      }
    } finally {
      await fault.teardown?.(sys);
    }
    addRow(row);
    console.log(`${fault.name}: ${JSON.stringify(row)}${problems.length ? `\n  ${problems.join("\n  ")}` : ""}`);
    expect(problems).toEqual([]);
    return row;
  }

  // the faults, one factory each: the full profile runs each over the whole workload, the short one mixes them
  const twice = (): Fault => {
    const restart = async (s: System, env: Record<string, string>) => {
      s.env = env; // (kept by the restarts other faults make meanwhile)
      await s.killServer();
      await s.startServer();
      for (let i = 0; i < s.hosts.length; i++) await s.startAgent(i);
    };
    return {
      name: "every message twice, out of order across groups",
      setup: (s) => restart(s, { CORRAL_TEST_DUPLICATE_MESSAGES: "1" }),
      teardown: (s) => restart(s, {}),
    };
  };

  const serverRandom = (): Fault => ({
    name: "server SIGKILL, random",
    strike: async (s) => {
      await sleep(next() * 1500);
      await s.killServer();
      await s.startServer();
      return Date.now();
    },
  });

  const dockerdRestart = (): Fault => ({
    name: "dockerd restart",
    phases: ["upgrade", "rollback", "scale"],
    strike: async (s) => {
      await sleep(200 + next() * 500);
      await s.hosts[1]!.stopEngine();
      await sleep(2000);
      await s.hosts[1]!.startEngine();
      const back = Date.now();
      await sleep(3000);
      await reapShims(s.hosts[1]!);
      return back;
    },
  });

  const networkCut = (): Fault => ({
    name: `network cut ${HOST_TIMEOUT_S + 5} s`,
    phases: ["upgrade", "scale"],
    strike: async (s) => {
      await sleep(200);
      await s.cut(1, true);
      await sleep((HOST_TIMEOUT_S + 5) * 1000);
      await s.cut(1, false);
      return Date.now();
    },
  });

  /**
   * The server SIGKILLed at a fault point of its own (see @corral/queue's
   * faults.ts): armed before the phase's command, started again on its data
   * the moment it dies (as a supervisor would), while the workload asks
   * again with its Idempotency-Key where its answer was lost.
   */
  const serverKill = (point: string): Fault => {
    let back: Promise<number> | undefined;
    return {
      name: `server SIGKILL at ${point}`,
      before: async (s) => {
        await s.killServer();
        await s.startServer({ CORRAL_FAULT_KILL: point });
        back = s.serverEnded().then(async () => {
          await s.startServer();
          return Date.now();
        });
      },
      strike: async () => {
        const deadline = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`the server did not reach ${point} in 60 s`)), 60_000).unref());
        return Promise.race([back!, deadline]);
      },
    };
  };

  /**
   * An agent SIGKILLed at a point of a step (CORRAL_FAULT_KILL, see the
   * agent's faults.ts): both agents are armed before the phase's command,
   * the first to reach the point dies, and is started again at once without
   * it (the other is disarmed), as a supervisor would: watched from the
   * moment they are armed, since a phase's command may itself wait on the
   * steps (the rollback phase's upgrade first).
   */
  const agentKill = (name: string, points: Partial<Record<Phase, string>>): Fault => {
    let back: Promise<number> | undefined;
    return {
      name,
      phases: Object.keys(points) as Phase[],
      before: async (s, phase) => {
        if (phase === "up") for (const h of s.hosts) await dropImage(h.docker, image); // so that the up pulls
        await Promise.all(s.hosts.map((_, i) => s.startAgent(i, { CORRAL_FAULT_KILL: points[phase]! })));
        back = (async () => {
          const deadline = Date.now() + 120_000;
          while (!s.agents.some((a) => a.child.exitCode !== null || a.child.signalCode !== null)) {
            if (Date.now() > deadline) throw new Error(`no agent reached ${points[phase]} in 120 s`);
            await sleep(20);
          }
          await Promise.all(s.hosts.map((_, i) => s.startAgent(i)));
          return Date.now();
        })();
        back.catch(() => {}); // (awaited by strike)
      },
      strike: () => back!,
    };
  };

  /** A fault per phase (and `base` over the whole workload): the short profile's one drill. */
  const mixed = (name: string, base: Fault, byPhase: Partial<Record<Phase, Fault>>): Fault => ({
    name,
    phases: Object.keys(byPhase) as Phase[],
    ...(base.setup ? { setup: base.setup } : {}),
    ...(base.teardown ? { teardown: base.teardown } : {}),
    before: async (s, phase) => byPhase[phase]?.before?.(s, phase),
    strike: async (s, phase) => byPhase[phase]?.strike?.(s, phase),
  });

  it.skipIf(full)("short profile: every message twice throughout, and a fault in each phase (agent SIGKILL at pull, server at commit, at random, dockerd restart, agent at create, server at accept)", async () => {
    await drill(
      mixed("mixed: twice + a fault per phase", twice(), {
        up: agentKill("", { up: "after:pull" }),
        upgrade: serverKill("after:commit"),
        confirm: serverRandom(),
        rollback: dockerdRestart(),
        scale: agentKill("", { scale: "after:create" }),
        rm: serverKill("after:accept"),
      }),
    );
  });

  it.skipIf(!full)("no fault: the workload converges at every phase (the baseline the others are held to)", async () => {
    await drill({ name: "none" });
  });

  it.skipIf(!full)("every message delivered twice, and out of order across groups", async () => {
    await drill(twice());
  });

  it.skipIf(!full)("the server SIGKILLed at a random moment of each phase, and started again on its data", async () => {
    await drill(serverRandom());
  });

  it.skipIf(!full)("a host's dockerd stopped and started mid-rollout", async () => {
    await drill(dockerdRestart());
  });

  it.skipIf(!full)("a host's network cut for longer than the heartbeat timeout, then back", async () => {
    await drill(networkCut());
  });

  it.skipIf(!full)("the server SIGKILLed between a command's commit and its answer, and between a decision's commit and its send", async () => {
    await drill(serverKill("after:accept"));
    await drill(serverKill("after:commit"));
  });

  it.skipIf(!full)("an agent SIGKILLed at each step type (pull, stop, remove, start, create), then started again", async () => {
    await drill(agentKill("agent SIGKILL at pull, stop, remove, start, create", { up: "after:pull", upgrade: "after:stop", confirm: "after:remove", rollback: "after:start", scale: "after:create" }));
  });

  it.skipIf(!full)("an agent SIGKILLed waiting for a health check, and at a rename, then started again", async () => {
    await drill(agentKill("agent SIGKILL at health wait, rename", { up: "health:checked", upgrade: "after:rename" }));
  });
});
