import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type Docker from "dockerode";
import { afterAll, describe, expect, it } from "vitest";
import { fleetUnavailable, joinFleetHost, startFleetHost, type FleetHost } from "./fleet.js";
import { cleanupStack, cliBin, composeFile, corral, docker, eventually, outputContains, spawnAgent, testServer, type CliResult } from "./support.js";

// Restart drills (the issue: "an agent restarted, a dockerd restarted, or the control plane restarted
// mid-rollout: the rollout finishes, with no orphan and no duplicate"). The agent's restart is
// test/agent-crash.test.ts; here the control plane's (a `corral server` process killed and started again
// on its data folder) and the engine's (a fleet host's dockerd stopped and started mid-rollout).

interface ServiceJson {
  name: string;
  state: string;
  scale: string;
  detail: string;
}
interface ContainerJson {
  name: string;
  state: string;
  docker: string;
  detail: string;
}
type Api = { url: string; token: string };

const file = (version: string, restart = "") =>
  composeFile(`services:
  app:
    image: corral-hello:latest
    environment: {V: "${version}"}
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
${restart ? `    restart: ${restart}\n` : ""}    deploy:
      replicas: 4
      update_config: {parallelism: 1, delay: 2s}
`);

const services = async (api: Api, stack: string) => {
  const res = await corral(api, ["ps", stack, "--all", "--format", "json"]);
  return res.code === 0 ? (JSON.parse(res.stdout) as ServiceJson[]) : [];
};
const containers = async (api: Api, stack: string) =>
  (JSON.parse((await corral(api, ["ps", "--all", "--containers", "--format", "json"])).stdout) as ContainerJson[]).filter((c) => c.name.startsWith(`${stack}-`));

/** The engine's containers of a stack: name, state and revision label. */
const onEngine = async (engine: Docker, stack: string) =>
  (await engine.listContainers({ all: true, filters: { label: [`io.corral.stack=${stack}`] } })).map((c) => ({
    id: c.Id,
    name: (c.Names[0] ?? "").replace(/^\//, ""),
    state: c.State,
    revision: c.Labels["io.corral.revision"],
  }));

/** Mid-rollout: at least one slot is at the new revision, at least one still runs the old one. */
const midRollout = async (engine: Docker, stack: string) => {
  const now = await onEngine(engine, stack).catch(() => []);
  return now.some((c) => c.revision === "2") && now.some((c) => c.revision === "1" && c.state === "running");
};

/**
 * What the upgrade leaves until --confirm-upgrade (DESIGN: the old container of each slot is kept stopped, the
 * service shows `upgraded`): 4 new containers running, 4 old ones stopped under -r1, nothing else, and the
 * engine's ids are exactly those corral lists.
 */
async function expectUpgraded(api: Api, engine: Docker, stack: string) {
  const now = await onEngine(engine, stack);
  expect(now.map((c) => `${c.name} ${c.revision} ${c.state}`).sort()).toEqual(
    [1, 2, 3, 4].flatMap((n) => [`${stack}-app-${n} 2 running`, `${stack}-app-${n}-r1 1 exited`]).sort(),
  );
  const listed = await containers(api, stack);
  expect(listed.map((c) => c.docker).sort()).toEqual(now.map((c) => c.id).sort());
  expect((await services(api, stack)).map((s) => `${s.name} ${s.state} ${s.scale}`)).toEqual([`${stack}/app upgraded 8/4`]);
}

async function confirmLeavesFour(api: Api, engine: Docker, stack: string) {
  const confirm = await corral(api, ["up", "-d", "--confirm-upgrade", "-s", stack, "-f", file("2")]);
  expect(confirm.stderr).toBe("");
  expect(confirm.code).toBe(0);
  const now = await onEngine(engine, stack);
  expect(now.map((c) => `${c.name} ${c.revision} ${c.state}`).sort()).toEqual([1, 2, 3, 4].map((n) => `${stack}-app-${n} 2 running`));
  expect((await containers(api, stack)).map((c) => c.docker).sort()).toEqual(now.map((c) => c.id).sort());
  expect((await services(api, stack)).map((s) => `${s.name} ${s.state} ${s.scale}`)).toEqual([`${stack}/app active 4/4`]);
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

describe("the control plane restarted mid-rollout", () => {
  const stack = "drill-cp";
  const data = mkdtempSync(join(tmpdir(), "corral-drill-"));
  let port = 0;
  let server: ChildProcess | undefined;
  let agent: ChildProcess | undefined;
  let serverLog = "";
  let agentLog = "";

  /** `corral server` as its own process, so that it can be killed for real. */
  const startServerProcess = async () => {
    // the tick as tests like it; the resend timeout stays the production 30 s: a restart must not wait for it
    const child = spawn(process.execPath, [cliBin, "server", "--data", data, "--port", String(port), "--no-agent"], {
      env: { ...process.env, CORRAL_TICK_MS: "300", CORRAL_VISIBILITY_SECONDS: "5" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stderr?.on("data", (d: Buffer) => (serverLog += d.toString()));
    await outputContains(child, "corral server on");
    return child;
  };
  const api = () => ({ url: `http://127.0.0.1:${port}`, token: readFileSync(join(data, "token"), "utf8").trim() });

  afterAll(async () => {
    agent?.kill("SIGKILL");
    if (server) {
      server.kill("SIGTERM");
      await new Promise((r) => server!.once("exit", r));
    }
    await cleanupStack(stack);
  });

  it("SIGKILL of `corral server` mid-upgrade, started again on its data folder: the upgrade finishes, no orphan, no duplicate", async () => {
    port = await freePort();
    server = await startServerProcess();
    agent = spawnAgent(api(), "drill-host");
    agent.stderr?.on("data", (d: Buffer) => (agentLog += d.toString()));
    await outputContains(agent, "connected");

    const up = await corral(api(), ["up", "-d", "-s", stack, "-f", file("1")]);
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    let upgradeDone: CliResult | undefined;
    const upgrade = corral(api(), ["up", "-d", "--upgrade", "-s", stack, "-f", file("2")]).then((r) => (upgradeDone = r));

    await eventually(() => midRollout(docker, stack), 60_000, 20);
    server.kill("SIGKILL");
    await new Promise((r) => server!.once("exit", r));
    const atKill = await onEngine(docker, stack);
    expect(atKill.filter((c) => c.revision === "2").length).toBeLessThan(4);
    const killedAt = Date.now();

    server = await startServerProcess();
    const restartedAt = Date.now();
    await eventually(async () => (await services(api(), stack)).some((s) => s.state === "upgraded"), 60_000, 200);
    const finishedAt = Date.now();
    console.log(`control plane restart: down ${restartedAt - killedAt} ms; upgrade finished ${finishedAt - restartedAt} ms after the restart; ${atKill.filter((c) => c.revision === "2").length} of 4 slots were at revision 2 at the kill`);

    // the steps lost with the queues are re-sent at the start, not after the resend timeout (30 s): without that,
    // the rest of the rollout would end 35 s or more after the restart
    expect(finishedAt - restartedAt).toBeLessThan(28_000);
    // the CLI's `up --upgrade` was connected to the server that died: it may have failed, the rollout may not
    const cli = await upgrade;
    expect(upgradeDone).toBeDefined();
    if (cli.code !== 0) console.log(`the upgrade's CLI call, cut off by the kill, ended ${cli.code}: ${cli.stderr.trim()}`);

    await expectUpgraded(api(), docker, stack);
    expect(serverLog).not.toMatch(/QueueDoesNotExist|NonExistentQueue/);
    await confirmLeavesFour(api(), docker, stack);
    expect(agent.exitCode).toBeNull(); // the agent carried on through the restart
  });
});

const why = await fleetUnavailable();
if (why) console.warn(`skipped: ${why}`);

describe.skipIf(why !== undefined)("a host's dockerd restarted mid-rollout", () => {
  const stack = "drill-engine";
  let server: Awaited<ReturnType<typeof testServer>>;
  let host: FleetHost;
  let agent: ChildProcess | undefined;
  let agentLog = "";

  afterAll(async () => {
    agent?.kill("SIGKILL");
    await server?.stop();
    await host?.remove();
    // a start cut short by the engine's stop leaves containerd's shim of that task running (Docker's leak, not
    // corral's): this test's are ended, by pid
    const dir = host ? dirname(host.dockerHost.replace(/^unix:\/\//, "")) : undefined;
    for (const pid of dir ? readdirSync("/proc").filter((p) => /^\d+$/.test(p)) : []) {
      const args = (() => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, "utf8");
        } catch {
          return "";
        }
      })();
      if (args.startsWith("/usr/bin/containerd-shim") && args.includes(`${dir}/`)) process.kill(Number(pid), "SIGKILL");
    }
  });

  it("the engine stopped and started mid-upgrade: the agent lives on, the upgrade finishes, no orphan, no duplicate", async () => {
    server = await testServer({ agent: false, tickMs: 300 });
    host = await startFleetHost(9, "dr9");
    // the agent waits up to 20 s for an engine that is away (production: 120 s), so that the last part, a step
    // whose engine stays away, fails within the test
    process.env.CORRAL_ENGINE_WAIT_MS = "20000";
    agent = await joinFleetHost(server, host).finally(() => delete process.env.CORRAL_ENGINE_WAIT_MS);
    agent.stderr?.on("data", (d: Buffer) => (agentLog += d.toString()));

    // a restart policy, so that what dockerd stopped on its way down comes back with it (Docker's own rule:
    // without one, a container stays exited after an engine restart); old containers corral stopped stay stopped
    const up = await corral(server, ["up", "-d", "-s", stack, "-f", file("1", "unless-stopped")]);
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    const upgrade = corral(server, ["up", "-d", "--upgrade", "-s", stack, "-f", file("2", "unless-stopped")]);

    await eventually(() => midRollout(host.docker, stack), 60_000, 20);
    const stoppedAt = Date.now();
    await host.stopEngine();
    // a step that meets no engine says so
    await new Promise((r) => setTimeout(r, 3000));
    await host.startEngine();
    const startedAt = Date.now();

    const cli = await upgrade;
    const finishedAt = Date.now();
    console.log(agentLog.split("\n").filter((l) => /step failed|engine|anew/.test(l)).join("\n"));
    console.log(`dockerd restart: down ${startedAt - stoppedAt} ms; upgrade finished ${finishedAt - startedAt} ms after the engine came back`);
    expect(cli.stderr).toBe("");
    expect(cli.code).toBe(0);
    expect(agent.exitCode).toBeNull(); // the agent lived through the engine's absence

    await expectUpgraded(server, host.docker, stack);
    await confirmLeavesFour(server, host.docker, stack);
    expect(agentLog).toContain("the Docker engine cannot be reached; the step waits for it");

    // the agent still hears its engine (its event stream opened again after the restart): a container stopped by
    // hand is in ps as stopped within seconds (the reconcile would take 30 s), and, as its restart policy
    // (unless-stopped) wants it running and its engine does not start it, corral starts it again
    const victim = (await onEngine(host.docker, stack)).find((c) => c.name === `${stack}-app-1`)!;
    await host.docker.getContainer(victim.id).stop({ t: 1 });
    await eventually(async () => (await containers(server, stack)).find((c) => c.name === `${stack}-app-1`)?.state === "stopped", 10_000, 200);
    await eventually(async () => (await onEngine(host.docker, stack)).find((c) => c.id === victim.id)?.state === "running", 45_000, 500);
    await eventually(async () => (await containers(server, stack)).find((c) => c.name === `${stack}-app-1`)?.state === "running", 15_000, 250);
    const healed = await corral(server, ["events", stack]);
    expect(healed.stdout).toMatch(/ContainerExited\n.*OperationStarted {2}Starting drill-engine-app-1 again: its restart policy wants it running/);

    // an engine that stays away: the step fails after the agent's wait, and says why in a line, no stack trace
    await host.stopEngine();
    const scale = await corral(server, ["scale", `${stack}/app=5`]);
    expect(scale.code).not.toBe(0);
    expect(scale.stderr).toMatch(/the Docker engine of host dr9 could not be reached \(connect ENOENT [^)]*docker\.sock\); waited (?:19|2\d) s for it/);
    expect(scale.stderr).not.toMatch(/\n\s+at /);
    const detail = (await services(server, stack)).find((r) => r.name === `${stack}/app`)?.detail ?? "";
    expect(detail).toContain("the Docker engine of host dr9 could not be reached");
    const events = await corral(server, ["events", stack]);
    expect(events.stdout).toContain("the Docker engine of host dr9 could not be reached");
    expect(events.stdout).not.toMatch(/\n\s+at /);
    expect(agent.exitCode).toBeNull();
    console.log(`with the engine away: ${scale.stderr.trim()}`);
  });
});
