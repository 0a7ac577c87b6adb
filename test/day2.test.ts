import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanupStack, composeFile, corral, docker, eventually, execIn, follow, httpGet, stackContainers, testServer } from "./support.js";

// Day-2 operations through the CLI, on the real engine.
let server: Awaited<ReturnType<typeof testServer>>;
beforeAll(async () => {
  server = await testServer({ tickMs: 300 });
});
afterAll(async () => {
  await server?.stop();
  await cleanupStack("day2");
  await cleanupStack("day2b");
  await cleanupStack("talk");
  await cleanupStack("cron");
});

const idle = `["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]`;
const file = composeFile(`services:
  web:
    image: corral-hello:latest
    ports: ["60046:80"]
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

  it("inspect: one JSON object with fqdn, publicEndpoints, state, the config as deployed; for a stack, a service, a container", async () => {
    const svc = JSON.parse((await corral(server, ["inspect", "day2/web"])).stdout) as Record<string, unknown>;
    expect(svc).toMatchObject({ type: "service", name: "day2/web", state: "active", image: "corral-hello:latest", scale: 1, running: 1, revision: 1, fqdn: "web.day2.sandbox.localhost" });
    const [endpoint] = svc.publicEndpoints as Array<Record<string, unknown>>;
    expect(endpoint).toMatchObject({ hostId: "test-host", port: 60046, type: "publicEndpoint" });
    expect(endpoint!.ipAddress).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(await httpGet(`http://127.0.0.1:${endpoint!.port}/`)).toContain("hello from corral");
    expect((svc.config as { cap_drop: string[] }).cap_drop).toEqual(["ALL"]);
    const stack = JSON.parse((await corral(server, ["inspect", "day2"])).stdout) as { type: string; state: string; services: Array<{ name: string }> };
    expect(stack.type).toBe("stack");
    expect(stack.services.map((x) => x.name)).toEqual(["day2/web", "day2/worker"]);
    const container = JSON.parse((await corral(server, ["inspect", "day2-worker-1"])).stdout) as Record<string, unknown>;
    expect(container).toMatchObject({ type: "container", name: "day2-worker-1", service: "worker", slot: 1, state: "running", fqdn: "worker.day2.sandbox.localhost" });
    expect(container.docker).toBe((await docker.getContainer("day2-worker-1").inspect()).Id);
    const missing = await corral(server, ["inspect", "day2-nope-1"]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain("no stack, service or container named day2-nope-1");
  });

  it("stack ls shows name, state, services, revision and owner; an empty stack can be made and filled", async () => {
    expect((await corral(server, ["stack", "create", "--empty", "day2b"])).code).toBe(0);
    expect((await corral(server, ["stack", "create", "--empty", "day2b"])).stderr).toContain("stack day2b already exists");
    const ls = await corral(server, ["stack", "ls"]);
    expect(ls.stdout.split("\n")[0]).toMatch(/^NAME\s+STATE\s+SERVICES\s+REVISION\s+OWNER$/);
    expect(ls.stdout).toMatch(/^day2\s+active\s+2\s+1\s+admin$/m);
    expect(ls.stdout).toMatch(/^day2b\s+active\s+0\s+0\s+admin$/m);
    expect((await corral(server, ["up", "-d", "-f", composeFile(`services:\n  one:\n    image: corral-busybox:latest\n    command: ${idle}\n    cap_drop: [ALL]\n`), "-s", "day2b"])).code).toBe(0);
    expect((await corral(server, ["stack", "ls"])).stdout).toMatch(/^day2b\s+active\s+1\s+1\s+admin$/m);
    expect((await corral(server, ["rm", "day2b"])).code).toBe(0);
  });

  it("rm --type container: the container goes and its slot is made anew; rm --type service: the service goes, a new revision", async () => {
    const before = await engine();
    const rmc = await corral(server, ["rm", "--type", "container", "day2-worker-1"]);
    expect(rmc.stderr).toBe("");
    expect(rmc.code).toBe(0);
    const after = await engine();
    expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
    expect(after["day2-worker-1"]).toMatch(/running$/);
    expect(after["day2-worker-1"]).not.toBe(before["day2-worker-1"]);
    expect(after["day2-web-1"]).toBe(before["day2-web-1"]);

    const rms = await corral(server, ["rm", "--type", "service", "day2/worker"]);
    expect(rms.code).toBe(0);
    expect(Object.keys(await engine())).toEqual(["day2-web-1"]);
    expect(await services()).toEqual({ web: "active 1/1" });
    expect((await corral(server, ["history", "day2"])).stdout).toMatch(/^2\s+\*\s.*worker \(removed\)/m);
    // the file still has it: up brings it back, as a change
    const back = await corral(server, ["up", "-d", "-f", file, "-s", "day2"]);
    expect(back.code).toBe(0);
    expect(await services()).toEqual({ web: "active 1/1", worker: "active 1/1" });
  });

  it("events -f follows (server-sent events) and sees an upgrade's steps; Ctrl-C ends it", async () => {
    const events = follow(server, ["events", "-f", "day2"]);
    expect(await events.until("StackCreated")).toMatch(/^\S+Z {2}day2 +1 {2}StackCreated$/m); // the log from the start
    await new Promise((r) => setTimeout(r, 300)); // the past has arrived
    const before = events.seen.length;
    expect((await corral(server, ["up", "-d", "--force-upgrade", "--confirm-upgrade", "-f", file, "-s", "day2"])).code).toBe(0);
    const live = await events.until("Upgrade confirmed", before);
    expect(live).toContain("UpgradeStarted  Upgrading web | Upgrading worker");
    expect(live).toContain("StepSucceeded  [web]: Stopped");
    expect(live).toContain("StepSucceeded  [web]: Started");
    expect(live).toContain("StepSucceeded  [worker]: Removed day2-worker-1");
    expect(await events.interrupt()).toBe(0);
    const all = await corral(server, ["events", "--since", "1h"]);
    expect(all.stdout).toContain("  day2  ");
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

describe("logs and exec, carried over the host's queue and back", () => {
  const talk = composeFile(`services:
  talker:
    image: corral-busybox:latest
    command: ["sh", "-c", "echo one; echo two; echo three; sleep 0.2; echo oops >&2; trap 'exit 0' TERM; while true; do sleep 1; done"]
    cap_drop: [ALL]
`);

  it("logs --tail: the last lines, stdout and stderr kept apart", async () => {
    expect((await corral(server, ["up", "-d", "-f", talk, "-s", "talk"])).code).toBe(0);
    await new Promise((r) => setTimeout(r, 700));
    const res = await corral(server, ["logs", "--tail", "2", "talk/talker"]);
    expect(res.code).toBe(0);
    expect(res.stdout).toBe("three\n");
    expect(res.stderr).toBe("oops\n");
    expect((await corral(server, ["logs", "talk-talker-1"])).stdout).toBe("one\ntwo\nthree\n");
    expect((await corral(server, ["logs", "--since", "1h", "talk-talker-1"])).stdout).toBe("one\ntwo\nthree\n");
    expect((await corral(server, ["logs", "--since", String(Math.floor(Date.now() / 1000) + 3600), "talk-talker-1"])).stdout).toBe("");
    const stamped = await corral(server, ["logs", "--timestamps", "--tail", "2", "talk/talker"]);
    expect(stamped.stdout).toMatch(/^\d{4}-\d\d-\d\dT\S+Z three\n$/);
    expect(stamped.stderr).toMatch(/^\d{4}-\d\d-\d\dT\S+Z oops\n$/);
  });

  it("logs of a service with two containers prefixes each line with its container", async () => {
    expect((await corral(server, ["scale", "talk/talker=2"])).code).toBe(0);
    // the new container writes its lines as it starts: wait for them (a loaded machine takes its time), then compare all
    let res = await corral(server, ["logs", "talk/talker"]);
    await eventually(async () => (res = await corral(server, ["logs", "talk/talker"])).stdout.includes("talk-talker-2 | three") && res.stderr.includes("talk-talker-2 | oops"), 15_000, 300).catch(() => {});
    expect(res.stdout.split("\n").filter(Boolean).sort()).toEqual([
      "talk-talker-1 | one",
      "talk-talker-1 | three",
      "talk-talker-1 | two",
      "talk-talker-2 | one",
      "talk-talker-2 | three",
      "talk-talker-2 | two",
    ]);
    expect(res.stderr.split("\n").filter(Boolean).sort()).toEqual(["talk-talker-1 | oops", "talk-talker-2 | oops"]);
    expect((await corral(server, ["scale", "talk/talker=1"])).code).toBe(0);
  });

  it("logs -f: a line written after the follow starts arrives; Ctrl-C ends it", async () => {
    const logs = follow(server, ["logs", "-f", "talk-talker-1"]);
    expect(await logs.until("three")).toContain("one\ntwo\nthree\n");
    const t0 = Date.now();
    await execIn("talk-talker-1", ["sh", "-c", "echo written-later > /proc/1/fd/1"]);
    expect(await logs.until("written-later")).toContain("written-later\n");
    console.log(`logs -f: a new line reached the follower in ${Date.now() - t0} ms`);
    expect(await logs.interrupt()).toBe(0);
  });

  it("exec returns the command's output, apart, and its exit code; -i and -t; a stopped container is refused", async () => {
    const t0 = Date.now();
    const res = await corral(server, ["exec", "talk/talker", "--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    console.log(`exec round trip through the CLI: ${Date.now() - t0} ms`);
    expect(res.stdout).toBe("out\n");
    expect(res.stderr).toBe("err\n");
    expect(res.code).toBe(3);
    expect((await corral(server, ["exec", "talk-talker-1", "--", "cat", "/etc/passwd"])).stdout).toContain("root:x:0:0");
    // -i: what is piped in reaches the command's stdin; -t: a terminal on the container's side
    const piped = await corral(server, ["exec", "-i", "talk/talker", "--", "sh"], undefined, "echo hi-$((1+2))\nexit 4\n");
    expect(piped.stdout).toBe("hi-3\n");
    expect(piped.code).toBe(4);
    const tty = await corral(server, ["exec", "-t", "talk/talker", "--", "tty"]);
    expect(tty.stdout).toMatch(/^\/dev\/pts\/\d+\r\n$/);
    expect((await corral(server, ["stop", "talk"])).code).toBe(0);
    const refused = await corral(server, ["exec", "talk/talker", "--", "true"]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("container talk-talker-1 is not running (it is stopped): 'corral start' it first");
    expect((await corral(server, ["rm", "talk"])).code).toBe(0);
  });
});

describe("scheduled jobs", () => {
  it("a service labelled with a cron schedule runs as one-shot containers at its times; ps and events show the runs and exit codes", async () => {
    const file = composeFile(`services:
  job:
    image: corral-busybox:latest
    command: ["sh", "-c", "echo ran; exit 2"]
    cap_drop: [ALL]
    labels:
      io.corral.cron.schedule: "*/1 * * * * *"
`);
    const up = await corral(server, ["up", "-d", "-f", file, "-s", "cron"]);
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    const row = async () => (JSON.parse((await corral(server, ["ps", "--all", "--format", "json"])).stdout) as Row[]).find((r) => r.name === "cron/job")!;
    let detail = "";
    for (let i = 0; i < 60 && !/#2 exit 2/.test(detail); i++) {
      await new Promise((r) => setTimeout(r, 250));
      detail = (await row()).detail!;
    }
    expect(detail).toMatch(/^cron \*\/1 \* \* \* \* \*; last runs: #\d+ (exit 2|running)/);
    expect(detail).toContain("#2 exit 2");
    const events = (await corral(server, ["events", "cron"])).stdout;
    expect(events).toContain("[job]: run 1 started");
    expect(events).toContain("[job]: run 1 exited 2");
    expect((await corral(server, ["rm", "cron"])).code).toBe(0);
    expect(await stackContainers("cron")).toEqual([]);
  });
});
