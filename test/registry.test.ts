import type { ChildProcess } from "node:child_process";
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fleetUnavailable, joinFleetHost, startFleetHost, type FleetHost } from "./fleet.js";
import { dropImage, pushImage, registryUnavailable, startRegistry, type TestRegistry } from "./registry.js";
import { composeFile, corral, docker, stackContainers, testServer } from "./support.js";

// Private registries end to end: a real registry (Debian's docker-registry, htpasswd logins) on this machine,
// a real engine pulling from it with the stack owner's login, and the failures a user must see when it will not.
const why = await registryUnavailable();
if (why) console.warn(`skipped: ${why}`);

type Row = Record<string, string>;
const services = async (who: { url: string; token: string }) => JSON.parse((await corral(who, ["ps", "--all", "--format", "json"])).stdout) as Row[];
const imageOn = (engine: typeof docker, ref: string) => engine.getImage(ref).inspect().then(() => true, () => false);
/** Docker's words for a pull a registry refused a login (or the lack of one). */
const refusedPull = /no basic auth credentials|unauthorized|authentication required|pull access denied/;
const logged: string[] = [];

describe.skipIf(why !== undefined)("private registries on the local engine", () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  let registry: TestRegistry;
  let image = "";
  let ann = { url: "", token: "" };
  let cid = { url: "", token: "" };
  const PASSWORD = "ann-Registry-pass-1";
  const file = () => composeFile(`services:\n  web:\n    image: ${image}\n    cap_drop: [ALL]\n    cap_add: [NET_BIND_SERVICE]\n`);

  beforeAll(async () => {
    registry = await startRegistry("127.0.0.1", { ann: PASSWORD });
    image = `${registry.server}/private/hello:1`;
    await pushImage(docker, "corral-hello:latest", image, { username: "ann", password: PASSWORD, serveraddress: registry.server });
    const sink = (line: string, fields?: unknown) => logged.push(`${line} ${JSON.stringify(fields ?? {})}`);
    server = await testServer({ tickMs: 300, log: { info: sink, error: sink, debug: sink } });
    const user = async (name: string, group: string) => ({ url: server.url, token: (await corral(server, ["user", "create", name, "--group", group])).stdout.trim() });
    ann = await user("ann", "lab");
    cid = await user("cid", "other");
  }, 120_000);

  afterAll(async () => {
    for (const s of ["reg-none", "reg-wrong", "reg-ok", "reg-cid"]) await corral(server, ["rm", s]).catch(() => undefined);
    await server?.stop();
    await dropImage(docker, image).catch(() => undefined);
    await registry?.stop();
  }, 120_000);

  it("the image is not on the engine: a run must pull it", async () => {
    expect(await imageOn(docker, image)).toBe(false);
  });

  it("without a login, up fails with Docker's message, in ps DETAIL with state error, and exits non-zero", async () => {
    const up = await corral(ann, ["up", "-d", "-f", file(), "-s", "reg-none"]);
    expect(up.code).not.toBe(0);
    expect(up.stderr).toMatch(refusedPull);
    const web = (await services(ann)).find((s) => s.name === "reg-none/web");
    expect(web?.state).toBe("error");
    expect(web?.detail).toMatch(refusedPull);
    expect(web?.detail).toContain(registry.server);
    expect(await stackContainers("reg-none")).toEqual([]);
  });

  it("a password on the command line is refused, and so is one too large on stdin; nothing is stored", async () => {
    const argv = await corral(ann, ["registry", "add", registry.server, "--username", "ann", "--password", PASSWORD]);
    expect(argv.code).not.toBe(0);
    expect(argv.stderr).toContain("unknown option '--password'");
    const none = await corral(ann, ["registry", "add", registry.server, "--username", "ann"], undefined, PASSWORD);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toContain("--password-stdin");
    const huge = await corral(ann, ["registry", "add", registry.server, "--username", "ann", "--password-stdin"], undefined, "x".repeat(100_000));
    expect(huge.code).not.toBe(0);
    expect(huge.stderr).toMatch(/more than 16386 bytes/);
    const bad = await corral(ann, ["registry", "add", `http://${registry.server}`, "--username", "ann", "--password-stdin"], undefined, PASSWORD);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("without a scheme");
    expect(JSON.parse((await corral(ann, ["registry", "ls", "--format", "json"])).stdout)).toEqual([]);
  });

  it("with a wrong password, up fails likewise with the registry's refusal", async () => {
    const add = await corral(ann, ["registry", "add", registry.server, "--username", "ann", "--password-stdin"], undefined, "wrong-password-9\n");
    expect(add.code).toBe(0);
    const up = await corral(ann, ["up", "-d", "-f", file(), "-s", "reg-wrong"]);
    expect(up.code).not.toBe(0);
    expect(up.stderr).toMatch(refusedPull);
    const web = (await services(ann)).find((s) => s.name === "reg-wrong/web");
    expect(web).toMatchObject({ state: "error" });
    expect(web?.detail).toMatch(refusedPull);
  });

  it("with the right password, the image is pulled and the service runs", async () => {
    const add = await corral(ann, ["registry", "add", registry.server, "--username", "ann", "--password-stdin"], undefined, `${PASSWORD}\n`);
    expect(add).toMatchObject({ code: 0, stdout: `Replaced the login of ann for ${registry.server}\n` });
    const up = await corral(ann, ["up", "-d", "-f", file(), "-s", "reg-ok"]);
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    expect(await imageOn(docker, image)).toBe(true);
    const running = await stackContainers("reg-ok");
    expect(running.map((c) => [c.Image, c.State])).toEqual([[image, "running"]]);
    expect((await services(ann)).find((s) => s.name === "reg-ok/web")).toMatchObject({ state: "active", scale: "1/1" });
  });

  it("registry ls shows SERVER USERNAME OWNER GROUP CREATED, never the password; another group sees nothing", async () => {
    const table = await corral(ann, ["registry", "ls"]);
    expect(table.stdout.split("\n")[0]).toMatch(/^SERVER\s+USERNAME\s+OWNER\s+GROUP\s+CREATED$/);
    expect(table.stdout).toContain(registry.server);
    const rows = JSON.parse((await corral(ann, ["registry", "ls", "--format", "json"])).stdout) as Row[];
    expect(rows).toEqual([{ server: registry.server, username: "ann", owner: "ann", group: "lab", created: expect.any(String) as unknown as string }]);
    for (const out of [table.stdout, JSON.stringify(rows), (await corral(server, ["registry", "ls", "--format", "json"])).stdout]) expect(out).not.toContain(PASSWORD);
    expect(JSON.parse((await corral(cid, ["registry", "ls", "--format", "json"])).stdout)).toEqual([]);
    expect((await corral(cid, ["registry", "rm", registry.server, "--owner", "ann"])).code).not.toBe(0);
  });

  it("another user's stack cannot use the first user's login, nor the copy it pulled onto the host", async () => {
    expect(await imageOn(docker, image)).toBe(true); // ann's pull left it here
    const up = await corral(cid, ["up", "-d", "-f", file(), "-s", "reg-cid"]);
    expect(up.code).not.toBe(0);
    expect(up.stderr).toMatch(refusedPull);
    const web = (await services(cid)).find((s) => s.name === "reg-cid/web");
    expect(web).toMatchObject({ state: "error" });
    expect(web?.detail).toMatch(refusedPull);
    expect(await stackContainers("reg-cid")).toEqual([]);
  });

  it("the password is nowhere: not in events, exports, the server's log, or its data folder", async () => {
    const events = await corral(ann, ["events", "reg-ok"]);
    expect(events.code).toBe(0);
    expect(events.stdout).toContain("reg-ok");
    const exported = await corral(ann, ["export", "reg-ok", "-f", "-"]);
    expect(exported.stdout).toContain(image);
    for (const text of [events.stdout, exported.stdout, logged.join("\n")]) {
      expect(text).not.toContain(PASSWORD);
      expect(text).not.toContain(Buffer.from(PASSWORD).toString("base64"));
    }
    // dynalite's LevelDB files, the key file, the token: grep every byte
    const found = (needle: string) => {
      try {
        return execFileSync("grep", ["-rlaF", needle, server.dataDir], { encoding: "utf8" }).trim();
      } catch {
        return "";
      }
    };
    expect(found(PASSWORD)).toBe("");
    expect(found(Buffer.from(PASSWORD).toString("base64"))).toBe("");
    expect(found("ann-Registry")).toBe("");
  });

  it("registry rm removes the login: with the image still on the host (reg-ok runs it), up --pull pulls again, and fails", async () => {
    expect(await imageOn(docker, image)).toBe(true);
    expect((await corral(ann, ["registry", "rm", registry.server])).code).toBe(0);
    expect(JSON.parse((await corral(ann, ["registry", "ls", "--format", "json"])).stdout)).toEqual([]);
    const up = await corral(ann, ["up", "-d", "--pull", "-f", file(), "-s", "reg-none"]);
    expect(up.code).not.toBe(0);
    expect(up.stderr).toMatch(refusedPull);
  });
});

const fleetWhy = why ?? (await fleetUnavailable());
if (fleetWhy && !why) console.warn(`skipped: ${fleetWhy}`);

describe.skipIf(fleetWhy !== undefined)("private registries on a fleet of engines", () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  let registry: TestRegistry;
  let image = "";
  const hosts: FleetHost[] = [];
  const agents: ChildProcess[] = [];
  const PASSWORD = "fleet-Registry-pass-2";
  let ann = { url: "", token: "" };
  const file = () =>
    composeFile(`services:
  a:
    image: ${image}
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
    deploy:
      placement:
        constraints: ["node.hostname==h2"]
  b:
    image: ${image}
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
    deploy:
      placement:
        constraints: ["node.hostname==h3"]
`);

  beforeAll(async () => {
    server = await testServer({ tickMs: 300, agent: false });
    hosts.push(await startFleetHost(2, "h2"), await startFleetHost(3, "h3"));
    for (const h of hosts) agents.push(await joinFleetHost(server, h));
    // the registry on this side of h2's veth: both engines reach it, and take it over plain HTTP (--insecure-registry 198.18.0.0/15)
    registry = await startRegistry("198.18.2.1", { ann: PASSWORD });
    image = `${registry.server}/private/hello:2`;
    await pushImage(hosts[0]!.docker, "corral-hello:latest", image, { username: "ann", password: PASSWORD, serveraddress: registry.server });
    ann = { url: server.url, token: (await corral(server, ["user", "create", "ann", "--group", "lab"])).stdout.trim() };
  }, 240_000);

  afterAll(async () => {
    for (const a of agents) a.kill("SIGTERM");
    await server?.stop();
    for (const h of hosts) await h.remove();
    await registry?.stop();
  }, 120_000);

  it("without a login, each host's pull fails with Docker's message, in each service's DETAIL", async () => {
    for (const h of hosts) expect(await imageOn(h.docker, image)).toBe(false);
    const up = await corral(ann, ["up", "-d", "-f", file(), "-s", "fleet-none"]);
    expect(up.code).not.toBe(0);
    expect(up.stderr).toMatch(refusedPull);
    const rows = await services(ann);
    for (const name of ["fleet-none/a", "fleet-none/b"]) {
      const row = rows.find((s) => s.name === name);
      expect([name, row?.state]).toEqual([name, "error"]);
      expect(row?.detail).toMatch(refusedPull);
    }
    expect((await corral(ann, ["rm", "fleet-none"])).code).toBe(0);
  });

  it("with the owner's login, every host that runs the image pulls it with that login", async () => {
    expect((await corral(ann, ["registry", "add", registry.server, "-u", "ann", "--password-stdin"], undefined, PASSWORD)).code).toBe(0);
    const up = await corral(ann, ["up", "-d", "-f", file(), "-s", "fleet-ok"]);
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    const [h2, h3] = hosts as [FleetHost, FleetHost];
    for (const [h, name] of [[h2, "/fleet-ok-a-1"], [h3, "/fleet-ok-b-1"]] as const) {
      expect(await imageOn(h.docker, image)).toBe(true);
      const running = await h.docker.listContainers({ filters: { label: ["io.corral.stack=fleet-ok"] } });
      expect(running.map((c) => [c.Names[0], c.Image, c.State])).toEqual([[name, image, "running"]]);
    }
    expect((await corral(ann, ["rm", "fleet-ok"])).code).toBe(0);
  });
});
