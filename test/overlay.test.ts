import type { ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONTROL_ADDRESS, fleetUnavailable, routeFleet, spawnAgentInside, startFleetHost, type FleetHost } from "./fleet.js";
import { composeFile, corral, outputContains, testServer } from "./support.js";

// The stack networks across hosts, on a routed bench: each host an engine in its own network namespace with its
// agent inside it (as on a machine of its own), the control plane on an address every namespace reaches.
const why = await fleetUnavailable();
if (why) console.warn(`skipped: ${why}`);

describe.skipIf(why !== undefined)("agents on their own hosts", () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  let unroute: () => Promise<void> = async () => {};
  const fleet: FleetHost[] = [];
  const agents: ChildProcess[] = [];
  const logs = new Map<string, () => string>();

  beforeAll(async () => {
    unroute = await routeFleet();
    server = await testServer({ tickMs: 300, agent: false, hostTimeoutMs: 5000, listen: CONTROL_ADDRESS });
    fleet.push(await startFleetHost(11, "ov11"), await startFleetHost(12, "ov12"));
    for (const h of fleet) {
      const add = await corral(server, ["host", "add", h.name]);
      expect(add.code).toBe(0);
      const agent = spawnAgentInside(h, server.url, { token: add.stdout.split("\n")[1]!.trim(), env: { CORRAL_OVERLAY: "1" } });
      let log = "";
      agent.stderr?.on("data", (d: Buffer) => (log += d.toString()));
      logs.set(h.name, () => log);
      agents.push(agent);
      await outputContains(agent, `corral agent ${h.name} connected`);
    }
  }, 180_000);

  afterAll(async () => {
    for (const a of agents) a.kill("SIGKILL");
    await server?.stop();
    for (const h of fleet) await h.remove();
    await unroute();
  }, 120_000);

  it("join the control plane from inside their namespaces and run a stack spread over both", async () => {
    expect(new URL(server.url).hostname).toBe(CONTROL_ADDRESS);
    const file = composeFile(`services:
  web:
    image: corral-hello:latest
    scale: 2
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
`);
    const up = await corral(server, ["up", "-d", "-f", file, "-s", "spanning"]);
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    const ps = JSON.parse((await corral(server, ["ps", "spanning", "--containers", "--format", "json"])).stdout) as Array<{ host: string; state: string }>;
    expect(ps.map((c) => `${c.host} ${c.state}`).sort()).toEqual(["ov11 running", "ov12 running"]);
    expect((await corral(server, ["rm", "spanning"])).code).toBe(0);
  });
});
