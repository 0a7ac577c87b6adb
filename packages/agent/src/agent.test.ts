import { chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { ServiceSpec, Step, StepReport } from "@corral/core";
import type { OutgoingMessage, QueueSender } from "@corral/queue";
import { queueReporter, StepRunner } from "./agent.js";
import type { AgentOptions } from "./options.js";
import { FakeRuntime } from "./fake-runtime.js";

const spec = (extra: Partial<ServiceSpec> = {}): ServiceSpec => ({ image: "app:1", environment: {}, labels: {}, ports: [], cap_add: [], cap_drop: ["ALL"], scale: 1, ...extra });

/** A step as the decider plans it (demo/web, slot 1, revision 1). */
const step = (action: Step["action"], extra: Partial<Step> = {}): Step => ({
  id: `demo.web.1.${action}.r1.op1`,
  op: "op1",
  stack: "demo",
  service: "web",
  slot: 1,
  revision: 1,
  action,
  host: "h1",
  image: "app:1",
  container: "demo-web-1",
  after: [],
  ...(action === "create" ? { spec: spec(), hash: "h" } : {}),
  ...extra,
});

const runner = (rt: FakeRuntime, extra: Partial<AgentOptions> = {}) => new StepRunner({ hostId: "h1", runtime: rt, report: () => Promise.resolve(), ...extra });

describe("bind mounts on the host", () => {
  const site = () => {
    const root = realpathSync(mkdtempSync(join(tmpdir(), "corral-agent-binds-")));
    mkdirSync(join(root, "proj", "data"), { recursive: true });
    symlinkSync("/", join(root, "proj", "escape"));
    symlinkSync(join(root, "proj", "data"), join(root, "proj", "alias"));
    return root;
  };
  const bind = (source: string) => spec({ user: "0:0", volumes: [{ type: "bind", source, target: "/data", read_only: true }] });

  it("a symlink to / inside an allowed root is refused, and nothing is created", async () => {
    const root = site();
    const rt = new FakeRuntime({ "app:1": {} });
    const out = await runner(rt, { bindRoots: [root] }).run(step("create", { spec: bind(join(root, "proj", "escape")) }));
    expect(out).toEqual({ ok: false, error: `bind mount ${join(root, "proj", "escape")} (it resolves to /) is not under an allowed root (allowed: ${root}; the root itself is not)` });
    expect(rt.calls).toEqual([]);
  });

  it("the root itself is refused, and an agent told no roots mounts no bind", async () => {
    const root = site();
    const rt = new FakeRuntime({ "app:1": {} });
    expect(await runner(rt, { bindRoots: [root] }).run(step("create", { spec: bind(root) }))).toMatchObject({ ok: false, error: expect.stringContaining("is not under an allowed root") as unknown });
    expect(await runner(rt).run(step("create", { spec: bind(join(root, "proj", "data")) }))).toMatchObject({ ok: false, error: expect.stringContaining("(allowed: none;") as unknown });
    expect(rt.calls).toEqual([]);
  });

  it("mounts the resolved real path, not the symlink the file named", async () => {
    const root = site();
    const rt = new FakeRuntime({ "app:1": {} });
    expect(await runner(rt, { bindRoots: [root] }).run(step("create", { spec: bind(join(root, "proj", "alias")) }))).toMatchObject({ ok: true });
    expect(rt.containers.get("demo-web-1")?.spec.mounts).toEqual([{ type: "bind", source: join(root, "proj", "data"), target: "/data", readOnly: true }]);
  });
});

describe("secret files", () => {
  const withSecret = (extra: Partial<Step> = {}) =>
    step("create", { secrets: [{ name: "web.demo.pw", version: 1, target: "pw", uid: "0", gid: "0", mode: 0o400 }], ...extra });
  const fetchSecret = () => Promise.resolve(Buffer.from("s3cret"));

  it("are written into a folder of the agent's own, mounted read-only", async () => {
    const secretsDir = join(mkdtempSync(join(tmpdir(), "corral-agent-secrets-")), "corral-secrets");
    const rt = new FakeRuntime({ "app:1": {} });
    expect(await runner(rt, { secretsDir, fetchSecret }).run(withSecret())).toMatchObject({ ok: true });
    const file = join(secretsDir, "demo.web.1.create.r1.op1", "0");
    expect(readFileSync(file, "utf8")).toBe("s3cret");
    expect(rt.containers.get("demo-web-1")?.spec.mounts).toEqual([{ type: "bind", source: file, target: "/run/secrets/pw", readOnly: true }]);
    // the folder names its host, for the reconcile's sweep of folders whose container is gone (never mounted)
    expect(readFileSync(join(secretsDir, "demo.web.1.create.r1.op1", ".host"), "utf8")).toBe("h1");
  });

  it("a container carries the host and the control plane whose agent made it: a reconcile takes only its own", async () => {
    const rt = new FakeRuntime({ "app:1": {} });
    expect(await runner(rt, { controlId: "c0ffee" }).run(step("create"))).toMatchObject({ ok: true });
    expect(rt.containers.get("demo-web-1")?.labels).toMatchObject({ "io.corral.host": "h1", "io.corral.control": "c0ffee", "io.corral.step": "demo.web.1.create.r1.op1" });
  });

  it("a step in progress says what it acts on: its container, and its create's secret folder", async () => {
    const rt = new FakeRuntime({ "app:1": {} });
    let release: (() => void) | undefined;
    const r = runner(rt, { secretsDir: join(mkdtempSync(join(tmpdir(), "corral-agent-secrets-")), "s"), fetchSecret: () => new Promise((ok) => (release = () => ok(Buffer.from("x")))) });
    const running = r.run(withSecret());
    // (the step is writing its secrets: it waits for their value)
    for (let i = 0; i < 500 && !release; i++) await new Promise((ok) => setTimeout(ok, 5));
    expect(r.acting("demo-web-1")).toBe(true);
    expect(r.acting("secrets:demo.web.1.create.r1.op1")).toBe(true);
    expect(r.acting("demo-web-2")).toBe(false);
    release!();
    expect(await running).toMatchObject({ ok: true });
    expect(r.acting("demo-web-1")).toBe(false);
    expect(r.acting("secrets:demo.web.1.create.r1.op1")).toBe(false);
  });

  it.runIf(process.geteuid?.() === 0)("are not written into a folder another user made first, and no container is created", async () => {
    const secretsDir = join(mkdtempSync(join(tmpdir(), "corral-agent-secrets-")), "corral-secrets");
    mkdirSync(secretsDir, { mode: 0o700 });
    chownSync(secretsDir, 12345, 12345);
    const rt = new FakeRuntime({ "app:1": {} });
    const out = await runner(rt, { secretsDir, fetchSecret }).run(withSecret());
    expect(out).toMatchObject({ ok: false, error: expect.stringContaining(`the secrets folder ${secretsDir} is owned by uid 12345`) as unknown });
    expect(rt.calls).toEqual([]);
    expect(readdirSync(secretsDir)).toEqual([]);
  });

  it("are not written through a symlinked secrets folder", async () => {
    const base = mkdtempSync(join(tmpdir(), "corral-agent-secrets-"));
    mkdirSync(join(base, "elsewhere"), { mode: 0o700 });
    symlinkSync(join(base, "elsewhere"), join(base, "corral-secrets"));
    const rt = new FakeRuntime({ "app:1": {} });
    const out = await runner(rt, { secretsDir: join(base, "corral-secrets"), fetchSecret }).run(withSecret());
    expect(out).toMatchObject({ ok: false, error: expect.stringContaining("is a symlink") as unknown });
    expect(readdirSync(join(base, "elsewhere"))).toEqual([]);
  });
});

describe("a step touches only its own stack's containers", () => {
  // demo-web-1 held by another stack's container (as names collided before), or by one corral does not manage
  const others: Record<string, Record<string, string>> = {
    "another stack": { "io.corral.stack": "other", "io.corral.service": "web", "io.corral.step": "other.web.1.create.r1.op9" },
    "another service": { "io.corral.stack": "demo", "io.corral.service": "db", "io.corral.step": "demo.db.1.create.r1.op1" },
    "no corral labels": {},
  };
  it.each(Object.entries(others))("%s: stop, start, rename, remove and run refuse it and do nothing", async (_what, labels) => {
    const rt = new FakeRuntime({ "app:1": {} });
    const planted = rt.plant("demo-web-1", labels);
    const r = runner(rt);
    const label =
      labels["io.corral.stack"] === "demo"
        ? `io.corral.service=web, found io.corral.service=db`
        : `io.corral.stack=demo, found ${labels["io.corral.stack"] ? "io.corral.stack=other" : "no such label"}`;
    const refusal = (action: string) => ({ ok: false, error: `refusing to ${action} container demo-web-1 (${planted.id.slice(0, 12)}): it does not belong to this step (expected ${label})` });
    expect(await r.run(step("stop"))).toEqual(refusal("stop"));
    expect(await r.run(step("start"))).toEqual(refusal("start"));
    expect(await r.run(step("rename", { renameTo: "demo-web-1-r1" }))).toEqual(refusal("rename"));
    expect(await r.run(step("remove"))).toEqual(refusal("remove"));
    expect(await r.run(step("run", { container: "demo-web-1", spec: spec() }))).toEqual(refusal("run"));
    expect(await r.run(step("create"))).toEqual({ ok: false, error: `the name demo-web-1 is taken by a container that is not demo/web's (${planted.id.slice(0, 12)})` });
    // a rename whose target name another stack holds is no "already done"
    rt.containers.delete("demo-web-1");
    rt.plant("demo-web-1-r1", labels);
    expect(await r.run(step("rename", { id: "demo.web.1.rename-2.r1.op1", renameTo: "demo-web-1-r1" }))).toMatchObject({
      ok: false,
      error: expect.stringContaining("refusing to rename container demo-web-1-r1") as unknown,
    });
    expect(rt.calls).toEqual([]);
    expect(rt.containers.get("demo-web-1-r1")?.running).toBe(true);
  });

  it("a start planned with its create starts only the container that create made", async () => {
    const rt = new FakeRuntime({ "app:1": {} });
    const r = runner(rt);
    rt.plant("demo-web-1", { "io.corral.stack": "demo", "io.corral.service": "web", "io.corral.step": "demo.web.1.create.r1.op0" }, false);
    expect(await r.run(step("start", { createdBy: "demo.web.1.create.r1.op1" }))).toMatchObject({
      ok: false,
      error: expect.stringContaining("expected io.corral.step=demo.web.1.create.r1.op1, found io.corral.step=demo.web.1.create.r1.op0") as unknown,
    });
    expect(rt.calls).toEqual([]);
  });

  it("its own container goes through create, start, stop, rename and remove", async () => {
    const rt = new FakeRuntime({ "app:1": {} });
    const r = runner(rt);
    expect(await r.run(step("create"))).toMatchObject({ ok: true });
    expect(await r.run(step("start", { createdBy: "demo.web.1.create.r1.op1" }))).toMatchObject({ ok: true });
    expect(await r.run(step("stop"))).toEqual({ ok: true });
    expect(await r.run(step("rename", { renameTo: "demo-web-1-r1" }))).toEqual({ ok: true });
    expect(await r.run(step("remove", { container: "demo-web-1-r1" }))).toEqual({ ok: true });
    expect(await r.run(step("run", { id: "demo.job.1.run-1.r1.cron", service: "job", container: "demo-job.run-1", spec: spec() }))).toEqual({ ok: true, exitCode: 0 });
    expect(rt.calls).toEqual([
      "create demo-web-1",
      "start demo-web-1",
      "stop demo-web-1",
      "rename demo-web-1 demo-web-1-r1",
      "remove demo-web-1-r1",
      "create demo-job.run-1",
      "start demo-job.run-1",
      "remove demo-job.run-1",
    ]);
  });
});

describe("exact images", () => {
  const old = `sha256:${"a".repeat(64)}`;
  it("a container is made from the image id its revision pinned on this host, by its reference while the tag still names it", async () => {
    const rt = new FakeRuntime({ "app:1": {}, [old]: {} });
    const now = (await rt.imageIdentity("app:1"))!.id;
    const r = runner(rt);
    expect(await r.run(step("create", { pinned: now }))).toMatchObject({ ok: true });
    expect(rt.containers.get("demo-web-1")?.spec.image).toBe("app:1");
    expect(await r.run(step("create", { id: "demo.web.2.create.r1.op1", container: "demo-web-2", slot: 2, pinned: old }))).toMatchObject({ ok: true });
    expect(rt.containers.get("demo-web-2")?.spec.image).toBe(old); // the tag moved here: the bytes the revision ran
  });

  it("a pull of a local image's id the host no longer has fails, saying why, and pulls nothing", async () => {
    const rt = new FakeRuntime({ "app:1": {} });
    const out = await runner(rt).run(step("pull", { pinned: old }));
    expect(out).toEqual({ ok: false, error: expect.stringMatching(/^image app:1 of revision 1 ran as sha256:aaaaaaaaaaaa on this host, which no longer has it; an image without a registry digest cannot be pulled again/) as unknown });
    expect(rt.calls).toEqual([]);
  });
});

describe("a step delivered again after the plan gave its container's name on", () => {
  const mine = (create: string) => ({ "io.corral.stack": "demo", "io.corral.service": "web", "io.corral.step": create });
  const oldCreate = "demo.web.1.create.r1.op0";
  const newCreate = "demo.web.1.create.r2.op1";

  it("a rollback's removal of the new container, again once the old one took the name back, is done and removes nothing", async () => {
    const rt = new FakeRuntime({ "app:1": {} });
    const old = rt.plant("demo-web-1", mine(oldCreate)); // renamed back, started
    const r = runner(rt);
    expect(await r.run(step("remove", { id: "demo.web.1.remove-demo-web-1.r2.op2", createdBy: newCreate }))).toEqual({ ok: true, alreadyDone: true });
    expect(await r.run(step("stop", { id: "demo.web.1.stop-demo-web-1.r2.op2", createdBy: newCreate }))).toEqual({ ok: true, alreadyDone: true });
    expect(rt.calls).toEqual([]);
    expect(rt.containers.get("demo-web-1")?.id).toBe(old.id);
    expect(rt.containers.get("demo-web-1")?.running).toBe(true);
  });

  it("an upgrade's rename aside, again once the new container holds the slot's name, is done", async () => {
    const rt = new FakeRuntime({ "app:1": {} });
    rt.plant("demo-web-1", mine(newCreate));
    rt.plant("demo-web-1-r1", mine(oldCreate), false);
    const out = await runner(rt).run(step("rename", { id: "demo.web.1.rename-demo-web-1-r1-demo-web-1.r2.op1", renameTo: "demo-web-1-r1", createdBy: oldCreate }));
    expect(out).toEqual({ ok: true, alreadyDone: true });
    expect(rt.calls).toEqual([]);
  });

  it("the same step without the create it is about (a container from before) still acts on the name", async () => {
    const rt = new FakeRuntime({ "app:1": {} });
    rt.plant("demo-web-1", mine(oldCreate));
    expect(await runner(rt).run(step("stop"))).toEqual({ ok: true });
    expect(rt.calls).toEqual(["stop demo-web-1"]);
  });
});

describe("io.corral.* labels are the agent's alone", () => {
  it("an image that carries one is refused before anything is made, naming the image and the label", async () => {
    const rt = new FakeRuntime({ "evil:1": { "io.corral.routes": "60001:80", maintainer: "x" } });
    const out = await runner(rt).run(step("create", { spec: spec({ image: "evil:1" }) }));
    expect(out).toEqual({
      ok: false,
      error: "image evil:1 carries the label io.corral.routes: io.corral.* labels are corral's own, and a container would inherit it; rebuild the image without it",
    });
    expect(rt.calls).toEqual([]);
    // a scheduled job's run creates through the same check
    expect(await runner(rt).run(step("run", { image: "evil:1", spec: spec({ image: "evil:1" }) }))).toMatchObject({
      ok: false,
      error: expect.stringContaining("image evil:1 carries the label io.corral.routes") as unknown,
    });
    expect(rt.calls).toEqual([]);
  });

  it("a service's own labels may not set the agent's (deploy.labels neither), but io.corral.cron.* are the service's", async () => {
    const rt = new FakeRuntime({ "app:1": {} });
    expect(await runner(rt).run(step("create", { spec: spec({ deploy: { labels: { "io.corral.routes": "60001:80" } } }) }))).toEqual({
      ok: false,
      error: "the label io.corral.routes is corral's own: a service may not set it",
    });
    expect(await runner(rt).run(step("create", { spec: spec({ labels: { "io.corral.stack": "other", "io.corral.step": "x" } }) }))).toMatchObject({
      ok: false,
      error: "the labels io.corral.stack, io.corral.step are corral's own: a service may not set them",
    });
    expect(rt.calls).toEqual([]);
    expect(await runner(rt).run(step("create", { spec: spec({ labels: { "io.corral.cron.schedule": "* * * * *" } }) }))).toMatchObject({ ok: true });
    expect(rt.containers.get("demo-web-1")?.labels).not.toHaveProperty("io.corral.routes");
  });
});

describe("published host ports", () => {
  const inUse = "driver failed programming external connectivity on endpoint demo-web-1 (abc): Error starting userland proxy: listen tcp4 0.0.0.0:60003: bind: address already in use";
  /** An engine whose first `failures` starts of a container fail on its port. */
  const busyPort = (failures: number) => {
    const rt = new FakeRuntime({ "app:1": {} });
    const start = rt.start;
    let left = failures;
    rt.start = (name: string) => (left-- > 0 ? (rt.calls.push(`start ${name} refused`), Promise.reject(new Error(inUse))) : start(name));
    return rt;
  };
  const published = spec({ ports: [{ target: 80, published: 60003, protocol: "tcp", mode: "host" }] });

  it("a start refused because the port is in use is tried again, and succeeds once it is free", async () => {
    const rt = busyPort(2);
    const r = runner(rt, { portRetry: { attempts: 5, delayMs: 1 } });
    expect(await r.run(step("create", { spec: published }))).toMatchObject({ ok: true });
    expect(await r.run(step("start", { createdBy: "demo.web.1.create.r1.op1" }))).toMatchObject({ ok: true });
    expect(rt.calls.filter((c) => c.startsWith("start"))).toEqual(["start demo-web-1 refused", "start demo-web-1 refused", "start demo-web-1"]);
  });

  it("a port held throughout fails the step after the last attempt, naming the port and the host", async () => {
    const rt = busyPort(99);
    const r = runner(rt, { portRetry: { attempts: 3, delayMs: 1 } });
    await r.run(step("create", { spec: published }));
    expect(await r.run(step("start", { createdBy: "demo.web.1.create.r1.op1" }))).toEqual({ ok: false, error: `host port 60003 is in use on h1: ${inUse} (tried 3 times)` });
    expect(rt.calls.filter((c) => c.startsWith("start"))).toHaveLength(3);
  });

  it("any other start failure is not tried again", async () => {
    const rt = new FakeRuntime({ "app:1": {} });
    rt.start = (name: string) => (rt.calls.push(`start ${name}`), Promise.reject(new Error("OCI runtime create failed")));
    const r = runner(rt, { portRetry: { attempts: 5, delayMs: 1 } });
    await r.run(step("create", { spec: published }));
    expect(await r.run(step("start", { createdBy: "demo.web.1.create.r1.op1" }))).toEqual({ ok: false, error: "OCI runtime create failed" });
    expect(rt.calls.filter((c) => c.startsWith("start"))).toHaveLength(1);
  });

  it("a port that came without a host port is refused, never left to the engine to choose", async () => {
    const rt = new FakeRuntime({ "app:1": {} });
    const out = await runner(rt).run(step("create", { spec: spec({ ports: [{ target: 80, protocol: "tcp" }] }) }));
    expect(out).toEqual({ ok: false, error: "port 80/tcp of demo-web-1 came without a host port: the control plane gives each container its own; refusing to let the engine choose one" });
    expect(rt.calls).toEqual([]);
  });
});

describe("pulls from a private registry", () => {
  const image = "reg.example.org:5000/team/app:1";
  const login = { server: "reg.example.org:5000", username: "ann", password: "pw" };
  /** A registry that gives the image only to ann with her password, in Docker's words otherwise. */
  const privateRegistry = () => {
    const rt = new FakeRuntime({});
    rt.refusePull = (_image, auth) => (auth?.username === "ann" && auth.password === "pw" ? undefined : "Head \"http://reg.example.org:5000/v2/team/app/manifests/1\": no basic auth credentials");
    return rt;
  };

  it("asks for the login of the registry the image names, for that step, and pulls with it", async () => {
    const rt = privateRegistry();
    const asked: string[] = [];
    const out = await runner(rt, { registryAuth: (s, server) => (asked.push(`${s.id} ${server}`), Promise.resolve(login)) }).run(step("pull", { image, forcePull: true }));
    expect(out).toEqual({ ok: true, image: { id: expect.stringMatching(/^sha256:/) as unknown } });
    expect(asked).toEqual([`demo.web.1.pull.r1.op1 reg.example.org:5000`]);
    expect(rt.pullAuth).toEqual([login]);
  });

  it("without a login, the pull fails with the registry's message, and the create after it is skipped", async () => {
    const rt = privateRegistry();
    const r = runner(rt, { registryAuth: () => Promise.resolve(undefined) });
    const pull = step("pull", { image });
    const failed = await r.run(pull);
    expect(failed).toEqual({ ok: false, error: expect.stringContaining("no basic auth credentials") as unknown });
    expect(rt.pullAuth).toEqual([undefined]);
    expect(await r.run(step("create", { image, after: [pull.id], spec: spec({ image }) }))).toEqual({ ok: false, error: "skipped: pull failed" });
  });

  it("a scheduled run pulls a missing image with the login too", async () => {
    const rt = privateRegistry();
    const out = await runner(rt, { registryAuth: () => Promise.resolve(login) }).run(step("run", { image, container: "demo-web-run-1", spec: spec({ image }), hash: "h" }));
    expect(out).toMatchObject({ ok: true });
    expect(rt.pullAuth).toEqual([login]);
  });

  it("an image already on the host is pulled again only when forced or when its registry is private (a login, or anonymous)", async () => {
    const present = () => new FakeRuntime({ [image]: {} });
    const ok = (more: object = {}) => ({ ok: true, ...more, image: { id: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) as unknown } });
    const publicRt = present();
    expect(await runner(publicRt, { registryAuth: () => Promise.resolve(undefined) }).run(step("pull", { image }))).toEqual(ok({ alreadyDone: true }));
    expect(await runner(publicRt, { registryAuth: () => Promise.resolve(undefined) }).run(step("pull", { image, forcePull: true }))).toEqual(ok());
    expect(publicRt.pullAuth).toEqual([undefined]);
    const withLogin = present();
    expect(await runner(withLogin, { registryAuth: () => Promise.resolve(login) }).run(step("pull", { image }))).toEqual(ok());
    expect(withLogin.pullAuth).toEqual([login]);
  });

  it("a copy another stack's login pulled is no way in: without a login of its own the stack's pull asks the registry, and fails", async () => {
    const rt = privateRegistry();
    rt.images.set(image, {}); // left by ann's pull
    const out = await runner(rt, { registryAuth: () => Promise.resolve("anonymous" as const) }).run(step("pull", { image }));
    expect(out).toEqual({ ok: false, error: expect.stringContaining("no basic auth credentials") as unknown });
    expect(rt.pullAuth).toEqual([undefined]);
  });

  it("a pull this host reported done, come again to a restarted agent: no pull, and the create after it runs", async () => {
    const rt = privateRegistry();
    rt.images.set(image, {}); // what the first process pulled, with the login
    const r = runner(rt, { registryAuth: () => Promise.resolve("reported" as const) });
    const pull = step("pull", { image });
    expect(await r.run(pull)).toEqual({ ok: true, alreadyDone: true, image: { id: expect.stringMatching(/^sha256:/) as unknown } });
    expect(rt.pullAuth).toEqual([]);
    expect(await r.run(step("create", { image, after: [pull.id], spec: spec({ image }) }))).toMatchObject({ ok: true });
    // and once the image is gone since, it says so rather than pulling without the login
    const gone = privateRegistry();
    expect(await runner(gone, { registryAuth: () => Promise.resolve("reported" as const) }).run(pull)).toEqual({
      ok: false,
      error: expect.stringContaining("is no longer here (removed since)") as unknown,
    });
    expect(gone.pullAuth).toEqual([]);
  });
});

describe("a step while the engine is away", () => {
  const away = () => Object.assign(new Error("connect ENOENT /run/docker.sock"), { code: "ENOENT", syscall: "connect" });

  it("waits for the engine and runs once it is back: the step succeeds, the container made once", async () => {
    const rt = new FakeRuntime({ "app:1": {} });
    let downFor = 3;
    const inspect = rt.inspect.bind(rt);
    rt.inspect = (name: string) => (downFor-- > 0 ? Promise.reject(away()) : inspect(name));
    const outcome = await runner(rt, { engineWait: { waitMs: 1000, retryMs: 10 } }).run(step("create"));
    expect(outcome).toMatchObject({ ok: true });
    expect([...rt.containers.keys()]).toEqual(["demo-web-1"]);
  });

  it("fails, after its wait, saying the engine could not be reached, in a line", async () => {
    const rt = new FakeRuntime({ "app:1": {} });
    rt.inspect = () => Promise.reject(away());
    const outcome = await runner(rt, { engineWait: { waitMs: 50, retryMs: 10 } }).run(step("create"));
    expect(outcome).toEqual({
      ok: false,
      error: expect.stringMatching(/^the Docker engine of host h1 could not be reached \(connect ENOENT \/run\/docker\.sock\); waited 0 s for it$/) as unknown as string,
    });
  });

  it("any failure while the engine no longer answers is its absence: waited on, and the step runs once it is back", async () => {
    const rt = new FakeRuntime({ "app:1": {} });
    let down = true;
    const inspect = rt.inspect.bind(rt);
    // a dockerd on its way down: its own words for a call it cut off, then no answer at all for a while
    rt.inspect = (name: string) => (down ? Promise.reject(Object.assign(new Error("(HTTP code 500)"), { statusCode: 500, json: { message: "some shutdown error no list knows" } })) : inspect(name));
    rt.engineVersion = () => (down ? Promise.reject(away()) : Promise.resolve("fake"));
    setTimeout(() => (down = false), 50);
    const outcome = await runner(rt, { engineWait: { waitMs: 2000, retryMs: 10 } }).run(step("create"));
    expect(outcome).toMatchObject({ ok: true });
    expect([...rt.containers.keys()]).toEqual(["demo-web-1"]);
  });

  it("a failure the engine answered is reported at once, not waited on", async () => {
    const rt = new FakeRuntime({ "app:1": {} });
    let calls = 0;
    rt.inspect = () => (calls++, Promise.reject(Object.assign(new Error("boom"), { statusCode: 500, json: { message: "no space left on device" } })));
    const outcome = await runner(rt, { engineWait: { waitMs: 1000, retryMs: 10 } }).run(step("create"));
    expect(outcome).toEqual({ ok: false, error: "no space left on device" });
    expect(calls).toBe(1);
  });
});

describe("a start a dockerd restart cut short", () => {
  it("a container that never ran and meets containerd's leftover task is made anew, once, and started; its new id reported", async () => {
    const rt = new FakeRuntime({ "app:1": {} });
    const r = runner(rt);
    const created = await r.run(step("create"));
    const first = rt.containers.get("demo-web-1")!.id;
    expect(created).toMatchObject({ ok: true, containerId: first });
    const labels = rt.containers.get("demo-web-1")!.labels;
    rt.staleTasks.add(first);
    const started = await r.run(step("start", { createdBy: "demo.web.1.create.r1.op1" }));
    const now = rt.containers.get("demo-web-1")!;
    expect(now.id).not.toBe(first);
    expect(now.running).toBe(true);
    expect(now.labels).toEqual(labels);
    expect(started).toMatchObject({ ok: true, containerId: now.id });
    expect(rt.calls.filter((c) => c.startsWith("recreate"))).toEqual(["recreate demo-web-1"]);
  });

  it("a container that ran before (a rollback's old one started again) is made anew from its own configuration too", async () => {
    const rt = new FakeRuntime({ "app:1": {} });
    const r = runner(rt);
    await r.run(step("create"));
    const c = rt.containers.get("demo-web-1")!;
    Object.assign(c, { status: "exited" });
    rt.staleTasks.add(c.id);
    const started = await r.run(step("start", { createdBy: "demo.web.1.create.r1.op1" }));
    const now = rt.containers.get("demo-web-1")!;
    expect(started).toMatchObject({ ok: true, containerId: now.id });
    expect(now.id).not.toBe(c.id);
    expect(now.running).toBe(true);
    expect(rt.calls.filter((x) => x.startsWith("recreate"))).toEqual(["recreate demo-web-1"]);
  });

  it("another engine refusal is the start's failure, with the engine's words", async () => {
    const rt = new FakeRuntime({ "app:1": {} });
    const r = runner(rt);
    await r.run(step("create"));
    rt.failStart = "OCI runtime create failed: no such file";
    expect(await r.run(step("start", { createdBy: "demo.web.1.create.r1.op1" }))).toEqual({ ok: false, error: "OCI runtime create failed: no such file" });
  });
});

describe("throttled error lines", () => {
  it("writes an error once, the same again only after the interval with the count left out, and a new one at once", async () => {
    const { throttled } = await import("./agent.js");
    let now = 0;
    const lines: string[] = [];
    const log = throttled((e, more) => lines.push(`${e}${more ? ` (+${more})` : ""}`), 30_000, () => now);
    for (let i = 0; i < 40; i++) log("ECONNREFUSED");
    now = 31_000;
    log("ECONNREFUSED");
    log("ENOENT");
    expect(lines).toEqual(["ECONNREFUSED", "ECONNREFUSED (+39)", "ENOENT"]);
  });
});

describe("reports of a stack's steps that end together", () => {
  /** The fake engine, each inspect of a container taking as long as `slow` says (its steps end apart). */
  class SlowRuntime extends FakeRuntime {
    constructor(readonly slow: Record<string, number>) {
      super();
    }
    override inspect = async (name: string) => {
      await new Promise((r) => setTimeout(r, this.slow[name] ?? 0));
      return undefined;
    };
  }
  const removal = (n: number, stack = "demo") => ({ kind: "step" as const, step: step("remove", { id: `${stack}.web.${n}.remove.r1.op1`, stack, slot: n, container: `${stack}-web-${n}` }), attempt: 1 });
  // the sender records what the reporter hands it, batch by batch (the queue's own behaviour is queue.test.ts's)
  const recorder = () => {
    const batches: string[][] = [];
    return { batches, sender: { send: async (_url: string, messages: OutgoingMessage[]) => void batches.push(messages.map((m) => (m.body as StepReport).stepId)) } };
  };

  it("go to the control queue in one batch when they end a few milliseconds apart", async () => {
    const { batches, sender } = recorder();
    const slow = Object.fromEntries([1, 2, 3, 4, 5].map((n) => [`demo-web-${n}`, n * 4])); // 4 to 20 ms: farther apart than the 3 ms linger
    const r = runner(new SlowRuntime(slow), { report: queueReporter(sender as unknown as QueueSender, "control") });
    await Promise.all([1, 2, 3, 4, 5].map((n) => r.handle(removal(n))));
    expect(batches).toEqual([[1, 2, 3, 4, 5].map((n) => `demo.web.${n}.remove.r1.op1`)]);
  });

  it("a slow step holds the others' reports no longer than the hold (25 ms); another stack's is not held", async () => {
    const { batches, sender } = recorder();
    const r = runner(new SlowRuntime({ "demo-web-1": 1, "demo-web-2": 300, "other-web-1": 150 }), { report: queueReporter(sender as unknown as QueueSender, "control") });
    const started = Date.now();
    const sent: Record<string, number> = {};
    const timed = (n: number, stack?: string) => r.handle(removal(n, stack)).then(() => (sent[`${stack ?? "demo"}${n}`] = Date.now() - started));
    await Promise.all([timed(1), timed(2), timed(1, "other")]);
    expect(batches).toEqual([["demo.web.1.remove.r1.op1"], ["other.web.1.remove.r1.op1"], ["demo.web.2.remove.r1.op1"]]);
    expect(sent.demo1).toBeLessThan(150); // sent at ~26 ms, not with the step that ended at 300 ms
  });
});
