import { readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePortList } from "@corral/agent";
import { sitePolicySchema } from "@corral/core";
import { cleanupStack, composeFile, corral, httpGet, testServer } from "./support.js";

// Host ports through the CLI on the real engine: one per container for a port written without a host port,
// refusals that change nothing, the agent's reservation of the range, and starts that wait out a held port.
const PROC = "/proc/sys/net/ipv4/ip_local_reserved_ports";
const RANGE: [number, number] = [60020, 60029];
const stacks = ["pa", "pb", "pr", "pu", "ph", "pk", "pf1", "pf2"];
let server: Awaited<ReturnType<typeof testServer>>;
let before: string | undefined;

beforeAll(async () => {
  for (const s of stacks) await cleanupStack(s);
  // nothing reserved: whatever is there after the server starts, its agent put there
  before = readFileSync(PROC, "utf8");
  writeFileSync(PROC, "\n");
  expect(readFileSync(PROC, "utf8").trim()).toBe("");
  server = await testServer({ tickMs: 300, policy: sitePolicySchema.parse({ portRange: `${RANGE[0]}-${RANGE[1]}` }) });
});
afterAll(async () => {
  await server?.stop();
  for (const s of stacks) await cleanupStack(s);
  if (before !== undefined) writeFileSync(PROC, before); // as it was (set by hand on this machine)
});

const web = (ports: string, extra = "") =>
  composeFile(`services:
  web:
    image: corral-hello:latest
    ports: ${ports}
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
${extra}`);
const withVersion = (v: string, scale = 1) => web(`["80"]`, `    environment: {V: "${v}"}\n    scale: ${scale}\n`);

interface Row {
  name: string;
  state: string;
  scale: string;
  endpoints: string;
  detail: string;
}
const row = async (name: string) => ((JSON.parse((await corral(server, ["ps", "--format", "json"])).stdout) as Row[]).find((r) => r.name === name));
interface Inspected {
  scale: number;
  publicEndpoints: Array<{ port: number; hostId: string }>;
  containers: Array<{ name: string; state: string; docker: string; ports: Array<{ published?: number; target: number }> }>;
}
const inspect = async (target: string) => JSON.parse((await corral(server, ["inspect", target])).stdout) as Inspected;
/** Each running container's host port for 80, by the name users see. */
const portsByContainer = async (target: string) =>
  Object.fromEntries((await inspect(target)).containers.filter((c) => c.state === "running").map((c) => [c.name, c.ports.find((p) => p.target === 80)?.published]));
const ok = async (args: string[]) => {
  const res = await corral(server, args);
  expect(res.stderr).toBe("");
  expect(res.code).toBe(0);
  return res;
};

describe("the agent reserves the policy's range against ephemeral ports", () => {
  it("the kernel's list holds the range once the server has started", () => {
    const reserved = parsePortList(readFileSync(PROC, "utf8"));
    expect(reserved.some(([a, b]) => a <= RANGE[0] && RANGE[1] <= b)).toBe(true);
  });
});

describe("a port written without a host port: each container gets its own", () => {
  it("scale to 2 on one host gives slot 2 its own port; each slot keeps its port through upgrade, rollback and restart", async () => {
    await ok(["up", "-d", "-f", withVersion("1"), "-s", "pa"]);
    expect(await row("pa/web")).toMatchObject({ state: "active", scale: "1/1", endpoints: "0.0.0.0:60020->80/tcp" });

    await ok(["scale", "pa/web=2"]);
    expect(await row("pa/web")).toMatchObject({ state: "active", scale: "2/2", detail: "" });
    expect((await row("pa/web"))?.endpoints.split(", ").sort()).toEqual(["0.0.0.0:60020->80/tcp", "0.0.0.0:60021->80/tcp"]);
    const endpoints = (await inspect("pa/web")).publicEndpoints.map((e) => `${e.hostId}:${e.port}`).sort();
    expect(endpoints).toEqual(["test-host:60020", "test-host:60021"]);
    for (const p of [60020, 60021]) expect(await httpGet(`http://127.0.0.1:${p}/`)).toBe("hello from corral\n");
    const slots = { "pa-web-1": 60020, "pa-web-2": 60021 };
    expect(await portsByContainer("pa/web")).toEqual(slots);

    await ok(["up", "-d", "--upgrade", "-f", withVersion("2", 2), "-s", "pa"]);
    const upgraded = await inspect("pa/web");
    expect(await portsByContainer("pa/web")).toEqual(slots);
    await ok(["up", "-d", "--rollback", "-s", "pa"]);
    expect(await portsByContainer("pa/web")).toEqual(slots);
    // the very same v1 containers are back (not the upgrade's), on the same ports
    expect((await inspect("pa/web")).containers.map((c) => c.docker)).not.toEqual(upgraded.containers.filter((c) => c.state === "running").map((c) => c.docker));
    await ok(["restart", "pa"]);
    expect(await portsByContainer("pa/web")).toEqual(slots);
    for (const p of [60020, 60021]) expect(await httpGet(`http://127.0.0.1:${p}/`)).toBe("hello from corral\n");
  });

  it("a slot that goes gives its port back: the next stack gets it", async () => {
    await ok(["scale", "pa/web=1"]);
    expect(await row("pa/web")).toMatchObject({ scale: "1/1", endpoints: "0.0.0.0:60020->80/tcp" });
    await ok(["up", "-d", "-f", withVersion("1"), "-s", "pb"]);
    expect(await row("pb/web")).toMatchObject({ scale: "1/1", endpoints: "0.0.0.0:60021->80/tcp" });
    await ok(["rm", "pb"]);
  });

  it("up with deploy.replicas 2 runs two containers on two ports", async () => {
    await ok(["up", "-d", "-f", web(`["80"]`, "    deploy: {replicas: 2}\n"), "-s", "pr"]);
    expect(await row("pr/web")).toMatchObject({ state: "active", scale: "2/2" });
    expect((await row("pr/web"))?.endpoints.split(", ").sort()).toEqual(["0.0.0.0:60021->80/tcp", "0.0.0.0:60022->80/tcp"]);
    for (const p of [60021, 60022]) expect(await httpGet(`http://127.0.0.1:${p}/`)).toBe("hello from corral\n");
  });

  it("two stacks scaling at once never get the same port", async () => {
    const [a, b] = await Promise.all([corral(server, ["scale", "pa/web=3"]), corral(server, ["scale", "pr/web=3"])]);
    expect([a.code, b.code, a.stderr, b.stderr]).toEqual([0, 0, "", ""]);
    const all = [...Object.values(await portsByContainer("pa/web")), ...Object.values(await portsByContainer("pr/web"))];
    expect(all).toHaveLength(6);
    expect(new Set(all).size).toBe(6);
    expect([...all].sort()).toEqual([60020, 60021, 60022, 60023, 60024, 60025]);
  });
});

describe("a scale that cannot be placed changes nothing, and says why", () => {
  it("a HOST:CONTAINER port already held on the only host: refused with the holder, the scale stays", async () => {
    await ok(["up", "-d", "-f", web(`["60029:80"]`), "-s", "pu"]);
    const res = await corral(server, ["scale", "pu/web=2"]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("no host can run pu-web-2: test-host: port 60029 in use by pu-web-1");
    expect(await row("pu/web")).toMatchObject({ state: "active", scale: "1/1", detail: "" });
    expect((await inspect("pu/web")).scale).toBe(1);
    expect((await corral(server, ["events", "pu"])).stdout).not.toContain("ServiceScaled");
  });

  it("no port left in the range: refused, the scale stays", async () => {
    const scaled = async () => ((await corral(server, ["events", "pa"])).stdout.match(/ServiceScaled/g) ?? []).length;
    const count = await scaled();
    const res = await corral(server, ["scale", "pa/web=8"]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(`no free port left in ${RANGE[0]}-${RANGE[1]}`);
    expect(await row("pa/web")).toMatchObject({ state: "active", scale: "3/3", detail: "" });
    expect(count).toBeGreaterThan(0);
    expect(await scaled()).toBe(count);
  });
});

describe("a host port a removed stack held", () => {
  it("is free for the next up at once (rm, then up of another stack on the same HOST:CONTAINER port)", async () => {
    const file = web(`["60028:80"]`);
    await ok(["up", "-d", "-f", file, "-s", "pf1"]);
    await ok(["rm", "--type", "stack", "pf1"]);
    await ok(["up", "-d", "-f", file, "-s", "pf2"]);
    expect(await portsByContainer("pf2/web")).toEqual({ "pf2-web-1": 60028 });
    expect(await httpGet("http://127.0.0.1:60028/")).toBe("hello from corral\n");
    await ok(["rm", "--type", "stack", "pf2"]); // the next tests hold 60028 themselves
  });
});

describe("a start whose host port another socket holds", () => {
  const hold = (port: number) =>
    new Promise<Server>((resolve, reject) => {
      const s = createServer();
      s.once("error", reject);
      s.listen(port, "0.0.0.0", () => resolve(s));
    });
  const release = (s: Server) => new Promise<void>((r) => s.close(() => r()));

  it("is tried again, and succeeds once the port is let go", async () => {
    const holder = await hold(60028);
    const up = corral(server, ["up", "-d", "-f", web(`["60028:80"]`), "-s", "ph"]);
    await new Promise((r) => setTimeout(r, 1000));
    await release(holder);
    const res = await up;
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(await httpGet("http://127.0.0.1:60028/")).toBe("hello from corral\n");
  });

  it("held throughout: the step fails, and ps names the port and the host", async () => {
    const holder = await hold(60027);
    try {
      const res = await corral(server, ["up", "-d", "-f", web(`["60027:80"]`), "-s", "pk"]);
      expect(res.code).not.toBe(0);
      expect((await row("pk/web"))?.detail).toMatch(/^host port 60027 is in use on test-host: .*(address already in use|port is already allocated)/);
    } finally {
      await release(holder);
    }
  });
});
