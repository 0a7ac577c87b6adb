import type { ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fleetUnavailable, startFleetHost, type FleetHost } from "./fleet.js";
import { composeFile, corral, eventually, outputContains, spawnCorral, testServer } from "./support.js";

// Hosts as an admin runs them: two engines joined with labels and addresses, listed, labelled, drained,
// activated, lost (the agent killed) and removed, on the fleet bench (an engine per network namespace).
const why = await fleetUnavailable();
if (why) console.warn(`skipped: ${why}`);

interface HostJson {
  id: string;
  name: string;
  state: string;
  address: string;
  labels: Record<string, string>;
  containers: number;
  lastSeen: string;
}
interface ContainerJson {
  name: string;
  host: string;
  state: string;
}

describe.skipIf(why !== undefined)("hosts: join with labels, ls, label, drain, activate, disconnected, rm", () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  const fleet: FleetHost[] = [];
  const agents = new Map<string, ChildProcess>();
  const agentLog = new Map<string, string>();
  const joinTokens = new Map<string, string>();

  const hostLs = async () => {
    const res = await corral(server, ["host", "ls", "--format", "json"]);
    expect(res.stderr).toBe("");
    return (JSON.parse(res.stdout) as HostJson[]).sort((a, b) => (a.id < b.id ? -1 : 1));
  };
  const hostOf = async (id: string) => (await hostLs()).find((h) => h.id === id);
  const containers = async (stack: string) =>
    (JSON.parse((await corral(server, ["ps", stack, "--containers", "--format", "json"])).stdout) as ContainerJson[]).filter((c) => c.state === "running");
  const startAgent = (h: FleetHost, token: string) => {
    const agent = spawnCorral({ url: server.url, token: "" }, ["agent", "--join", server.url, "--token", token, "--docker-host", h.dockerHost, "--address", h.address], { CORRAL_TOKEN: "" });
    agentLog.set(h.name, "");
    agent.stderr?.on("data", (d: Buffer) => agentLog.set(h.name, agentLog.get(h.name)! + d.toString()));
    agents.set(h.name, agent);
    return agent;
  };

  beforeAll(async () => {
    // a short timeout, so that a lost host shows within the test; agents heartbeat a third as often
    server = await testServer({ tickMs: 300, agent: false, hostTimeoutMs: 3000 });
    fleet.push(await startFleetHost(4, "hx4"), await startFleetHost(5, "hx5"));
    const labels: Record<string, string[]> = { hx4: ["--label", "zone=a", "--label", "disk=ssd"], hx5: ["-l", "zone=b", "-l", "disk=hdd"] };
    for (const h of fleet) {
      const add = await corral(server, ["host", "add", h.name, ...labels[h.name]!]);
      expect(add.stderr).toBe("");
      expect(add.code).toBe(0);
      const token = add.stdout.split("\n")[1]!.trim();
      expect(add.stdout).toContain(`corral agent --join ${server.url} --token ${token}`);
      joinTokens.set(h.name, token);
      await outputContains(startAgent(h, token), `corral agent ${h.name} connected`);
    }
  }, 180_000);

  afterAll(async () => {
    for (const a of agents.values()) a.kill("SIGKILL");
    await server?.stop();
    for (const h of fleet) await h.remove();
  }, 120_000);

  it("host add refuses corral's own label keys and bad labels, making no token", async () => {
    const own = await corral(server, ["host", "add", "hx9", "--label", "io.corral.stack=x"]);
    expect(own.code).not.toBe(0);
    expect(own.stderr).toMatch(/io\.corral\.\* keys are corral's own/);
    const spaced = await corral(server, ["host", "add", "hx9", "--label", "zone"]);
    expect(spaced.code).not.toBe(0);
    expect(spaced.stderr).toMatch(/KEY=VALUE/);
    const user = (await corral(server, ["user", "create", "hostuser"])).stdout.trim();
    const asUser = await corral({ url: server.url, token: user }, ["host", "add", "hx9"]);
    expect(asUser.code).not.toBe(0);
    expect(asUser.stderr).toMatch(/admin/);
    // a user sees which hosts there are and their state, not their addresses or labels
    const seen = JSON.parse((await corral({ url: server.url, token: user }, ["host", "ls", "--format", "json"])).stdout) as Array<Record<string, unknown>>;
    expect(seen.map((h) => Object.keys(h).sort())).toEqual([["id", "name", "state"], ["id", "name", "state"]]);
  });

  it("host ls shows both hosts active, with their addresses, labels and no containers, as a table and as JSON", async () => {
    const ls = await hostLs();
    expect(ls.map(({ id, name, state, address, labels, containers }) => ({ id, name, state, address, labels, containers }))).toEqual([
      { id: "hx4", name: "hx4", state: "active", address: "198.18.4.2", labels: { zone: "a", disk: "ssd" }, containers: 0 },
      { id: "hx5", name: "hx5", state: "active", address: "198.18.5.2", labels: { zone: "b", disk: "hdd" }, containers: 0 },
    ]);
    for (const h of ls) expect(Date.now() - Date.parse(h.lastSeen)).toBeLessThan(3000);
    const table = (await corral(server, ["host", "ls"])).stdout.split("\n");
    expect(table[0]).toMatch(/^ID\s+NAME\s+STATE\s+ADDRESS\s+LABELS\s+CONTAINERS\s+LAST SEEN$/);
    expect(table[1]).toMatch(/^hx4\s+hx4\s+active\s+198\.18\.4\.2\s+disk=ssd,zone=a\s+0\s+\ds ago$/);
    expect(table[2]).toMatch(/^hx5\s+hx5\s+active\s+198\.18\.5\.2\s+disk=hdd,zone=b\s+0\s+\ds ago$/);
  });

  it("containers spread over both; ps names their hosts, inspect gives each its host and the endpoint on that host's address", async () => {
    const file = composeFile(`services:
  web:
    image: corral-hello:latest
    scale: 2
    ports: ["80"]
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
`);
    const up = await corral(server, ["up", "-d", "-f", file, "-s", "spread"]);
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    expect((await containers("spread")).map((c) => c.host).sort()).toEqual(["hx4", "hx5"]);
    expect((await hostLs()).map((h) => h.containers)).toEqual([1, 1]);
    const svc = JSON.parse((await corral(server, ["inspect", "spread/web"])).stdout) as {
      publicEndpoints: Array<{ hostId: string; hostName: string; ipAddress: string; port: number }>;
      containers: Array<{ host: string; hostName: string }>;
    };
    expect(svc.containers.map((c) => [c.host, c.hostName]).sort()).toEqual([["hx4", "hx4"], ["hx5", "hx5"]]);
    expect(svc.publicEndpoints.map((e) => [e.hostId, e.ipAddress]).sort()).toEqual([["hx4", "198.18.4.2"], ["hx5", "198.18.5.2"]]);
    for (const e of svc.publicEndpoints) {
      let body = "";
      await eventually(async () => {
        body = await fetch(`http://${e.ipAddress}:${e.port}/`).then((r) => r.text()).catch(() => "");
        return body.includes("hello");
      }, 15_000, 200);
      expect(body).toContain("hello from corral");
    }
  });

  it("host label sets and removes labels; refuses corral's keys", async () => {
    const res = await corral(server, ["host", "label", "hx5", "zone=c", "disk-", "gpu=true"]);
    expect(res.stderr).toBe("");
    expect(res.stdout.trim()).toBe("hx5: gpu=true,zone=c");
    expect((await hostOf("hx5"))?.labels).toEqual({ zone: "c", gpu: "true" });
    const own = await corral(server, ["host", "label", "hx5", "io.corral.slot=1"]);
    expect(own.code).not.toBe(0);
    expect(own.stderr).toMatch(/corral's own/);
    const missing = await corral(server, ["host", "label", "nohost", "a=b"]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/host nohost not found/);
  });

  it("a drained host's containers move to the other host, batch by batch, and answer on its address; it takes no new ones; activated, it takes them again", async () => {
    const drain = await corral(server, ["host", "drain", "hx4"]);
    expect(drain.stdout.trim()).toBe("hx4: draining");
    expect((await hostOf("hx4"))?.state).toBe("draining");
    // the next reconcile moves what ran there: same slot, same name, same slot port, on hx5
    await eventually(async () => (await containers("spread")).map((c) => `${c.name} ${c.host}`).sort().join(",") === "spread-web-1 hx5,spread-web-2 hx5", 60_000, 250);
    expect((await hostLs()).map((h) => h.containers)).toEqual([0, 2]);
    const svc = JSON.parse((await corral(server, ["inspect", "spread/web"])).stdout) as { publicEndpoints: Array<{ hostId: string; ipAddress: string; port: number }> };
    expect(svc.publicEndpoints.map((e) => [e.hostId, e.ipAddress])).toEqual([["hx5", "198.18.5.2"], ["hx5", "198.18.5.2"]]);
    for (const e of svc.publicEndpoints) {
      let body = "";
      await eventually(async () => {
        body = await fetch(`http://${e.ipAddress}:${e.port}/`).then((r) => r.text()).catch(() => "");
        return body.includes("hello");
      }, 15_000, 200);
      expect(body).toContain("hello from corral");
    }
    for (const c of await fleet[0]!.docker.listContainers({ all: true, filters: { label: ["io.corral.stack=spread"] } })) throw new Error(`left on hx4: ${c.Names.join(",")}`);
    const ps = JSON.parse((await corral(server, ["ps", "spread", "--format", "json"])).stdout) as Array<{ state: string; scale: string }>;
    expect(ps.map((r) => `${r.state} ${r.scale}`)).toEqual(["active 2/2"]);
    const events = await corral(server, ["events", "spread"]);
    expect(events.code).toBe(0);
    expect(events.stdout).toMatch(/Moving spread-web-1 off hx4 \(draining\)/);

    const file = composeFile(`services:
  app:
    image: corral-busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    scale: 2
    cap_drop: [ALL]
`);
    const up = await corral(server, ["up", "-d", "-f", file, "-s", "drained"]);
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    expect((await containers("drained")).map((c) => c.host)).toEqual(["hx5", "hx5"]);
    expect((await corral(server, ["host", "activate", "hx4"])).stdout.trim()).toBe("hx4: active");
    expect((await corral(server, ["scale", "drained/app=3"])).code).toBe(0);
    await eventually(async () => (await containers("drained")).length === 3, 30_000, 200);
    expect((await containers("drained")).map((c) => c.host).sort()).toEqual(["hx4", "hx5", "hx5"]);
  }, 120_000);

  it("host rm is refused while containers are there, --force while the host is active; allowed once they are gone, and then its agent is shut out", async () => {
    const refused = await corral(server, ["host", "rm", "hx4"]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/host hx4 has 1 container of corral's stacks/);
    const forced = await corral(server, ["host", "rm", "--force", "hx4"]);
    expect(forced.code).not.toBe(0);
    expect(forced.stderr).toMatch(/is active and has 1 container:/);
    expect((await hostOf("hx4"))?.state).toBe("active");
    for (const stack of ["spread", "drained"]) expect((await corral(server, ["rm", stack])).code).toBe(0);
    expect((await hostLs()).map((h) => h.containers)).toEqual([0, 0]);
    const rm = await corral(server, ["host", "rm", "hx4"]);
    expect(rm.stderr).toBe("");
    expect(rm.stdout.trim()).toBe("hx4");
    expect((await hostLs()).map((h) => h.id)).toEqual(["hx5"]);
    // the agent still running there is refused: its heartbeat (401) ends it, saying why; a new agent with the used join token gets 403
    const removed = agents.get("hx4")!;
    const exit = await new Promise<number | null>((resolve) => (removed.exitCode !== null ? resolve(removed.exitCode) : removed.on("exit", resolve)));
    expect(exit).not.toBe(0);
    expect(agentLog.get("hx4")).toMatch(/heartbeat failed.*401/);
    expect(agentLog.get("hx4")).toMatch(/host hx4 is no longer registered with the control plane \(its token is refused\): the agent stopped/);
    const again = spawnCorral({ url: server.url, token: "" }, ["agent", "--join", server.url, "--token", joinTokens.get("hx4")!, "--docker-host", fleet[0]!.dockerHost], { CORRAL_TOKEN: "" });
    let err = "";
    again.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => again.on("exit", resolve));
    expect(code).not.toBe(0);
    expect(err).toMatch(/403/);
    expect((await hostLs()).map((h) => h.id)).toEqual(["hx5"]);
  });

  it("a host whose agent dies shows disconnected after the timeout; it can be removed", async () => {
    expect((await hostOf("hx5"))?.state).toBe("active");
    agents.get("hx5")!.kill("SIGKILL");
    const killedAt = Date.now();
    await eventually(async () => (await hostOf("hx5"))?.state === "disconnected", 15_000, 250);
    expect(Date.now() - killedAt).toBeGreaterThan(1000); // not at once: after the timeout since the last heartbeat
    expect((await corral(server, ["host", "ls"])).stdout).toMatch(/hx5\s+hx5\s+disconnected\s+198\.18\.5\.2/);
    // nothing new lands on it
    const file = composeFile(`services:
  app:
    image: corral-busybox:latest
    command: ["sleep", "60"]
    cap_drop: [ALL]
`);
    const up = await corral(server, ["up", "-d", "-f", file, "-s", "nowhere"]);
    expect(up.code).not.toBe(0);
    expect(up.stderr).toMatch(/no host/);
    expect((await hostOf("hx5"))?.containers).toBe(0);
    expect((await corral(server, ["rm", "nowhere"])).code).toBe(0);
    expect((await corral(server, ["host", "rm", "hx5"])).code).toBe(0);
    expect(await hostLs()).toEqual([]);
  });
});
