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
