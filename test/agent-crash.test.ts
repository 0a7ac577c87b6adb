import type { ChildProcess } from "node:child_process";
import { afterAll, beforeAll, expect, it } from "vitest";
import { cleanupStack, composeFile, corral, eventually, outputContains, spawnAgent, stackContainers, testServer } from "./support.js";

// The agent runs as its own process so that it can be killed for real.
let server: Awaited<ReturnType<typeof testServer>>;
let agent: ChildProcess | undefined;

beforeAll(async () => {
  // short timeouts so that recovery takes seconds, not the production 30 s
  server = await testServer({ agent: false, visibilitySeconds: 2, resendAfterMs: 3000, tickMs: 500 });
});
afterAll(async () => {
  agent?.kill("SIGKILL");
  await server?.stop();
  await cleanupStack("e2e-crash");
  await cleanupStack("e2e-crash2");
  await cleanupStack("e2e-crash3");
});

it("an agent killed while a stack comes up, then restarted: the stack converges, no orphan", async () => {
  agent = spawnAgent(server, "crash-host");
  await outputContains(agent, "connected");
  const services = Array.from({ length: 8 }, (_, i) => `  s${i}:\n    image: corral-hello:latest\n    cap_drop: [ALL]\n    cap_add: [NET_BIND_SERVICE]\n`).join("");
  const file = composeFile(`services:\n${services}`);
  const up = corral(server, ["up", "-d", "-f", file, "-s", "e2e-crash"]);

  // kill it once it has started creating containers, before it is done
  await eventually(async () => (await stackContainers("e2e-crash")).length >= 1, 30_000, 10);
  agent.kill("SIGKILL");
  // the kill landed mid-way: not every service was running yet
  const atKill = await stackContainers("e2e-crash");
  expect(atKill.filter((c) => c.State === "running").length).toBeLessThan(8);

  agent = spawnAgent(server, "crash-host");
  const result = await up;
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);

  const engine = await stackContainers("e2e-crash");
  expect(engine.map((c) => c.Names[0]).sort()).toEqual(Array.from({ length: 8 }, (_, i) => `/e2e-crash-s${i}-1`).sort());
  expect(engine.every((c) => c.State === "running")).toBe(true);
  const ps = JSON.parse((await corral(server, ["ps", "--all", "--containers", "--format", "json"])).stdout) as Array<{ name: string; docker: string }>;
  const ids = ps.filter((c) => c.name.startsWith("e2e-crash-")).map((c) => c.docker).sort();
  expect(ids).toEqual(engine.map((c) => c.Id).sort());

  expect((await corral(server, ["rm", "e2e-crash"])).code).toBe(0);
  expect(await stackContainers("e2e-crash")).toEqual([]);
});

it("an agent killed mid-upgrade, then restarted: the upgrade completes, no orphan", async () => {
  agent?.kill("SIGKILL");
  agent = spawnAgent(server, "crash-host");
  await outputContains(agent, "connected");
  const file = (version: string) =>
    composeFile(`services:\n${Array.from({ length: 6 }, (_, i) => `  s${i}:\n    image: corral-hello:latest\n    environment: {V: "${version}"}\n    cap_drop: [ALL]\n    cap_add: [NET_BIND_SERVICE]\n`).join("")}`);
  expect((await corral(server, ["up", "-d", "-f", file("1"), "-s", "e2e-crash2"])).code).toBe(0);
  const upgrade = corral(server, ["up", "-d", "--upgrade", "-f", file("2"), "-s", "e2e-crash2"]);
  await eventually(async () => (await stackContainers("e2e-crash2")).some((c) => c.Names[0]?.endsWith("-r1")), 30_000, 10);
  agent.kill("SIGKILL");
  agent = spawnAgent(server, "crash-host");
  const result = await upgrade;
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  const engine = await stackContainers("e2e-crash2");
  expect(engine.map((c) => `${c.Names[0]} ${c.State}`).sort()).toEqual(
    Array.from({ length: 6 }, (_, i) => [`/e2e-crash2-s${i}-1 running`, `/e2e-crash2-s${i}-1-r1 exited`]).flat().sort(),
  );
  expect((await corral(server, ["rm", "e2e-crash2"])).code).toBe(0);
  expect(await stackContainers("e2e-crash2")).toEqual([]);
});

it("logs or exec for a host whose agent is down fail with the host named, not hang; back up, they work", async () => {
  agent?.kill("SIGKILL");
  agent = spawnAgent(server, "crash-host");
  await outputContains(agent, "connected");
  const file = composeFile(`services:\n  s0:\n    image: corral-busybox:latest\n    command: ["sh", "-c", "echo up; trap 'exit 0' TERM; while true; do sleep 1; done"]\n    cap_drop: [ALL]\n`);
  expect((await corral(server, ["up", "-d", "-f", file, "-s", "e2e-crash3"])).code).toBe(0);
  agent.kill("SIGKILL");
  const res = await corral(server, ["exec", "e2e-crash3/s0", "--", "true"], undefined, undefined, { CORRAL_SESSION_ANSWER_MS: "1500" });
  expect(res.code).not.toBe(0);
  expect(res.stderr).toContain("host crash-host did not answer in 2 s: is its agent running?");
  agent = spawnAgent(server, "crash-host");
  await outputContains(agent, "connected");
  expect((await corral(server, ["logs", "e2e-crash3/s0"])).stdout).toBe("up\n");
  expect((await corral(server, ["rm", "e2e-crash3"])).code).toBe(0);
});
