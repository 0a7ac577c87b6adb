import { get } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanupStack, composeFile, corral, docker, execIn, stackContainers, testServer } from "./support.js";

// Upgrades the Spin way and the Swarm way, through the CLI, on the real engine.
let server: Awaited<ReturnType<typeof testServer>>;
beforeAll(async () => {
  server = await testServer({ tickMs: 300 });
});
afterAll(async () => {
  await server?.stop();
  for (const s of ["spin", "swarm-rb", "swarm-pause", "auto", "rot", "rev", "sf", "hl", "mon", "early"]) await cleanupStack(s);
});

const idle = `["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]`;
const spinFile = (webVersion: string, appVersion: string) =>
  composeFile(`services:
  web:
    image: corral-hello:latest
    environment: {VERSION: "${webVersion}"}
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
  app:
    image: corral-busybox:latest
    command: ${idle}
    environment: {VERSION: "${appVersion}"}
    cap_drop: [ALL]
  db:
    image: corral-busybox:latest
    command: ${idle}
    cap_drop: [ALL]
`);

type Row = Record<string, string>;
const ps = async (args: string[]) => JSON.parse((await corral(server, ["ps", ...args, "--format", "json"])).stdout) as Row[];
const services = async (stack: string) => Object.fromEntries((await ps(["--all"])).filter((r) => r.name!.startsWith(`${stack}/`)).map((r) => [r.name!.split("/")[1], `${r.state} ${r.scale}`]));
const engine = async (stack: string) => Object.fromEntries((await stackContainers(stack)).map((c) => [c.Names[0]!.slice(1), `${c.Id.slice(0, 12)} ${c.State}`]));

describe("the Spin lesson-3 flow", () => {
  it("up, upgrade two of three, confirm, force-upgrade, rollback", async () => {
    expect((await corral(server, ["up", "-d", "-f", spinFile("1", "1"), "-s", "spin"])).code).toBe(0);
    const v1 = await engine("spin");

    const plan = await corral(server, ["up", "--upgrade", "--dry-run", "-f", spinFile("2", "2"), "-s", "spin"]);
    expect(plan.stdout).toContain("Would upgrade web: environment");
    expect(plan.stdout).toContain("Would upgrade app: environment");
    expect(plan.stdout).not.toContain("db");
    expect(await engine("spin")).toEqual(v1); // a dry run changes nothing

    const up = await corral(server, ["up", "-d", "--upgrade", "-f", spinFile("2", "2"), "-s", "spin"]);
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    expect(up.stdout).toContain("Upgrading web");
    expect(up.stdout).toContain("Upgrading app");
    expect(await services("spin")).toEqual({ web: "upgraded 2/1", app: "upgraded 2/1", db: "active 1/1" });
    const upgraded = await engine("spin");
    expect(upgraded["spin-db-1"]).toBe(v1["spin-db-1"]); // untouched: the same container
    expect(upgraded["spin-web-1-r1"]).toBe(v1["spin-web-1"]!.replace("running", "exited"));
    expect(upgraded["spin-web-1"]).toMatch(/running$/);
    // ps lists the old containers under their slots' names, with the ids they had
    const listed = (await ps(["--all", "--containers"])).filter((c) => c.name!.startsWith("spin-"));
    expect(listed.filter((c) => c.state === "stopped").map((c) => c.name).sort()).toEqual(["spin-app-1", "spin-web-1"]);
    expect(listed.filter((c) => c.name === "spin-web-1").map((c) => c.docker!.slice(0, 12)).sort()).toEqual([upgraded["spin-web-1"]!.split(" ")[0], upgraded["spin-web-1-r1"]!.split(" ")[0]].sort());

    const confirm = await corral(server, ["up", "-d", "--confirm-upgrade", "-s", "spin"]);
    expect(confirm.code).toBe(0);
    const confirmed = await engine("spin");
    expect(Object.keys(confirmed).sort()).toEqual(["spin-app-1", "spin-db-1", "spin-web-1"]);
    expect(await services("spin")).toEqual({ web: "active 1/1", app: "active 1/1", db: "active 1/1" });

    const force = await corral(server, ["up", "-d", "--force-upgrade", "-f", spinFile("2", "2"), "-s", "spin"]);
    expect(force.code).toBe(0);
    const forced = await engine("spin");
    expect(Object.keys(forced)).toHaveLength(6);
    expect(Object.values(forced).filter((v) => v.endsWith("exited"))).toHaveLength(3);

    const rollback = await corral(server, ["up", "-d", "--rollback", "-s", "spin"]);
    expect(rollback.stderr).toBe("");
    expect(rollback.code).toBe(0);
    expect(await engine("spin")).toEqual(confirmed); // the old ids run again, the new are gone

    const history = JSON.parse((await corral(server, ["history", "spin", "--format", "json"])).stdout) as Array<{ revision: number; current: boolean; rollback: string | null; changed: Array<{ service: string; keys: string[] }> }>;
    expect(history.map((h) => [h.revision, h.rollback])).toEqual([[1, null], [2, null], [3, null], [2, "rollback to 2"]]); // the rollback is an entry of its own
    expect(history.filter((h) => h.current).map((h) => h.revision)).toEqual([2]);
    expect(history[1]!.changed).toEqual([
      { service: "web", keys: ["environment"] },
      { service: "app", keys: ["environment"] },
    ]);
    expect((await corral(server, ["rm", "spin"])).code).toBe(0);
  });
});

const swarmFile = (version: string, healthy: boolean, action: "rollback" | "pause") =>
  composeFile(`services:
  web:
    image: corral-hello:latest
    environment: {VERSION: "${version}"}
    scale: 2
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
    healthcheck:
      test: ${healthy ? `["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"]` : `["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1/missing"]`}
      interval: 1s
      timeout: 1s
      retries: 2
    deploy:
      update_config: {parallelism: 1, failure_action: ${action}}
`);

describe("the Swarm exercise: a failing health check", () => {
  it("failure_action rollback: ends on v1, healthy, by itself; up exits non-zero naming the health check", async () => {
    const first = await corral(server, ["up", "-d", "-f", swarmFile("1", true, "rollback"), "-s", "swarm-rb"]);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    const v1 = await engine("swarm-rb");
    const t0 = Date.now();
    const up = await corral(server, ["up", "-d", "--upgrade", "-f", swarmFile("2", false, "rollback"), "-s", "swarm-rb"]);
    const took = Date.now() - t0;
    expect(up.code).not.toBe(0);
    expect(up.stderr).toMatch(/container swarm-rb-web-1 is unhealthy: health check "wget -q -O \/dev\/null http:\/\/127.0.0.1\/missing" failed/);
    expect(up.stderr).toContain("rolled back to revision 1");
    expect(await engine("swarm-rb")).toEqual(v1);
    expect(await services("swarm-rb")).toEqual({ web: "healthy 2/2" });
    console.log(`failing-health-check rollback: up --upgrade returned after ${took} ms`);
  });

  it("failure_action pause: the rollout stops, paused, with the two ways out; --rollback restores v1", async () => {
    expect((await corral(server, ["up", "-d", "-f", swarmFile("1", true, "pause"), "-s", "swarm-pause"])).code).toBe(0);
    const v1 = await engine("swarm-pause");
    const up = await corral(server, ["up", "-d", "--upgrade", "-f", swarmFile("2", false, "pause"), "-s", "swarm-pause"]);
    expect(up.code).not.toBe(0);
    expect(up.stderr).toContain("the upgrade is paused: 'corral up --rollback' to go back, or 'corral up --confirm-upgrade' to keep what runs");
    expect((await services("swarm-pause")).web).toMatch(/^paused/);
    // the second replica was never touched
    expect((await engine("swarm-pause"))["swarm-pause-web-2"]).toBe(v1["swarm-pause-web-2"]);
    const back = await corral(server, ["up", "-d", "--rollback", "-s", "swarm-pause"]);
    expect(back.code).toBe(0);
    expect(await engine("swarm-pause")).toEqual(v1);
  });
});

describe("the monitor window", () => {
  it("a new container that turns unhealthy inside deploy.update_config.monitor is rolled back by itself; up says why", async () => {
    const file = (version: string, sickAfter: string) =>
      composeFile(`services:
  web:
    image: corral-busybox:latest
    command: ["sh", "-c", "touch /tmp/ok; ${sickAfter ? `(sleep ${sickAfter}; rm /tmp/ok) & ` : ""}trap 'exit 0' TERM; while true; do sleep 1; done"]
    environment: {VERSION: "${version}"}
    cap_drop: [ALL]
    healthcheck: {test: ["CMD", "test", "-f", "/tmp/ok"], interval: 1s, timeout: 1s, retries: 1}
    deploy:
      update_config: {monitor: 20s, failure_action: rollback}
`);
    expect((await corral(server, ["up", "-d", "-f", file("1", ""), "-s", "mon"])).code).toBe(0);
    const v1 = await engine("mon");
    const up = await corral(server, ["up", "-d", "--upgrade", "-f", file("2", "2"), "-s", "mon"]);
    expect(up.code).not.toBe(0);
    expect(up.stderr).toMatch(/container mon-web-1 turned unhealthy \d+ s after it started, inside the monitor window of 20 s/);
    expect(up.stderr).toContain("rolled back to revision 1");
    expect(await engine("mon")).toEqual(v1);
    expect(await services("mon")).toEqual({ web: "healthy 1/1" });
    expect((await corral(server, ["rm", "mon"])).code).toBe(0);
  });
});

describe("auto-confirm", () => {
  it("an upgrade confirms by itself once its containers have run for the duration", async () => {
    expect((await corral(server, ["up", "-d", "-f", spinFile("1", "1"), "-s", "auto"])).code).toBe(0);
    const up = await corral(server, ["up", "-d", "--upgrade", "--auto-confirm", "5s", "-f", spinFile("2", "1"), "-s", "auto"]);
    expect(up.code).toBe(0);
    expect((await services("auto")).web).toBe("upgraded 2/1");
    const deadline = Date.now() + 25_000;
    while (Date.now() < deadline && (await services("auto")).web !== "active 1/1") await new Promise((r) => setTimeout(r, 200));
    expect(await services("auto")).toEqual({ web: "active 1/1", app: "active 1/1", db: "active 1/1" });
    expect(Object.keys(await engine("auto")).sort()).toEqual(["auto-app-1", "auto-db-1", "auto-web-1"]);
    expect((await corral(server, ["rm", "auto"])).code).toBe(0);
  });
});

describe("start-first with a published port", () => {
  const sfFile = (version: string) =>
    composeFile(`services:
  web:
    image: corral-hello:latest
    command: ["sh", "-c", "echo v$$VERSION > /www/index.html; trap 'exit 0' TERM; httpd -f -p 80 -h /www & wait $$!"]
    environment: {VERSION: "${version}"}
    ports: ["60041:80"]
    scale: 2
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"]
      interval: 1s
      timeout: 1s
      retries: 2
    deploy:
      update_config: {parallelism: 1, order: start-first}
`);
  /** One request on a fresh connection, as a health probe or a new visitor makes it. */
  const probe = () =>
    new Promise<string>((resolve) => {
      const req = get({ host: "127.0.0.1", port: 60041, path: "/", agent: false, timeout: 3000 }, (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => resolve(res.statusCode === 200 ? body.trim() : `status ${res.statusCode}`));
      });
      req.on("error", (e) => resolve(`error ${e.message}`));
      req.on("timeout", () => req.destroy(new Error("timeout")));
    });

  it("two replicas share the port; a probe loop sees no failed request while the upgrade hands over", async () => {
    const first = await corral(server, ["up", "-d", "-f", sfFile("1"), "-s", "sf"]);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect((await ps([])).find((r) => r.name === "sf/web")).toMatchObject({ scale: "2/2", endpoints: "0.0.0.0:60041->80/tcp" });
    expect(await probe()).toBe("v1");

    const answers: string[] = [];
    let probing = true;
    const loop = (async () => {
      while (probing) {
        answers.push(await probe());
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const up = await corral(server, ["up", "-d", "--upgrade", "--confirm-upgrade", "-f", sfFile("2"), "-s", "sf"]);
    for (let i = 0; i < 10; i++) answers.push(await probe());
    probing = false;
    await loop;
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    expect(answers.filter((a) => a !== "v1" && a !== "v2")).toEqual([]);
    expect(answers).toContain("v1");
    expect(answers.slice(-10)).toEqual(Array(10).fill("v2"));
    expect(await services("sf")).toEqual({ web: "healthy 2/2" });
    console.log(`start-first upgrade of 2 replicas: ${answers.length} requests, none failed`);
    // an upgrade rolled back: the very same v2 containers, stopped and started again, serve again
    expect((await corral(server, ["up", "-d", "--upgrade", "-f", sfFile("3"), "-s", "sf"])).code).toBe(0);
    expect(await probe()).toBe("v3");
    expect((await corral(server, ["up", "-d", "--rollback", "-s", "sf"])).code).toBe(0);
    for (let i = 0; i < 5; i++) expect(await probe()).toBe("v2");
    expect((await corral(server, ["rm", "sf"])).code).toBe(0);
    expect(await probe()).toMatch(/^error/); // the port is given back with the stack
  });
});

describe("health after start", () => {
  it("a check that passes at once counts at once: up does not wait for the engine's first probe, one interval (60 s) after the start", async () => {
    const file = composeFile(`services:
  web:
    image: corral-hello:latest
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
    healthcheck: {test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"], interval: 60s, timeout: 2s, retries: 3}
`);
    expect((await corral(server, ["up", "-d", "-f", file, "-s", "early"])).code).toBe(0);
    expect(await services("early")).toEqual({ web: "healthy 1/1" });
    // the engine has not probed yet: the agent ran the check itself, in the container, and it passed
    expect((await docker.getContainer("early-web-1").inspect()).State.Health?.Status).toBe("starting");
    expect((await corral(server, ["rm", "early"])).code).toBe(0);
  });

  it("a container that turns unhealthy shows in ps, and healthy again when it recovers", async () => {
    const file = composeFile(`services:
  web:
    image: corral-busybox:latest
    command: ["sh", "-c", "touch /tmp/ok; trap 'exit 0' TERM; while true; do sleep 1; done"]
    cap_drop: [ALL]
    healthcheck: {test: ["CMD", "test", "-f", "/tmp/ok"], interval: 1s, timeout: 1s, retries: 1}
`);
    expect((await corral(server, ["up", "-d", "-f", file, "-s", "hl"])).code).toBe(0);
    expect(await services("hl")).toEqual({ web: "healthy 1/1" });
    const until = async (want: string) => {
      for (let i = 0; i < 100 && (await services("hl")).web !== want; i++) await new Promise((r) => setTimeout(r, 100));
      return (await services("hl")).web;
    };
    await execIn("hl-web-1", ["rm", "/tmp/ok"]);
    expect(await until("unhealthy 1/1")).toBe("unhealthy 1/1");
    await execIn("hl-web-1", ["touch", "/tmp/ok"]);
    expect(await until("healthy 1/1")).toBe("healthy 1/1");
    expect((await corral(server, ["rm", "hl"])).code).toBe(0);
  });
});

describe("rollback to any revision", () => {
  it("after three upgrades, --rollback --to-revision 2 deploys revision 2's image and environment, itself rollbackable", async () => {
    const rev = (image: string, version: string) =>
      composeFile(`services:\n  web:\n    image: ${image}\n    command: ${idle}\n    environment: {VERSION: "${version}"}\n    cap_drop: [ALL]\n`);
    const deployed = async () => {
      const c = await docker.getContainer("rev-web-1").inspect();
      return `${c.Config.Image} ${c.Config.Env.find((e) => e.startsWith("VERSION="))} ${c.State.Status}`;
    };
    expect((await corral(server, ["up", "-d", "-f", rev("corral-busybox:latest", "1"), "-s", "rev"])).code).toBe(0);
    expect((await corral(server, ["up", "-d", "--upgrade", "--confirm-upgrade", "-f", rev("corral-hello:latest", "2"), "-s", "rev"])).code).toBe(0);
    expect((await corral(server, ["up", "-d", "--upgrade", "--confirm-upgrade", "-f", rev("corral-busybox:latest", "3"), "-s", "rev"])).code).toBe(0);
    expect((await corral(server, ["up", "-d", "--upgrade", "--confirm-upgrade", "-f", rev("corral-busybox:latest", "4"), "-s", "rev"])).code).toBe(0);
    expect(await deployed()).toBe("corral-busybox:latest VERSION=4 running");
    const history = await corral(server, ["history", "rev"]);
    expect(history.stdout).toMatch(/^\s*2\s.*web \(environment, image\)/m);

    const back = await corral(server, ["up", "-d", "--rollback", "--to-revision", "2", "-s", "rev"]);
    expect(back.stderr).toBe("");
    expect(back.code).toBe(0);
    expect(await deployed()).toBe("corral-hello:latest VERSION=2 running");
    expect(await services("rev")).toEqual({ web: "upgraded 2/1" }); // an upgrade like any other: confirm or roll back
    expect((await corral(server, ["history", "rev"])).stdout).toMatch(/^\s*5\s.*web \(environment, image\)/m);

    expect((await corral(server, ["up", "-d", "--rollback", "-s", "rev"])).code).toBe(0);
    expect(await deployed()).toBe("corral-busybox:latest VERSION=4 running");
    expect((await corral(server, ["rm", "rev"])).code).toBe(0);
  });
});

describe("secret rotation", () => {
  it("a new version is rolled out by up --upgrade, and rollback brings the old value back", async () => {
    const { mkdtempSync, writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const { docker } = await import("./support.js");
    const dir = mkdtempSync(join(tmpdir(), "corral-rot-"));
    writeFileSync(join(dir, "v1"), "first value");
    writeFileSync(join(dir, "v2"), "second value");
    expect((await corral(server, ["secret", "create", "web.rot.pw", join(dir, "v1")])).code).toBe(0);
    const file = composeFile(`services:
  web:
    image: corral-busybox:latest
    command: ${idle}
    cap_drop: [ALL]
    secrets: [web.rot.pw]
secrets:
  web.rot.pw:
    external: true
`);
    const read = async () => {
      const exec = await docker.getContainer("rot-web-1").exec({ Cmd: ["cat", "/run/secrets/web.rot.pw"], AttachStdout: true });
      const stream = await exec.start({});
      return new Promise<string>((resolve) => {
        let out = "";
        stream.on("data", (d: Buffer) => (out += d.toString()));
        stream.on("end", () => resolve(out));
      });
    };
    expect((await corral(server, ["up", "-d", "-f", file, "-s", "rot"])).code).toBe(0);
    const v1 = await engine("rot");
    expect(await read()).toContain("first value");
    expect((await corral(server, ["secret", "create", "web.rot.pw", join(dir, "v2")])).stdout).toContain("web.rot.pw version 2");
    const plan = await corral(server, ["up", "--upgrade", "--dry-run", "-f", file, "-s", "rot"]);
    expect(plan.stdout).toContain("Would upgrade web: secret versions");
    expect((await corral(server, ["up", "-d", "--upgrade", "-f", file, "-s", "rot"])).code).toBe(0);
    expect(await read()).toContain("second value");
    expect((await corral(server, ["up", "-d", "--rollback", "-s", "rot"])).code).toBe(0);
    expect(await engine("rot")).toEqual(v1);
    expect(await read()).toContain("first value");
    expect((await corral(server, ["rm", "rot"])).code).toBe(0);
  });
});
