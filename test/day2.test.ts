import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanupStack, composeFile, corral, docker, stackContainers, testServer } from "./support.js";

// Day-2 operations through the CLI, on the real engine.
let server: Awaited<ReturnType<typeof testServer>>;
beforeAll(async () => {
  server = await testServer({ tickMs: 300 });
});
afterAll(async () => {
  await server?.stop();
  await cleanupStack("day2");
});

const idle = `["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]`;
const file = composeFile(`services:
  web:
    image: corral-hello:latest
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
  worker:
    image: corral-busybox:latest
    command: ${idle}
    cap_drop: [ALL]
`);
type Row = Record<string, string>;
const services = async () =>
  Object.fromEntries(
    (JSON.parse((await corral(server, ["ps", "--all", "--format", "json"])).stdout) as Row[]).filter((r) => r.name!.startsWith("day2/")).map((r) => [r.name!.split("/")[1], `${r.state} ${r.scale}`]),
  );
const engine = async () => Object.fromEntries((await stackContainers("day2")).map((c) => [c.Names[0]!.slice(1), `${c.Id.slice(0, 12)} ${c.State}`]));
const ids = (e: Record<string, string>) => Object.fromEntries(Object.entries(e).map(([k, v]) => [k, v.split(" ")[0]]));

describe("a running stack, day two", () => {
  it("scales a service up and down, highest slot first, leaving the rest alone", async () => {
    expect((await corral(server, ["up", "-d", "-f", file, "-s", "day2"])).code).toBe(0);
    const before = await engine();
    const up = await corral(server, ["scale", "day2/worker=3"]);
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    expect(up.stdout).toContain("[worker]: Scaling to 3");
    expect(await services()).toEqual({ web: "active 1/1", worker: "active 3/3" });
    const scaled = await engine();
    expect(Object.keys(scaled).sort()).toEqual(["day2-web-1", "day2-worker-1", "day2-worker-2", "day2-worker-3"]);
    expect(scaled["day2-worker-1"]).toBe(before["day2-worker-1"]);
    expect((await corral(server, ["scale", "day2/worker=1"])).code).toBe(0);
    expect(await engine()).toEqual(before);
    const history = await corral(server, ["history", "day2"]);
    expect(history.stdout.trim().split("\n")).toHaveLength(2); // a header and revision 1: scaling is not a new revision
  });

  it("stop leaves the containers stopped and the service inactive; start brings the same containers back", async () => {
    const before = await engine();
    const stop = await corral(server, ["stop", "day2/worker"]);
    expect(stop.code).toBe(0);
    expect(await services()).toEqual({ web: "active 1/1", worker: "inactive 1/1" });
    expect((await engine())["day2-worker-1"]).toMatch(/exited$/);
    expect((await engine())["day2-web-1"]).toMatch(/running$/);
    expect((await corral(server, ["start", "day2"])).code).toBe(0);
    expect(await engine()).toEqual(before);
    expect(await services()).toEqual({ web: "active 1/1", worker: "active 1/1" });
  });

  it("restart keeps the containers (same ids) and starts them anew, in batches", async () => {
    const before = await engine();
    const started = async () => Object.fromEntries(await Promise.all((await stackContainers("day2")).map(async (c) => [c.Names[0], (await docker.getContainer(c.Id).inspect()).State.StartedAt])));
    const t0 = await started();
    const res = await corral(server, ["restart", "day2", "--batch-size", "1", "--interval", "200"]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(ids(await engine())).toEqual(ids(before));
    const t1 = await started();
    for (const name of Object.keys(t0)) expect(t1[name]).not.toBe(t0[name]);
    expect(await services()).toEqual({ web: "active 1/1", worker: "active 1/1" });
  });

  it("refuses a service that does not exist, naming the ones that do; and a bad target", async () => {
    const res = await corral(server, ["scale", "day2/nope=2"]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("stack day2 has no service nope (services: web, worker)");
    const bad = await corral(server, ["scale", "day2/worker"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("day2/worker: expected STACK/SERVICE=N");
    expect((await corral(server, ["rm", "day2"])).code).toBe(0);
  });
});
