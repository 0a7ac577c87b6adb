import { mkdirSync, mkdtempSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { labels as L, type ExitedReport, type WantedAnswer } from "@corral/core";
import { FakeRuntime } from "./fake-runtime.js";
import { SECRET_OWNER_FILE, secretFolder } from "./names.js";
import { Reconciler } from "./reconcile.js";

// The agent's reconcile, on a fake engine: orphans go after the grace period, and only corral's own; exits are reported.
const HOST = "h1";
const CONTROL = "c0ffee";
const ours = (stack: string, step: string) => ({ [L.stack]: stack, [L.service]: "web", [L.step]: step, [L.host]: HOST, [L.control]: CONTROL });

function setup(options: { wanted?: () => Promise<unknown>; acting?: Set<string>; secretsDir?: string; dieCheckMs?: number; recheckMs?: number } = {}) {
  const runtime = new FakeRuntime();
  let now = Date.now();
  let answer: WantedAnswer = { host: HOST, complete: true, stacks: [] };
  const reports: ExitedReport[] = [];
  const acting = options.acting ?? new Set<string>();
  const lines: string[] = [];
  const reconciler = new Reconciler({
    hostId: HOST,
    controlId: CONTROL,
    runtime,
    acting: (key) => acting.has(key),
    wanted: options.wanted ?? (() => Promise.resolve(answer)),
    reportExit: (r) => {
      reports.push(r);
      return Promise.resolve();
    },
    graceMs: 60_000,
    clock: () => now,
    ...(options.secretsDir ? { secretsDir: options.secretsDir } : {}),
    ...(options.dieCheckMs !== undefined ? { dieCheckMs: options.dieCheckMs } : {}),
    ...(options.recheckMs !== undefined ? { recheckMs: options.recheckMs } : {}),
    log: { info: (m) => lines.push(m), error: (m) => lines.push(m), warn: (m) => lines.push(m) },
  });
  return {
    runtime,
    reconciler,
    reports,
    acting,
    lines,
    later: (ms: number) => (now += ms),
    want: (stacks: WantedAnswer["stacks"], complete = true) => (answer = { host: HOST, complete, stacks }),
    names: () => [...runtime.containers.keys()].sort(),
  };
}

describe("the agent's reconcile: orphans", () => {
  it("removes a corral container nobody wants once it has stayed unwanted past the grace period, never before; wanted and unlabelled ones stay", async () => {
    const t = setup();
    t.runtime.plant("demo-web-1", ours("demo", "demo.op1.1.web.create.1"));
    const stray = t.runtime.plant("demo-stray-1", ours("demo", "demo.op0.1.stray.create.1"));
    t.runtime.plant("someone-elses", { maintainer: "not corral" });
    t.want([{ stack: "demo", containers: [{ name: "demo-web-1", running: true }] }]);
    expect((await t.reconciler.round()).removed).toEqual([]);
    t.later(59_000);
    expect((await t.reconciler.round()).removed).toEqual([]);
    expect(t.names()).toEqual(["demo-stray-1", "demo-web-1", "someone-elses"]);
    t.later(1_000);
    expect((await t.reconciler.round()).removed).toEqual(["demo-stray-1"]);
    expect(t.names()).toEqual(["demo-web-1", "someone-elses"]);
    expect(t.lines).toContain("removed orphan container demo-stray-1 of stack demo (not wanted by the control plane for 60s)");
    t.later(600_000);
    await t.reconciler.round();
    expect(t.names()).toEqual(["demo-web-1", "someone-elses"]);
    // removed once, by its engine id (a container made since under its name would be another one)
    expect(t.runtime.calls.filter((c) => c.startsWith("remove"))).toEqual([`remove ${stray.id}`]);
  });

  it("removes nothing while the control plane cannot be asked, and counts the grace afresh once it can", async () => {
    let down = true;
    const answer: WantedAnswer = { host: HOST, complete: true, stacks: [] };
    const t = setup({ wanted: () => (down ? Promise.reject(new Error("/v1/hosts/h1/wanted: fetch failed")) : Promise.resolve(answer)) });
    t.runtime.plant("demo-web-1", ours("demo", "s1"));
    for (let i = 0; i < 5; i++) {
      await t.reconciler.round();
      t.later(60_000);
    }
    expect(t.names()).toEqual(["demo-web-1"]);
    expect(t.lines.some((l) => /cannot tell what the control plane wants/.test(l))).toBe(true);
    down = false;
    expect((await t.reconciler.round()).removed).toEqual([]); // first seen unwanted now
    t.later(60_000);
    expect((await t.reconciler.round()).removed).toEqual(["demo-web-1"]);
  });

  it("removes nothing on an answer cut short, nor on one that does not parse", async () => {
    const t = setup();
    t.runtime.plant("demo-web-1", ours("demo", "s1"));
    t.want([], false);
    for (let i = 0; i < 3; i++) {
      await t.reconciler.round();
      t.later(120_000);
    }
    expect(t.names()).toEqual(["demo-web-1"]);
    const bad = setup({ wanted: () => Promise.resolve({ stacks: "nope" }) });
    bad.runtime.plant("demo-web-1", ours("demo", "s1"));
    await bad.reconciler.round();
    bad.later(120_000);
    await bad.reconciler.round();
    expect(bad.names()).toEqual(["demo-web-1"]);
  });

  it("keeps a container a step is acting on right now, and removes it once the step is done if it is still unwanted", async () => {
    const t = setup();
    t.runtime.plant("demo-web-2", ours("demo", "s2"));
    t.acting.add("demo-web-2");
    await t.reconciler.round();
    t.later(120_000);
    expect((await t.reconciler.round()).removed).toEqual([]);
    expect(t.names()).toEqual(["demo-web-2"]);
    t.acting.delete("demo-web-2");
    expect((await t.reconciler.round()).removed).toEqual(["demo-web-2"]);
  });

  it("leaves alone corral containers of another host's agent or another control plane on the same engine, and ones without those labels", async () => {
    const t = setup();
    t.runtime.plant("demo-web-1", { ...ours("demo", "s1"), [L.host]: "h2" });
    t.runtime.plant("demo-web-2", { ...ours("demo", "s2"), [L.control]: "another" });
    t.runtime.plant("demo-web-3", { [L.stack]: "demo", [L.service]: "web" });
    await t.reconciler.round();
    t.later(600_000);
    expect((await t.reconciler.round()).removed).toEqual([]);
    expect(t.names()).toEqual(["demo-web-1", "demo-web-2", "demo-web-3"]);
  });

  it("forgets a container wanted again: its grace starts over when it is unwanted anew", async () => {
    const t = setup();
    t.runtime.plant("demo-web-1", ours("demo", "s1"));
    await t.reconciler.round();
    t.later(50_000);
    t.want([{ stack: "demo", containers: [{ name: "demo-web-1" }] }]);
    await t.reconciler.round();
    t.want([]);
    t.later(20_000);
    expect((await t.reconciler.round()).removed).toEqual([]);
    t.later(60_000);
    expect((await t.reconciler.round()).removed).toEqual(["demo-web-1"]);
  });

  it("a name wanted by one stack does not keep another stack's container of that name", async () => {
    const t = setup();
    t.runtime.plant("shared-name", ours("other", "s1"));
    t.want([{ stack: "demo", containers: [{ name: "shared-name" }] }]);
    await t.reconciler.round();
    t.later(60_000);
    expect((await t.reconciler.round()).removed).toEqual(["shared-name"]);
  });
});

describe("the agent's reconcile: secret files", () => {
  const folderWith = (dir: string, step: string, host = HOST) => {
    const folder = join(dir, secretFolder(step));
    mkdirSync(folder, { mode: 0o700 });
    writeFileSync(join(folder, "0"), "s3cret");
    writeFileSync(join(folder, SECRET_OWNER_FILE), host);
    return folder;
  };

  it("an orphan's secret folder goes with it; a folder whose container is gone from the engine is swept, only this host's, only once old", async () => {
    const dir = mkdtempSync(join(tmpdir(), "corral-secrets-"));
    const t = setup({ secretsDir: dir });
    const orphan = folderWith(dir, "demo.op1.1.web.create.2");
    const kept = folderWith(dir, "demo.op1.1.web.create.1");
    const gone = folderWith(dir, "demo.op0.1.web.create.1");
    const otherHost = folderWith(dir, "demo.op0.1.db.create.1", "h2");
    const writing = folderWith(dir, "demo.op2.1.web.create.1");
    t.acting.add(`secrets:${secretFolder("demo.op2.1.web.create.1")}`);
    t.runtime.plant("demo-web-1", ours("demo", "demo.op1.1.web.create.1"));
    t.runtime.plant("demo-web-2", ours("demo", "demo.op1.1.web.create.2"));
    t.want([{ stack: "demo", containers: [{ name: "demo-web-1" }] }]);
    expect((await t.reconciler.round()).swept).toEqual([]); // all too young yet
    // the folders' ages come from their real mtimes: a second past the grace, so that a slow machine made them after the clock was read
    t.later(61_000);
    const round = await t.reconciler.round();
    expect(round.removed).toEqual(["demo-web-2"]);
    expect(round.swept).toEqual([secretFolder("demo.op0.1.web.create.1")]);
    expect(existsSync(orphan)).toBe(false);
    expect(existsSync(gone)).toBe(false);
    expect(existsSync(kept)).toBe(true);
    expect(existsSync(otherHost)).toBe(true);
    expect(existsSync(writing)).toBe(true);
  });
});

describe("the agent's reconcile: exits", () => {
  it("reports a container the control plane has running that it finds exited, with its exit code, once a round until recorded", async () => {
    const t = setup();
    const c = t.runtime.plant("demo-web-1", ours("demo", "s1"));
    t.want([{ stack: "demo", containers: [{ name: "demo-web-1", dockerId: c.id, running: true }] }]);
    expect((await t.reconciler.round()).reported).toEqual([]);
    t.runtime.exit("demo-web-1", 137, 1_700_000_000_000);
    expect((await t.reconciler.round()).reported).toEqual([]); // seen once: an engine starting again shows this too
    expect((await t.reconciler.round()).reported).toEqual(["demo-web-1"]);
    expect(t.reports).toEqual([{ kind: "exited", stack: "demo", host: HOST, container: "demo-web-1", dockerId: c.id, exitCode: 137, at: 1_700_000_000_000 }]);
    // recorded: the control plane no longer has it running
    t.want([{ stack: "demo", containers: [{ name: "demo-web-1", dockerId: c.id }] }]);
    expect((await t.reconciler.round()).reported).toEqual([]);
    expect(t.names()).toEqual(["demo-web-1"]); // wanted, exited: kept
  });

  it("does not report one found exited for a round and running the next (an engine starting again, its restart policy at work)", async () => {
    const t = setup();
    const c = t.runtime.plant("demo-web-1", ours("demo", "s1"));
    t.want([{ stack: "demo", containers: [{ name: "demo-web-1", dockerId: c.id, running: true }] }]);
    t.runtime.exit("demo-web-1", 0, 1_700_000_000_000);
    expect((await t.reconciler.round()).reported).toEqual([]);
    c.running = true;
    c.status = "running";
    expect((await t.reconciler.round()).reported).toEqual([]);
    // a later exit of its own, seen twice: reported
    t.runtime.exit("demo-web-1", 3, 1_700_000_090_000);
    expect((await t.reconciler.round()).reported).toEqual([]);
    expect((await t.reconciler.round()).reported).toEqual(["demo-web-1"]);
    expect(t.reports.map((r) => r.exitCode)).toEqual([3]);
  });

  it("does not report one its restart policy brings back, one a step is stopping, nor another engine container of that name", async () => {
    const t = setup();
    const a = t.runtime.plant("demo-web-1", ours("demo", "s1"));
    const b = t.runtime.plant("demo-web-2", ours("demo", "s2"));
    const d = t.runtime.plant("demo-web-3", ours("demo", "s3"));
    t.want([
      {
        stack: "demo",
        containers: [
          { name: "demo-web-1", dockerId: a.id, running: true },
          { name: "demo-web-2", dockerId: b.id, running: true },
          { name: "demo-web-3", dockerId: "an-earlier-one", running: true },
        ],
      },
    ]);
    t.runtime.exit("demo-web-1", 1);
    a.status = "restarting";
    t.runtime.exit("demo-web-2", 143);
    t.acting.add("demo-web-2");
    t.runtime.exit(d.name, 2);
    expect((await t.reconciler.round()).reported).toEqual([]);
    expect(t.reports).toEqual([]);
  });

  it("relays Docker's die event of a corral container a moment later, if it is still exited, unless a step is acting on it or it is another host's", async () => {
    const t = setup({ dieCheckMs: 5 });
    const c = t.runtime.plant("demo-web-1", ours("demo", "s1"));
    t.runtime.plant("demo-web-2", ours("demo", "s2"));
    t.runtime.plant("demo-web-3", { ...ours("demo", "s3"), [L.host]: "h2" });
    t.runtime.plant("plain", {});
    for (const name of ["demo-web-1", "demo-web-2", "demo-web-3", "plain"]) t.runtime.exit(name, 3, 1_700_000_000_000);
    t.acting.add("demo-web-2");
    for (const name of ["demo-web-1", "demo-web-2", "demo-web-3", "plain"]) {
      const f = t.runtime.containers.get(name)!;
      t.reconciler.onContainerEvent({ id: f.id, name, action: "die", labels: f.labels });
    }
    t.reconciler.onContainerEvent({ id: c.id, name: "demo-web-1", action: "start", labels: c.labels });
    await new Promise((r) => setTimeout(r, 50));
    expect(t.reports).toEqual([{ kind: "exited", stack: "demo", host: HOST, container: "demo-web-1", dockerId: c.id, exitCode: 3, at: 1_700_000_000_000 }]);
  });
});

describe("the agent's reconcile: containers the control plane has stopped", () => {
  it("stops one found running two rounds in a row (a restart policy brought it back), by its engine id; not one a step acts on, nor a crashed one, nor one wanted running", async () => {
    const t = setup();
    const old = t.runtime.plant("demo-web-1-r1", ours("demo", "s1"));
    t.runtime.plant("demo-web-2-r1", ours("demo", "s2"));
    t.runtime.plant("demo-web-1", ours("demo", "s3"));
    t.runtime.plant("demo-db-1", ours("demo", "s4")); // exited and restarted by Docker: the log has an exit, so no `stopped`
    t.acting.add("demo-web-2-r1");
    t.want([
      {
        stack: "demo",
        containers: [
          { name: "demo-web-1-r1", dockerId: old.id, stopped: true },
          { name: "demo-web-2-r1", stopped: true },
          { name: "demo-web-1", running: true },
          { name: "demo-db-1" },
        ],
      },
    ]);
    expect((await t.reconciler.round()).stopped).toEqual([]); // seen once: it may be on its way to being recorded
    expect(t.runtime.calls.filter((c) => c.startsWith("stop"))).toEqual([]);
    expect((await t.reconciler.round()).stopped).toEqual(["demo-web-1-r1"]);
    expect(t.runtime.calls.filter((c) => c.startsWith("stop"))).toEqual([`stop ${old.id}`]);
    expect(t.runtime.containers.get("demo-web-1-r1")!.running).toBe(false);
    expect(t.runtime.containers.get("demo-web-1")!.running).toBe(true);
    expect(t.runtime.containers.get("demo-db-1")!.running).toBe(true);
    expect(t.runtime.containers.get("demo-web-2-r1")!.running).toBe(true);
    expect(t.names()).toContain("demo-web-1-r1"); // stopped, not removed: a rollback starts it again
    expect(t.lines).toContain("stopped container demo-web-1-r1 of stack demo: the control plane has it stopped (a restart policy had started it again)");
  });

  it("does not stop one seen running once, then recorded running (its start reported meanwhile), nor another container of the same name", async () => {
    const t = setup();
    const c = t.runtime.plant("demo-web-1", ours("demo", "s1"));
    t.want([{ stack: "demo", containers: [{ name: "demo-web-1", dockerId: c.id, stopped: true }] }]);
    await t.reconciler.round();
    t.want([{ stack: "demo", containers: [{ name: "demo-web-1", dockerId: c.id, running: true }] }]);
    await t.reconciler.round();
    t.want([{ stack: "demo", containers: [{ name: "demo-web-1", dockerId: "f".repeat(64), stopped: true }] }]);
    await t.reconciler.round();
    await t.reconciler.round();
    expect(t.runtime.calls.filter((x) => x.startsWith("stop"))).toEqual([]);
  });

  it("a start event nobody here caused asks for two rounds soon, which stop it; one a step caused asks for none", async () => {
    let asked = 0;
    const t = setup({ recheckMs: 20, wanted: () => (asked++, Promise.resolve({ host: HOST, complete: true, stacks: [{ stack: "demo", containers: [{ name: "demo-web-1-r1", stopped: true }] }] })) });
    const c = t.runtime.plant("demo-web-1-r1", ours("demo", "s1"));
    t.acting.add("demo-web-1-r1");
    t.reconciler.onContainerEvent({ id: c.id, name: c.name, action: "start", labels: c.labels });
    t.acting.delete("demo-web-1-r1");
    await new Promise((r) => setTimeout(r, 3100));
    expect(asked).toBe(0);
    t.reconciler.onContainerEvent({ id: c.id, name: c.name, action: "start", labels: c.labels });
    await new Promise((r) => setTimeout(r, 3200));
    expect(asked).toBe(2);
    expect(t.runtime.containers.get("demo-web-1-r1")!.running).toBe(false);
    await t.reconciler.stop();
  }, 15_000);
});
