import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanupStack, composeFile, corral, docker, testServer } from "./support.js";

// Service discovery, isolation between stacks, ports and retain_ip, through the CLI on the real engine.
let server: Awaited<ReturnType<typeof testServer>>;
beforeAll(async () => {
  server = await testServer({ tickMs: 300 });
});
afterAll(async () => {
  await server?.stop();
  for (const s of ["neta", "netb", "netp", "netq", "netr"]) await cleanupStack(s);
});

const idle = `["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]`;
const pair = (webPorts: string) =>
  composeFile(`services:
  web:
    image: corral-hello:latest
    ports: ${webPorts}
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
  client:
    image: corral-busybox:latest
    command: ${idle}
    cap_drop: [ALL]
`);
/** An HTTP GET from inside a container (busybox's static wget crashes on Debian; nc does not). */
const get = (from: string, host: string) => corral(server, ["exec", from, "--", "sh", "-c", `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${host} 80`]);
const inspect = async (target: string) => JSON.parse((await corral(server, ["inspect", target])).stdout) as { publicEndpoints: Array<{ port: number }>; containers: Array<{ ip: string }> };

describe("inside a stack, services find each other by name; other stacks cannot reach them", () => {
  it("web answers its neighbour by service name", async () => {
    expect((await corral(server, ["up", "-d", "-f", pair(`["60047:80"]`), "-s", "neta"])).code).toBe(0);
    const res = await get("neta/client", "web");
    expect(res.stdout).toMatch(/^HTTP\/1\.[01] 200 OK/);
    expect(res.stdout).toContain("hello from corral\n");
  });

  it("a service name answers with every replica's address (Docker's DNS round robin)", async () => {
    expect((await corral(server, ["scale", "neta/client=2"])).code).toBe(0);
    const res = await corral(server, ["exec", "neta/client", "--", "nslookup", "client"]);
    const ips = [...res.stdout.matchAll(/^Address: (\d+\.\d+\.\d+\.\d+)$/gm)].map((m) => m[1]).sort();
    const replicas = (await inspect("neta/client")).containers.map((c) => c.ip).sort();
    expect(replicas).toHaveLength(2);
    expect(ips).toEqual(replicas);
    expect((await corral(server, ["scale", "neta/client=1"])).code).toBe(0);
  });

  it("a second container cannot take a port its service's container publishes itself on the only host: refused, with the way out", async () => {
    const res = await corral(server, ["scale", "neta/web=2"]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("no host can run neta-web-2: test-host: port 60047 in use by neta-web-1;");
    expect(res.stderr).toContain(`write it without the host port ("80") to give each container its own, publish it with 'mode: ingress'`);
    expect((await corral(server, ["scale", "neta/web=1"])).code).toBe(0);
  });

  it("a second stack neither resolves nor reaches the first one's services", async () => {
    expect((await corral(server, ["up", "-d", "-f", pair("[]"), "-s", "netb"])).code).toBe(0);
    const ip = (await inspect("neta/web")).containers[0]!.ip;
    expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect((await get("neta/client", ip)).stdout).toContain("hello from corral"); // the address is right, from inside neta
    const byIp = await get("netb/client", ip);
    expect(byIp.stdout).toBe("");
    // its own web answers to "web"; neta's client is not a name it knows
    expect((await get("netb/client", "web")).stdout).toContain("hello from corral\n");
    expect((await corral(server, ["exec", "netb/client", "--", "nslookup", "client.neta"])).code).not.toBe(0);
  });

  it("a host port another stack holds is refused, naming that stack", async () => {
    const res = await corral(server, ["up", "-d", "-f", pair(`["60047:80"]`), "-s", "netq"]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("services.web.ports.0: host port 60047 is already used by stack neta");
    expect((await corral(server, ["stack", "ls"])).stdout).not.toMatch(/^netq\s/m);
  });
});

describe("ports and addresses that stay", () => {
  it("'- 80' alone gets a free host port from the policy's range, the same after an upgrade", async () => {
    const file = (v: string) =>
      composeFile(`services:\n  web:\n    image: corral-hello:latest\n    ports: ["80"]\n    environment: {V: "${v}"}\n    cap_drop: [ALL]\n    cap_add: [NET_BIND_SERVICE]\n`);
    expect((await corral(server, ["up", "-d", "-f", file("1"), "-s", "netp"])).code).toBe(0);
    const port = (await inspect("netp/web")).publicEndpoints[0]!.port;
    expect(port).toBeGreaterThanOrEqual(60000);
    expect(port).toBeLessThanOrEqual(60050);
    expect((await corral(server, ["up", "-d", "--upgrade", "--confirm-upgrade", "-f", file("2"), "-s", "netp"])).code).toBe(0);
    expect((await inspect("netp/web")).publicEndpoints[0]!.port).toBe(port);
    expect(((await docker.getContainer("netp-web-1").inspect()).NetworkSettings.Ports["80/tcp"] ?? [])[0]?.HostPort).toBe(String(port));
  });

  it("retain_ip keeps a container's address across an upgrade and its rollback", async () => {
    const file = (v: string) => composeFile(`services:\n  db:\n    image: corral-busybox:latest\n    command: ${idle}\n    environment: {V: "${v}"}\n    retain_ip: true\n    cap_drop: [ALL]\n`);
    const address = async () => Object.values((await docker.getContainer("netr-db-1").inspect()).NetworkSettings.Networks)[0]!.IPAddress;
    expect((await corral(server, ["up", "-d", "-f", file("1"), "-s", "netr"])).code).toBe(0);
    const before = await address();
    const id = (await docker.getContainer("netr-db-1").inspect()).Id;
    expect((await corral(server, ["up", "-d", "--upgrade", "-f", file("2"), "-s", "netr"])).code).toBe(0);
    expect((await docker.getContainer("netr-db-1").inspect()).Id).not.toBe(id);
    expect(await address()).toBe(before);
    expect((await corral(server, ["up", "-d", "--rollback", "-s", "netr"])).code).toBe(0);
    expect((await docker.getContainer("netr-db-1").inspect()).Id).toBe(id);
    expect(await address()).toBe(before);
  });
});
