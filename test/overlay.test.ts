import type { ChildProcess } from "node:child_process";
import { createSocket, type Socket } from "node:dgram";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as dnsPacket from "dns-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONTROL_ADDRESS, fleetUnavailable, routeFleet, spawnAgentInside, startFleetHost, type FleetHost } from "./fleet.js";
import { composeFile, corral, eventually, outputContains, testServer } from "./support.js";

// The stack networks across hosts, on a routed bench: each host an engine in its own network namespace with its
// agent inside it (as on a machine of its own), the control plane on an address every namespace reaches. What is
// asserted is what a container sees: names it resolves, pages it fetches, addresses it cannot reach.
const why = await fleetUnavailable();
if (why) console.warn(`skipped: ${why}`);

interface Row {
  name: string;
  host: string;
  ip: string;
  state: string;
  docker: string;
}

describe.skipIf(why !== undefined)("one network per stack across hosts", () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  let unroute: () => Promise<void> = async () => {};
  const fleet: FleetHost[] = [];
  const agents = new Map<string, ChildProcess>();
  let front: FleetHost;
  let back: FleetHost;

  /** Run a command in a container on a fleet host's engine: its output, and whether it exited 0. */
  const execOn = async (h: FleetHost, container: string, cmd: string[]) => {
    const exec = await h.docker.getContainer(container).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({});
    const chunks: Buffer[] = [];
    await new Promise<void>((resolve) => {
      stream.on("data", (d: Buffer) => chunks.push(d));
      stream.on("end", () => resolve());
    });
    const { ExitCode } = await exec.inspect();
    // the multiplexed stream's frames: 8-byte headers, then the payload
    const all = Buffer.concat(chunks);
    let out = "";
    for (let i = 0; i + 8 <= all.length; ) {
      const n = all.readUInt32BE(i + 4);
      out += all.subarray(i + 8, i + 8 + n).toString();
      i += 8 + n;
    }
    return { ok: ExitCode === 0, out };
  };
  // busybox's wget crashes with its own -T: the applet `timeout` bounds it instead
  const fetchFrom = (h: FleetHost, container: string, url: string) => execOn(h, container, ["timeout", "3", "wget", "-q", "-O", "-", url]);
  /** The addresses a container's resolver gives for a name, in the order given (none when it does not resolve). */
  // [] only for NXDOMAIN: the hosts' resolver (below) answers so every name it does not know. A lookup that times out
  // (a loaded machine) is asked again, and then fails the test rather than passing a "does not resolve" check.
  const resolve = async (h: FleetHost, container: string, name: string): Promise<string[]> => {
    let { ok, out } = await execOn(h, container, ["timeout", "3", "nslookup", name]);
    for (let tries = 1; !ok && !/NXDOMAIN/.test(out) && tries < 4; tries++) ({ ok, out } = await execOn(h, container, ["timeout", "3", "nslookup", name]));
    if (!ok && !/NXDOMAIN/.test(out)) throw new Error(`nslookup ${name} in ${container} on ${h.name} got no answer: ${out}`);
    if (!ok) return [];
    // busybox: the server's lines first ("Server:", "Address: 127.0.0.11:53"), then the answers
    const answers = out.split(/\n\s*\n/).slice(1).join("\n");
    return [...answers.matchAll(/^Address:\s*(\d+\.\d+\.\d+\.\d+)\s*$/gm)].map((m) => m[1]!);
  };
  const rows = async (stack: string) => JSON.parse((await corral(server, ["ps", stack, "--containers", "--format", "json"])).stdout) as Row[];
  const sleeper = `["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]`;
  const hostname = (r: Row) => r.docker.slice(0, 12);
  const shop = `services:
  web:
    image: corral-busybox:latest
    command: ${sleeper}
    cap_drop: [ALL]
    deploy:
      placement:
        constraints: [node.labels.zone==front]
  app:
    image: corral-busybox:latest
    command: ["sh", "-c", "mkdir -p /tmp/w && hostname > /tmp/w/index.html && trap 'exit 0' TERM; httpd -f -p 5000 -h /tmp/w & wait $$!"]
    cap_drop: [ALL]
    deploy:
      placement:
        constraints: [node.labels.zone==back]
  db:
    image: corral-hello:latest
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
    deploy:
      placement:
        constraints: [node.labels.zone==back]
`;

  // the hosts' own resolver (their /etc/resolv.conf's), on the control plane's address: one name of the outside world,
  // NXDOMAIN for every other; what the stacks' name servers do not know goes here
  let outside: Socket | undefined;
  const OUTSIDE_NAME = "gateway.example.test";
  const OUTSIDE_ADDRESS = "198.18.99.99";
  const startOutsideResolver = async () => {
    const s = createSocket("udp4");
    s.on("message", (m, from) => {
      const q = dnsPacket.decode(m);
      const question = q.questions?.[0];
      const known = question?.name === OUTSIDE_NAME;
      const answers: dnsPacket.Answer[] = known && question?.type === "A" ? [{ type: "A", name: OUTSIDE_NAME, ttl: 5, data: OUTSIDE_ADDRESS }] : [];
      s.send(dnsPacket.encode({ type: "response", id: q.id ?? 0, flags: dnsPacket.RECURSION_AVAILABLE | (known ? 0 : 3), questions: q.questions ?? [], answers }), from.port, from.address);
    });
    await new Promise<void>((r) => s.bind(53, CONTROL_ADDRESS, () => r()));
    outside = s;
    const file = join(mkdtempSync(join(tmpdir(), "corral-resolv-")), "resolv.conf");
    writeFileSync(file, `nameserver ${CONTROL_ADDRESS}\n`);
    return file;
  };

  beforeAll(async () => {
    unroute = await routeFleet();
    const resolvConf = await startOutsideResolver();
    server = await testServer({ tickMs: 300, agent: false, hostTimeoutMs: 5000, listen: CONTROL_ADDRESS });
    front = await startFleetHost(11, "ov11");
    back = await startFleetHost(12, "ov12");
    fleet.push(front, back);
    for (const [h, zone] of [
      [front, "front"],
      [back, "back"],
    ] as const) {
      const add = await corral(server, ["host", "add", h.name, "--label", `zone=${zone}`]);
      expect(add.code).toBe(0);
      // the overlay's default, auto: on, as root with the host's address on this namespace's interface
      const agent = spawnAgentInside(h, server.url, { token: add.stdout.split("\n")[1]!.trim(), env: { CORRAL_OVERLAY: "" }, resolvConf });
      agents.set(h.name, agent);
      await outputContains(agent, `corral agent ${h.name} connected`);
    }
  }, 180_000);

  afterAll(async () => {
    for (const a of agents.values()) a.kill("SIGKILL");
    await server?.stop();
    for (const h of fleet) await h.remove();
    await unroute();
    outside?.close();
  }, 120_000);

  it("web on one host reaches app on the other by name and address, app reaches db; a service's name is its stack's alone", async () => {
    const file = composeFile(shop);
    const up = await corral(server, ["up", "-d", "-f", file, "-s", "shop"]);
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    const ps = await rows("shop");
    expect(ps.map((c) => `${c.name} ${c.host}`).sort()).toEqual(["shop-app-1 ov12", "shop-db-1 ov12", "shop-web-1 ov11"]);
    const app = ps.find((c) => c.name === "shop-app-1")!;
    const web = ps.find((c) => c.name === "shop-web-1")!;
    // each host has its own subnet of the stack's network
    expect(app.ip.split(".").slice(0, 3)).not.toEqual(web.ip.split(".").slice(0, 3));

    // the stack network's MTU is the overlay's: 50 bytes under the underlay's 1500, for VXLAN's headers
    expect((await execOn(front, "shop-web-1", ["cat", "/sys/class/net/eth0/mtu"])).out.trim()).toBe("1450");
    // the overlay's routes and the name servers follow the control plane within a couple of seconds
    let got = { ok: false, out: "" };
    await eventually(async () => (got = await fetchFrom(front, "shop-web-1", "http://app:5000/")).ok, 30_000, 500).catch(() => {});
    expect(got.out.trim()).toBe(hostname(app));
    expect((await fetchFrom(front, "shop-web-1", `http://${app.ip}:5000/`)).out.trim()).toBe(hostname(app));
    expect((await fetchFrom(front, "shop-web-1", "http://app.shop:5000/")).out.trim()).toBe(hostname(app));
    // each host's name server has its own refresh: db's may come a moment after app's
    await eventually(async () => (got = await fetchFrom(back, "shop-app-1", "http://db/")).ok, 10_000, 500).catch(() => {});
    expect(got.out).toContain("hello from corral");
    expect((await fetchFrom(back, "shop-app-1", `http://${web.ip}/`)).ok).toBe(false); // nothing listens there: the address answers, refusing
    // and front's name server, on its own refresh, answers db too
    const dbIp = ps.find((c) => c.name === "shop-db-1")!.ip;
    await eventually(async () => (await resolve(front, "shop-web-1", "db")).length > 0, 10_000, 500).catch(() => {});
    expect(await resolve(front, "shop-web-1", "db")).toEqual([dbIp]);
    expect(await resolve(front, "shop-web-1", "shop-db-1")).toEqual([dbIp]);
  }, 120_000);

  it("a second stack resolves none of the first one's names and reaches none of its addresses, on either host", async () => {
    const other = composeFile(`services:
  snoop:
    image: corral-busybox:latest
    command: ${sleeper}
    cap_drop: [ALL]
    deploy:
      mode: global
`);
    expect((await corral(server, ["up", "-d", "-f", other, "-s", "other"])).code).toBe(0);
    const snoops = await rows("other");
    expect(snoops.map((c) => c.host).sort()).toEqual(["ov11", "ov12"]);
    const shop = await rows("shop");
    const ipOf = (n: string) => shop.find((c) => c.name === n)!.ip;
    // its own network works across hosts (so what fails below is the fence, not the overlay)
    const [s11, s12] = [snoops.find((c) => c.host === "ov11")!, snoops.find((c) => c.host === "ov12")!];
    await eventually(async () => (await resolve(front, s11.name, "snoop")).length === 2, 30_000, 500);
    for (const [h, snoop] of [
      [front, s11],
      [back, s12],
    ] as const) {
      // names not the stack's go on to the host's resolver (which knows this one and no other)
      expect(await resolve(h, snoop.name, OUTSIDE_NAME)).toEqual([OUTSIDE_ADDRESS]);
      expect(await resolve(h, snoop.name, "app")).toEqual([]);
      expect(await resolve(h, snoop.name, "db.shop")).toEqual([]);
      expect(await resolve(h, snoop.name, "shop-app-1")).toEqual([]);
      expect((await fetchFrom(h, snoop.name, `http://${ipOf("shop-app-1")}:5000/`)).ok).toBe(false);
      expect((await fetchFrom(h, snoop.name, `http://${ipOf("shop-db-1")}/`)).ok).toBe(false);
    }
    // and the first stack's containers still reach each other meanwhile
    expect((await fetchFrom(front, "shop-web-1", `http://${ipOf("shop-app-1")}:5000/`)).ok).toBe(true);
    expect((await corral(server, ["rm", "other"])).code).toBe(0);
  }, 120_000);

  it("app scaled over both hosts answers its name with both, round robin", async () => {
    // app over both hosts: one per host
    const spread = shop.replace(/app:\n((?:    .*\n)*?)    deploy:\n      placement:\n        constraints: \[node.labels.zone==back\]\n/, "app:\n$1    deploy:\n      replicas: 2\n      placement:\n        max_replicas_per_node: 1\n");
    expect(spread).toContain("max_replicas_per_node");
    const up = await corral(server, ["up", "-d", "--upgrade", "-f", composeFile(spread), "-s", "shop"]);
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    expect((await corral(server, ["up", "-d", "--confirm-upgrade", "-s", "shop"])).code).toBe(0);
    const apps = (await rows("shop")).filter((c) => c.name.startsWith("shop-app-"));
    expect(apps.map((c) => `${c.name} ${c.host} ${c.state}`).sort()).toEqual(["shop-app-1 ov12 running", "shop-app-2 ov11 running"]);
    const ips = apps.map((c) => c.ip).sort();
    let answers: string[] = [];
    await eventually(async () => (answers = await resolve(front, "shop-web-1", "app")).length === 2, 30_000, 500).catch(() => {});
    expect([...answers].sort()).toEqual(ips);
    // the other host learns of the far replica on its own tick: wait for it there too
    await eventually(async () => (answers = await resolve(back, "shop-db-1", "app")).length === 2, 30_000, 500).catch(() => {});
    expect([...answers].sort()).toEqual(ips);
    // round robin: the answer's order turns from one query to the next
    const firsts = new Set<string>();
    for (let i = 0; i < 6; i++) firsts.add((await resolve(back, "shop-db-1", "app"))[0]!);
    expect([...firsts].sort()).toEqual(ips);
    // and each answers, from either host
    for (const c of apps) {
      expect((await fetchFrom(front, "shop-web-1", `http://${c.ip}:5000/`)).out.trim()).toBe(hostname(c));
      expect((await fetchFrom(back, "shop-db-1", `http://${c.ip}:5000/`)).out.trim()).toBe(hostname(c));
    }
    // a container gone drops out of the answer within seconds, on both hosts; back, it is in again
    const one = apps.find((c) => c.name === "shop-app-1")!;
    expect((await corral(server, ["scale", "shop/app=1"])).code).toBe(0);
    const gone = Date.now();
    await eventually(async () => JSON.stringify(await resolve(front, "shop-web-1", "app")) === JSON.stringify([one.ip]), 15_000, 250);
    await eventually(async () => JSON.stringify(await resolve(back, "shop-db-1", "app")) === JSON.stringify([one.ip]), 15_000, 250);
    expect(Date.now() - gone).toBeLessThan(10_000);
    expect((await corral(server, ["scale", "shop/app=2"])).code).toBe(0);
    await eventually(async () => (await resolve(front, "shop-web-1", "app")).length === 2, 15_000, 250);
  }, 180_000);

  it("retain_ip across an upgrade that moves the slot to the other host: the upgrade says the address cannot follow, and the name does", async () => {
    const pinned = (zone: string, tag: string) =>
      composeFile(`services:
  keep:
    image: corral-busybox:latest
    command: ["sh", "-c", "echo ${tag} > /tmp/v; trap 'exit 0' TERM; while true; do sleep 1; done"]
    cap_drop: [ALL]
    retain_ip: true
    deploy:
      placement:
        constraints: [node.labels.zone==${zone}]
`);
    expect((await corral(server, ["up", "-d", "-f", pinned("front", "one"), "-s", "kept"])).code).toBe(0);
    const before = (await rows("kept"))[0]!;
    expect(before.host).toBe("ov11");
    const moved = await corral(server, ["up", "-d", "--upgrade", "-f", pinned("back", "two"), "-s", "kept"]);
    expect(moved.stderr).toBe("");
    expect(moved.code).toBe(0);
    expect(moved.stdout).toContain(`[keep]: Creating on ov12: retain_ip cannot keep ${before.ip} on ov11 (each host has its own subnet of the stack network)`);
    const after = (await rows("kept")).find((c) => c.name === "kept-keep-1")!;
    expect(after.host).toBe("ov12");
    expect(after.state).toBe("running");
    expect(after.ip).not.toBe(before.ip);
    // the upgrade's rollback puts the old container back, on its host, with its address
    expect((await corral(server, ["up", "-d", "--rollback", "-s", "kept"])).code).toBe(0);
    const back1 = (await rows("kept")).find((c) => c.name === "kept-keep-1")!;
    expect(`${back1.host} ${back1.ip} ${back1.state}`).toBe(`ov11 ${before.ip} running`);
    expect((await corral(server, ["rm", "kept"])).code).toBe(0);
  }, 180_000);

  it("a host lost: its containers drop out of the names within seconds", async () => {
    const apps = (await rows("shop")).filter((c) => c.name.startsWith("shop-app-"));
    expect(apps.map((c) => c.host).sort()).toEqual(["ov11", "ov12"]);
    const survivor = apps.find((c) => c.host === "ov12")!;
    expect(await resolve(back, "shop-db-1", "web")).toHaveLength(1);
    agents.get("ov11")!.kill("SIGKILL");
    // the host times out at 5 s; the name servers follow at their next refresh
    const lost = Date.now();
    await eventually(async () => JSON.stringify(await resolve(back, "shop-db-1", "app")) === JSON.stringify([survivor.ip]), 30_000, 500);
    expect(Date.now() - lost).toBeLessThan(20_000);
    expect(await resolve(back, "shop-db-1", "web")).toEqual([]); // web is pinned to the lost host: it waits, unnamed
    expect((await fetchFrom(back, "shop-db-1", "http://app:5000/")).out.trim()).toBe(hostname(survivor));
  }, 60_000);
});
