import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanupStack, cliBin, composeFile, corral, repoRoot, stackContainers, testServer } from "./support.js";

// A fresh host and a fresh user: `corral server` twice, Ctrl-C, `npm start`, arguments a verb does not take,
// `ps|up|logs|rm` as compose and Rancher users type them, and `corral` from any folder after `npm link`.

const scratch = (prefix = "corral-firstrun-") => mkdtempSync(join(tmpdir(), prefix));
const noServer = { url: "http://127.0.0.1:1", token: "unused" };

interface Running {
  child: ChildProcess;
  url: Promise<string>;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Start a long-running command (a server) and read it as it goes; `url` resolves with the server's URL once it says it. */
function start(command: string, args: string[], env: Record<string, string> = {}, cwd = repoRoot): Running {
  const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  const url = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no 'corral server on' line; stdout: ${out} stderr: ${err}`)), 60_000);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /corral server on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return { child, url, stdout: () => out, stderr: () => err, exited };
}

const server = (data: string, ...more: string[]) => start(process.execPath, [cliBin, "server", "--port", "0", "--data", data, "--no-agent", ...more]);
const answers = (url: string) => fetch(`${url}/healthz`).then((r) => r.ok, () => false);
const lines = (text: string) => text.split("\n").filter((l) => l.trim() !== "");

describe("corral server on a fresh host", () => {
  let held: Server;
  let port: number;
  beforeAll(async () => {
    held = createServer();
    await new Promise<void>((resolve) => held.listen(0, "127.0.0.1", resolve));
    port = (held.address() as AddressInfo).port;
  });
  afterAll(() => held.close());

  it("on a port in use: exits non-zero at once with one line naming the port and its holder's pid, having started nothing", async () => {
    const data = join(scratch(), "data");
    const began = Date.now();
    const res = await corral(noServer, ["server", "--port", String(port), "--data", data]);
    expect(Date.now() - began).toBeLessThan(15_000);
    expect(res.code).not.toBe(0);
    expect(res.stdout).toBe("");
    expect(lines(res.stderr)).toEqual([`error: port ${port} on 127.0.0.1 is in use by another process (pid ${process.pid}); stop it, or choose another --port`]);
    // nothing started: no tables, no token, no lock left behind
    expect(existsSync(join(data, "dynamo"))).toBe(false);
    expect(existsSync(join(data, "token"))).toBe(false);
    expect(existsSync(join(data, "server.lock"))).toBe(false);
  });

  it("on a data folder another server holds: one line naming the folder and that server's pid; SIGTERM stops the first cleanly", async () => {
    const data = scratch();
    const first = server(data);
    const url = await first.url;
    const second = await corral(noServer, ["server", "--port", "0", "--data", data, "--no-agent"]);
    expect(second.code).not.toBe(0);
    expect(second.stdout).toBe("");
    expect(lines(second.stderr)).toEqual([
      `error: data folder ${data} is in use by another corral server (pid ${first.child.pid}); stop it, or choose another --data (if no server runs, remove ${join(data, "server.lock")})`,
    ]);
    expect(await answers(url)).toBe(true); // the first one never noticed
    first.child.kill("SIGTERM");
    expect(await first.exited).toEqual({ code: 0, signal: null });
    expect(lines(first.stdout()).at(-1)).toBe("corral server stopped");
    expect(first.stderr()).not.toMatch(/error|Error/);
    expect(existsSync(join(data, "server.lock"))).toBe(false);
    expect(await answers(url)).toBe(false);
  });

  it("a server killed outright leaves a stale lock the next one takes over; Ctrl-C stops that one cleanly", async () => {
    const data = scratch();
    const killed = server(data);
    await killed.url;
    killed.child.kill("SIGKILL");
    await killed.exited;
    expect(JSON.parse(readFileSync(join(data, "server.lock"), "utf8")).pid).toBe(killed.child.pid);
    const next = server(data);
    const url = await next.url;
    expect(await answers(url)).toBe(true);
    next.child.kill("SIGINT");
    expect(await next.exited).toEqual({ code: 0, signal: null });
    expect(next.stdout()).toContain("corral server stopped");
  });

  it.each(["SIGTERM", "SIGINT"] as const)("stopping `npm start` with %s stops the server (and nothing is left running)", async (signal) => {
    const data = scratch();
    const npm = start("npm", ["start", "--", "--port", "0", "--data", data, "--no-agent"]);
    const url = await npm.url;
    expect(await answers(url)).toBe(true);
    npm.child.kill(signal);
    const exit = await npm.exited;
    expect(exit.code === 0 || exit.signal === signal).toBe(true);
    expect(npm.stdout()).toContain("corral server stopped");
    expect(await answers(url)).toBe(false);
    expect(existsSync(join(data, "server.lock"))).toBe(false);
  });

  it("logs the agents' heartbeats at debug: not at the default level, and with --log-level debug", async () => {
    const quiet = start(process.execPath, [cliBin, "server", "--port", "0", "--data", scratch(), "--host-id", "firstrun-quiet"]);
    const chatty = start(process.execPath, [cliBin, "server", "--port", "0", "--data", scratch(), "--host-id", "firstrun-chatty", "--log-level", "debug"]);
    try {
      await Promise.all([quiet.url, chatty.url]);
      await new Promise((r) => setTimeout(r, 11_500)); // one heartbeat every 10 s
      expect(chatty.stderr()).toMatch(/ debug POST \/v1\/hosts\/firstrun-chatty\/heartbeat 200 /);
      expect(quiet.stderr()).not.toContain("heartbeat");
      expect(quiet.stderr()).toMatch(/ info agent started /); // info still says what a user wants to read
    } finally {
      quiet.child.kill("SIGTERM");
      chatty.child.kill("SIGTERM");
      await Promise.all([quiet.exited, chatty.exited]);
    }
  });
});

type Row = Record<string, string>;

describe("what compose and Rancher users type", () => {
  let srv: Awaited<ReturnType<typeof testServer>>;
  const stack = "firstrun";
  const other = "firstrun-b";
  const idle = (word: string) => `["sh", "-c", "echo ${word}; trap 'exit 0' TERM; while true; do sleep 1; done"]`;
  const file = (webWord = "web-says-hi", extraWord = "extra-says-hi") =>
    `services:
  web:
    image: corral-busybox:latest
    command: ${idle(webWord)}
    cap_drop: [ALL]
    depends_on: [db]
  db:
    image: corral-busybox:latest
    command: ${idle("db-says-hi")}
    cap_drop: [ALL]
  extra:
    image: corral-busybox:latest
    command: ${idle(extraWord)}
    cap_drop: [ALL]
`;
  const dir = scratch();
  const compose = join(dir, "docker-compose.yml");
  const ps = async (...args: string[]) => {
    const res = await corral(srv, ["ps", "--all", ...args, "--format", "json"]);
    expect(res.stderr).toBe("");
    return JSON.parse(res.stdout) as Row[];
  };
  const dockerIds = async () => Object.fromEntries((await ps(stack, "--containers")).map((r) => [r.name, r.docker]));

  beforeAll(async () => {
    srv = await testServer({ tickMs: 300 });
    writeFileSync(compose, file());
  });
  afterAll(async () => {
    await srv?.stop();
    for (const s of [stack, other, `${stack}-web-1`, "firstrunapp"]) await cleanupStack(s);
  });

  it("up -d SERVICE: only it and what it depends on come up; the rest of the file waits", async () => {
    const up = await corral(srv, ["up", "-d", "-s", stack, "web"], dir);
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    expect((await ps(stack)).map((r) => r.name).sort()).toEqual([`${stack}/db`, `${stack}/web`]);
    expect((await stackContainers(stack)).length).toBe(2);
  });

  it("up -d SERVICE the file does not have: refused naming the file and the service, nothing changed", async () => {
    const before = await corral(srv, ["history", stack, "--format", "json"]);
    const up = await corral(srv, ["up", "-d", "-s", stack, "nosuch"], dir);
    expect(up.code).not.toBe(0);
    expect(up.stderr.trim()).toBe("error: docker-compose.yml: services.nosuch: no service nosuch in docker-compose.yml (services: web, db, extra)");
    expect((await corral(srv, ["history", stack, "--format", "json"])).stdout).toBe(before.stdout);
  });

  it("up -d --upgrade SERVICE: that one is upgraded; another changed in the file keeps what it has", async () => {
    expect((await corral(srv, ["up", "-d", "-s", stack, "extra"], dir)).code).toBe(0);
    const before = await dockerIds();
    expect(Object.keys(before).sort()).toEqual([`${stack}-db-1`, `${stack}-extra-1`, `${stack}-web-1`]);
    writeFileSync(compose, file("web-changed", "extra-changed"));
    const up = await corral(srv, ["up", "-d", "--upgrade", "--confirm-upgrade", "-s", stack, "extra"], dir);
    expect(up.stderr).toBe("");
    expect(up.stdout).toContain("Upgrading extra");
    expect(up.stdout).not.toContain("Upgrading web");
    const after = await dockerIds();
    expect(after[`${stack}-web-1`]).toBe(before[`${stack}-web-1`]);
    expect(after[`${stack}-db-1`]).toBe(before[`${stack}-db-1`]);
    expect(after[`${stack}-extra-1`]).not.toBe(before[`${stack}-extra-1`]);
    const web = JSON.parse((await corral(srv, ["inspect", `${stack}/web`])).stdout) as unknown;
    expect(JSON.stringify(web)).toContain("web-says-hi");
    expect(JSON.stringify(web)).not.toContain("web-changed");
  });

  it("ps STACK and ps STACK/SERVICE list only those; an unknown stack or service is an error naming it", async () => {
    expect((await corral(srv, ["up", "-d", "-s", other, "-f", composeFile(`services:\n  solo:\n    image: corral-busybox:latest\n    command: ${idle("solo")}\n    cap_drop: [ALL]\n`)])).code).toBe(0);
    expect((await ps()).map((r) => r.name)).toEqual(expect.arrayContaining([`${stack}/web`, `${other}/solo`]));
    expect((await ps(stack)).map((r) => r.name).sort()).toEqual([`${stack}/db`, `${stack}/extra`, `${stack}/web`]);
    expect((await ps(`${stack}/web`)).map((r) => r.name)).toEqual([`${stack}/web`]);
    expect((await ps(`${stack}/web`, "--containers")).map((r) => r.name)).toEqual([`${stack}-web-1`]);
    const table = await corral(srv, ["ps", other]);
    expect(table.stdout).toContain(`${other}/solo`);
    expect(table.stdout).not.toContain(`${stack}/`);

    const unknown = await corral(srv, ["ps", "nosuch"]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stdout).toBe("");
    expect(unknown.stderr.trim()).toBe("error: stack nosuch not found");
    const noService = await corral(srv, ["ps", `${stack}/nosuch`]);
    expect(noService.code).not.toBe(0);
    expect(noService.stderr.trim()).toBe(`error: stack ${stack} has no service nosuch (services: web, db, extra)`);
  });

  it("logs STACK: every service's lines, each prefixed with its container", async () => {
    const res = await corral(srv, ["logs", stack]);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(new RegExp(`^${stack}-web-1 +\\| web-says-hi$`, "m"));
    expect(res.stdout).toMatch(new RegExp(`^${stack}-db-1 +\\| db-says-hi$`, "m"));
    expect(res.stdout).toMatch(new RegExp(`^${stack}-extra-1 +\\| extra-changed$`, "m"));
    // one container of its own stack: prefixed too, as compose does
    expect((await corral(srv, ["logs", other])).stdout).toMatch(new RegExp(`^${other}-solo-1 +\\| solo$`, "m"));
  });

  it("arguments a verb does not take are refused with its usage line, and change nothing", async () => {
    const ps2 = await corral(srv, ["ps", stack, "extra-arg"]);
    expect(ps2.code).not.toBe(0);
    expect(ps2.stdout).toBe("");
    expect(ps2.stderr).toContain("usage: corral ps [options] [target]");
    const scale = await corral(srv, ["inspect", stack, "more"]);
    expect(scale.code).not.toBe(0);
    expect(scale.stderr).toContain("usage: corral inspect [options] <target>");
    expect((await stackContainers(stack)).length).toBe(3);
  });

  it("rm without --type works out what NAME is; no message shows an API route", async () => {
    // a container, by the name ps shows: it goes, its slot is made anew
    const before = await dockerIds();
    const rmc = await corral(srv, ["rm", `${stack}-db-1`]);
    expect(rmc.stderr).toBe("");
    expect(rmc.code).toBe(0);
    expect((await dockerIds())[`${stack}-db-1`]).not.toBe(before[`${stack}-db-1`]);
    // a service: STACK/SERVICE
    const rms = await corral(srv, ["rm", `${stack}/extra`]);
    expect(rms.stderr).toBe("");
    expect(rms.code).toBe(0);
    expect((await ps(stack)).map((r) => r.name).sort()).toEqual([`${stack}/db`, `${stack}/web`]);
    // nothing of that name
    const none = await corral(srv, ["rm", "nosuch"]);
    expect(none.code).not.toBe(0);
    expect(none.stderr.trim()).toBe("error: stack nosuch not found");
    const noService = await corral(srv, ["rm", `${stack}/nosuch`]);
    expect(noService.code).not.toBe(0);
    expect(noService.stderr).toContain(`stack ${stack} has no service nosuch`);
    const badName = await corral(srv, ["rm", "--type", "stack", "a/b/c"]);
    expect(badName.code).not.toBe(0);
    for (const r of [none, noService, badName]) expect(r.stderr).not.toMatch(/\/v1\/|no route/);
    // a name that is a stack and a container at once: refused, naming both ways
    expect((await corral(srv, ["stack", "create", "--empty", `${stack}-web-1`])).code).toBe(0);
    const both = await corral(srv, ["rm", `${stack}-web-1`]);
    expect(both.code).not.toBe(0);
    expect(both.stderr.trim()).toBe(
      `error: ${stack}-web-1 names several things (a stack, a container); say which: corral rm --type stack ${stack}-web-1 or corral rm --type container ${stack}-web-1`,
    );
    expect((await dockerIds())[`${stack}-web-1`]).toBe(before[`${stack}-web-1`]);
    expect((await corral(srv, ["rm", "--type", "stack", `${stack}-web-1`])).code).toBe(0);
    // a stack
    expect((await corral(srv, ["rm", other])).code).toBe(0);
    expect(await stackContainers(other)).toEqual([]);
  });

  it("a request the server has no route for reads as a user's message, not a route", async () => {
    const res = await corral({ url: `${srv.url}/older`, token: srv.token }, ["ps"]);
    expect(res.code).not.toBe(0);
    expect(res.stderr.trim()).toBe(`error: the corral server at ${srv.url}/older does not know this command; is it an older version than this CLI (corral --version)?`);
    const api = await fetch(`${srv.url}/v1/stacks/a/b`, { method: "DELETE", headers: { authorization: `Bearer ${srv.token}` } });
    expect(api.status).toBe(404);
    expect(((await api.json()) as { error: string }).error).toBe("no_route");
  });

  it("after `npm link`, `corral` runs from any folder, and the stack is named after it", async () => {
    // npm's global folder moved to a scratch prefix: the link is made for real, and touches nothing else
    const prefix = scratch("corral-prefix-");
    const link = spawnSync("npm", ["link", "--no-audit", "--no-fund", "--ignore-scripts"], { cwd: repoRoot, env: { ...process.env, npm_config_prefix: prefix }, encoding: "utf8" });
    expect(link.status, link.stderr).toBe(0);
    const path = `${join(prefix, "bin")}:${process.env.PATH}`;
    const which = spawnSync("sh", ["-c", "command -v corral"], { env: { ...process.env, PATH: path }, encoding: "utf8" });
    expect(which.stdout.trim()).toBe(join(prefix, "bin", "corral"));
    const app = join(scratch(), "firstrunapp");
    mkdirSync(app);
    writeFileSync(join(app, "docker-compose.yml"), `services:\n  web:\n    image: corral-busybox:latest\n    command: ${idle("from-my-folder")}\n    cap_drop: [ALL]\n`);
    // asynchronously: the server answering it runs in this process
    const run = (args: string[]) =>
      new Promise<{ status: number; stderr: string }>((resolve) =>
        execFile("corral", args, { cwd: app, env: { ...process.env, PATH: path, CORRAL_URL: srv.url, CORRAL_TOKEN: srv.token }, timeout: 110_000 }, (e, _out, stderr) =>
          resolve({ status: e ? (typeof e.code === "number" ? e.code : 1) : 0, stderr }),
        ),
      );
    const up = await run(["up", "-d"]);
    expect(up.stderr).toBe("");
    expect(up.status).toBe(0);
    expect((await ps("firstrunapp")).map((r) => `${r.name} ${r.state}`)).toEqual(["firstrunapp/web active"]);
    expect((await run(["rm", "firstrunapp"])).status).toBe(0);
  });
});
