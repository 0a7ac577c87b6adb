import { afterAll, beforeAll, expect, it } from "vitest";
import { cleanupStack, composeFile, corral, stackContainers, testServer } from "./support.js";

// Every queue message (steps, reports, stack changes) goes out twice, under
// different deduplication ids: what an at-least-once transport may do.
let server: Awaited<ReturnType<typeof testServer>>;
beforeAll(async () => {
  server = await testServer({ duplicateMessages: true });
});
afterAll(async () => {
  await server?.stop();
  await cleanupStack("e2e-dup");
  await cleanupStack("e2e-dup2");
  await cleanupStack("e2e-dup3");
});

it("with every message delivered twice, the same containers come up once each", async () => {
  const file = composeFile(`
services:
  web:
    image: corral-hello:latest
    scale: 3
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
  side:
    image: corral-busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    cap_drop: [ALL]
`);
  const up = await corral(server, ["up", "-d", "-f", file, "-s", "e2e-dup"]);
  expect(up.stderr).toBe("");
  expect(up.code).toBe(0);
  const engine = await stackContainers("e2e-dup");
  expect(engine.map((c) => [c.Names[0], c.State]).sort()).toEqual([
    ["/e2e-dup-side-1", "running"],
    ["/e2e-dup-web-1", "running"],
    ["/e2e-dup-web-2", "running"],
    ["/e2e-dup-web-3", "running"],
  ]);
  const ps = JSON.parse((await corral(server, ["ps", "--format", "json"])).stdout) as Array<{ name: string; state: string; scale: string }>;
  expect(ps.filter((s) => s.name.startsWith("e2e-dup/")).map((s) => [s.name, s.state, s.scale])).toEqual([
    ["e2e-dup/web", "active", "3/3"],
    ["e2e-dup/side", "active", "1/1"],
  ]);
  expect((await corral(server, ["rm", "e2e-dup"])).code).toBe(0);
  expect(await stackContainers("e2e-dup")).toEqual([]);
});

it("with every message delivered twice, an upgrade and its rollback end as they would once", async () => {
  const file = (version: string) =>
    composeFile(`
services:
  web:
    image: corral-hello:latest
    environment: {VERSION: "${version}"}
    scale: 2
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
    deploy: {update_config: {parallelism: 2}}
`);
  expect((await corral(server, ["up", "-d", "-f", file("1"), "-s", "e2e-dup2"])).code).toBe(0);
  const v1 = (await stackContainers("e2e-dup2")).map((c) => `${c.Names[0]} ${c.Id} ${c.State}`).sort();
  const upgrade = await corral(server, ["up", "-d", "--upgrade", "-f", file("2"), "-s", "e2e-dup2"]);
  expect(upgrade.stderr).toBe("");
  const upgraded = await stackContainers("e2e-dup2");
  expect(upgraded.map((c) => `${c.Names[0]} ${c.State}`).sort()).toEqual([
    "/e2e-dup2-web-1 running",
    "/e2e-dup2-web-1-r1 exited",
    "/e2e-dup2-web-2 running",
    "/e2e-dup2-web-2-r1 exited",
  ]);
  expect((await corral(server, ["up", "-d", "--rollback", "-s", "e2e-dup2"])).code).toBe(0);
  expect((await stackContainers("e2e-dup2")).map((c) => `${c.Names[0]} ${c.Id} ${c.State}`).sort()).toEqual(v1);
  expect((await corral(server, ["rm", "e2e-dup2"])).code).toBe(0);
});

it("with every message delivered twice, scale, restart, exec and logs act and answer once", async () => {
  const file = composeFile(`
services:
  box:
    image: corral-busybox:latest
    command: ["sh", "-c", "echo started; trap 'exit 0' TERM; while true; do sleep 1; done"]
    cap_drop: [ALL]
`);
  expect((await corral(server, ["up", "-d", "-f", file, "-s", "e2e-dup3"])).code).toBe(0);
  expect((await corral(server, ["scale", "e2e-dup3/box=3"])).code).toBe(0);
  expect((await stackContainers("e2e-dup3")).map((c) => `${c.Names[0]} ${c.State}`).sort()).toEqual(["/e2e-dup3-box-1 running", "/e2e-dup3-box-2 running", "/e2e-dup3-box-3 running"]);
  const ids = (await stackContainers("e2e-dup3")).map((c) => c.Id).sort();
  expect((await corral(server, ["restart", "e2e-dup3"])).code).toBe(0);
  expect((await stackContainers("e2e-dup3")).map((c) => c.Id).sort()).toEqual(ids);
  // the session message arrives twice: one command runs, its output comes once
  const exec = await corral(server, ["exec", "e2e-dup3-box-1", "--", "sh", "-c", "echo once >> /tmp/count; cat /tmp/count"]);
  expect(exec.stdout).toBe("once\n");
  expect((await corral(server, ["logs", "e2e-dup3-box-2"])).stdout).toBe("started\nstarted\n"); // started, then restarted: two lines, not four
  expect((await corral(server, ["rm", "e2e-dup3"])).code).toBe(0);
});
