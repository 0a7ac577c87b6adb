import type { ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fleetUnavailable, joinFleetHost, startFleetHost, type FleetHost } from "./fleet.js";
import { composeFile, corral, eventually, testServer } from "./support.js";

// Placement on real engines: three fleet hosts (dockerd per network namespace), agents joined through the CLI.
const why = await fleetUnavailable();
if (why) console.warn(`skipped: ${why}`);

interface ContainerRow {
  name: string;
  host: string;
  state: string;
}

describe.skipIf(why !== undefined)("placement over a fleet", () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  const hosts: FleetHost[] = [];
  const agents: ChildProcess[] = [];

  const joined = new Set<FleetHost>();
  const join = async (h: FleetHost) => {
    joined.add(h);
    agents.push(await joinFleetHost(server, h));
  };

  const containers = async (stack: string): Promise<ContainerRow[]> => {
    const ps = await corral(server, ["ps", stack, "--containers", "--format", "json"]);
    expect(ps.code).toBe(0);
    return (JSON.parse(ps.stdout) as ContainerRow[]).sort((a, b) => (a.name < b.name ? -1 : 1));
  };

  const answers = async (address: string, port: number) => {
    let body = "";
    await eventually(async () => {
      body = await fetch(`http://${address}:${port}/`).then((r) => r.text()).catch(() => "");
      return body.includes("hello");
    }, 15_000, 200);
    return body;
  };

  beforeAll(async () => {
    server = await testServer({ tickMs: 300, agent: false });
    hosts.push(await startFleetHost(4, "p4"), await startFleetHost(5, "p5"), await startFleetHost(6, "p6"));
    // p6 joins later, in the global service's test
    await join(hosts[0]!);
    await join(hosts[1]!);
  }, 240_000);

  afterAll(async () => {
    for (const a of agents) a.kill("SIGTERM");
    await server?.stop();
    for (const h of hosts) await h.remove();
  }, 120_000);

  it("a global service runs one container per host, and a host that joins gets its own at the next reconcile", async () => {
    const file = composeFile(`services:
  node:
    image: corral-hello:latest
    ports: ["60020:80"]
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
    deploy:
      mode: global
`);
    const up = await corral(server, ["up", "-d", "-f", file, "-s", "glob"]);
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    expect((await containers("glob")).map((c) => `${c.name} ${c.host}`)).toEqual(["glob-node-1 p4", "glob-node-2 p5"]);
    const [p4, p5, p6] = hosts as [FleetHost, FleetHost, FleetHost];
    expect(await answers(p4.address, 60020)).toContain("hello from corral");
    expect(await answers(p5.address, 60020)).toContain("hello from corral");

    await join(p6);
    await eventually(async () => (await containers("glob")).some((c) => c.host === "p6" && c.state === "running"), 60_000, 500);
    expect((await containers("glob")).map((c) => `${c.name} ${c.host}`)).toEqual(["glob-node-1 p4", "glob-node-2 p5", "glob-node-3 p6"]);
    expect(await answers(p6.address, 60020)).toContain("hello from corral");
    const ps = JSON.parse((await corral(server, ["ps", "glob", "--format", "json"])).stdout) as Array<{ scale: string }>;
    expect(ps[0]!.scale).toBe("3/global");
    expect((await corral(server, ["rm", "glob"])).code).toBe(0);
  }, 180_000);

  it("up --dry-run says where each new container would land and why, and creates nothing", async () => {
    const file = composeFile(`services:
  web:
    image: corral-hello:latest
    scale: 2
    cap_drop: [ALL]
    deploy:
      placement:
        constraints: ["node.hostname!=p4"]
`);
    const dry = await corral(server, ["up", "--dry-run", "-f", file, "-s", "dry"]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain("Would create service web");
    expect(dry.stdout).toMatch(/^Would create dry-web-1 on p5: \S.*$/m);
    expect(dry.stdout).toMatch(/^Would create dry-web-2 on p6: fewest web containers \(0\)/m);
    expect((await corral(server, ["ps", "dry"])).code).not.toBe(0); // nothing was made
    for (const h of hosts) expect(await h.docker.listContainers({ all: true, filters: { label: ["io.corral.stack=dry"] } })).toEqual([]);
  }, 60_000);

  it("replicas spread one per host, each answering on its host's address; one more than the hosts is refused naming each host's holder", async () => {
    const file = composeFile(`services:
  web:
    image: corral-hello:latest
    scale: 3
    ports: ["60021:80"]
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
`);
    const up = await corral(server, ["up", "-d", "-f", file, "-s", "spread"]);
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    expect((await containers("spread")).map((c) => `${c.name} ${c.host} ${c.state}`)).toEqual(["spread-web-1 p4 running", "spread-web-2 p5 running", "spread-web-3 p6 running"]);
    for (const h of hosts) expect(await answers(h.address, 60021)).toContain("hello from corral");

    const scale = await corral(server, ["scale", "spread/web=4"]);
    expect(scale.code).not.toBe(0);
    expect(scale.stderr).toContain("no host can run spread-web-4: p4: port 60021 in use by spread-web-1, p5: port 60021 in use by spread-web-2, p6: port 60021 in use by spread-web-3;");
    expect((await containers("spread")).length).toBe(3);

    // (the same fixed port in another stack is the site policy's to refuse at up: a host port is one stack's)
    expect((await corral(server, ["rm", "spread"])).code).toBe(0);
  }, 120_000);

  it("a constraint on node.hostname pins a service to its host", async () => {
    const file = composeFile(`services:
  web:
    image: corral-hello:latest
    scale: 2
    cap_drop: [ALL]
    deploy:
      placement:
        constraints: ["node.hostname==p5"]
`);
    const up = await corral(server, ["up", "-d", "-f", file, "-s", "pin"]);
    expect(up.code).toBe(0);
    expect((await containers("pin")).map((c) => c.host)).toEqual(["p5", "p5"]);
    expect((await corral(server, ["rm", "pin"])).code).toBe(0);
  }, 60_000);
  it("an image built or loaded on one host only: the host that could not pull it is tried last, and the service stays where it ran", async () => {
    const [p4, p5, p6] = hosts as [FleetHost, FleetHost, FleetHost];
    if (!joined.has(p6)) await join(p6); // (when this test runs alone)
    await eventually(async () => (await corral(server, ["host", "ls", "--format", "json"])).stdout.includes('"p6"'), 30_000, 300);
    // the image exists on p5 alone, under its id (no registry has it, as after 'docker build' there)
    await p5.docker.getImage("corral-hello:latest").tag({ repo: "corral-local", tag: "dev" });
    const file = composeFile(`services:
  web:
    image: corral-local:dev
    cap_drop: [ALL]
`);
    // the first try lands on p4 (the hosts are alike), which cannot pull it
    const first = await corral(server, ["up", "-d", "-f", file, "-s", "loc"]);
    expect(first.code).not.toBe(0);
    expect(first.stderr, first.stderr).toContain("corral-local");

    const again = await corral(server, ["up", "-d", "-f", file, "-s", "loc"]);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain(
      "warning: docker-compose.yml: services.web.image: corral-local:dev has no registry digest (it was built or loaded on some hosts) and p4 could not pull it: new web containers go to other hosts first",
    );
    expect((await containers("loc")).map((c) => `${c.host} ${c.state}`)).toEqual(["p5 running"]);

    // more than one per host: spreading would put them on p6 and p4, which cannot run them
    const scale = await corral(server, ["scale", "loc/web=3"]);
    expect(scale.stderr).toBe("");
    expect(scale.code).toBe(0);
    expect((await containers("loc")).map((c) => `${c.host} ${c.state}`)).toEqual(["p5 running", "p5 running", "p5 running"]);
    for (const h of [p4, p6]) expect(await h.docker.listContainers({ all: true, filters: { label: ["io.corral.stack=loc"] } })).toEqual([]);
    expect((await corral(server, ["rm", "loc"])).code).toBe(0);
  }, 120_000);
});
