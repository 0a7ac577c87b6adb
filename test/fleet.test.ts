import type { ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fleetUnavailable, joinFleetHost, startFleetHost, type FleetHost } from "./fleet.js";
import { composeFile, corral, eventually, testServer } from "./support.js";

// Several real engines on this machine, each in its own network namespace, each with its own agent
// joined through the CLI with a one-time token: the bench the many-hosts tests stand on.
const why = await fleetUnavailable();
if (why) console.warn(`skipped: ${why}`);

describe.skipIf(why !== undefined)("a fleet of engines on one machine", () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  const hosts: FleetHost[] = [];
  const agents: ChildProcess[] = [];

  beforeAll(async () => {
    server = await testServer({ tickMs: 300, agent: false });
    hosts.push(await startFleetHost(2, "h2"), await startFleetHost(3, "h3"));
    for (const h of hosts) agents.push(await joinFleetHost(server, h));
  }, 180_000);

  afterAll(async () => {
    for (const a of agents) a.kill("SIGTERM");
    await server?.stop();
    for (const h of hosts) await h.remove();
  }, 120_000);

  it("each agent joins with its token and runs what is placed on its host; the port answers on that host's address", async () => {
    const ls = JSON.parse((await corral(server, ["host", "ls", "--format", "json"])).stdout) as Array<{ id: string }>;
    expect(ls.map((h) => h.id).sort()).toEqual(["h2", "h3"]);
    const file = composeFile(`services:
  web:
    image: corral-hello:latest
    ports: ["60010:80"]
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
    deploy:
      placement:
        constraints: ["node.hostname==h3"]
`);
    const up = await corral(server, ["up", "-d", "-f", file, "-s", "fleet"]);
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    const [h2, h3] = hosts as [FleetHost, FleetHost];
    expect((await h3.docker.listContainers({ filters: { label: ["io.corral.stack=fleet"] } })).map((c) => c.Names[0])).toEqual(["/fleet-web-1"]);
    expect(await h2.docker.listContainers({ all: true, filters: { label: ["io.corral.stack=fleet"] } })).toEqual([]);
    let body = "";
    await eventually(async () => {
      body = await fetch(`http://${h3.address}:60010/`).then((r) => r.text()).catch(() => "");
      return body.includes("hello");
    }, 15_000, 200);
    expect(body).toContain("hello from corral");
    expect((await corral(server, ["rm", "fleet"])).code).toBe(0);
    expect(await h3.docker.listContainers({ all: true, filters: { label: ["io.corral.stack=fleet"] } })).toEqual([]);
  });
});
