import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanupStack, corral, docker, stackContainers, testServer } from "./support.js";

// The Spin lesson's command sequence, literally, in a folder named after the stack (as Rancher names it),
// through the CLI on the real engine: upgrades are per service, and containers keep their ids.
let server: Awaited<ReturnType<typeof testServer>>;
let lesson: string;
beforeAll(async () => {
  server = await testServer({ tickMs: 300 });
  lesson = join(mkdtempSync(join(tmpdir(), "corral-lesson-")), "lesson");
  const idle = `["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]`;
  const file = (app: string, db: string, dbVolume = false) => `services:
  app:
    image: corral-hello:latest
    environment: {VERSION: "${app}"}
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
  db:
    image: corral-busybox:latest
    command: ${idle}
    environment: {VERSION: "${db}"}
    cap_drop: [ALL]
${dbVolume ? "    volumes: [\"db.lesson:/data\"]\nvolumes:\n  db.lesson: {external: true}\n" : ""}`;
  const examples: Record<string, string> = { example1: file("1", "1"), example2: file("2", "2"), example3: file("2", "3", true), example4: file("3", "3", true) };
  for (const [dir, yaml] of Object.entries(examples)) {
    mkdirSync(join(lesson, dir), { recursive: true });
    writeFileSync(join(lesson, dir, "docker-compose.yml"), yaml);
    writeFileSync(join(lesson, dir, "rancher-compose.yml"), "version: '2'\nservices:\n  app:\n    scale: 1\n  db:\n    scale: 1\n");
  }
});
afterAll(async () => {
  await server?.stop();
  await cleanupStack("lesson");
  await docker.getVolume("db.lesson").remove().catch(() => {});
});

type Row = Record<string, string>;
const run = (...args: string[]) => corral(server, args, lesson);
const ok = async (...args: string[]) => {
  const r = await run(...args);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return r.stdout;
};
const services = async () =>
  Object.fromEntries((JSON.parse(await ok("ps", "--all", "--format", "json")) as Row[]).filter((r) => r.name!.startsWith("lesson/")).map((r) => [r.name!.split("/")[1], `${r.state} ${r.scale}`]));
const containers = async () => (JSON.parse(await ok("ps", "--all", "--containers", "--format", "json")) as Row[]).filter((r) => r.name!.startsWith("lesson-"));
/** What ps lists: NAME STATE -> ID, and what the engine runs: the ids ps gives map onto engine containers in those states. */
const listed = async () => Object.fromEntries((await containers()).map((r) => [`${r.name} ${r.state}`, r.id]));
const engine = async () => Object.fromEntries((await stackContainers("lesson")).map((c) => [c.Id, c.State]));

describe("Spin's lesson, command by command", () => {
  it("up; upgrade; confirm with the same file; force-upgrade; rollback; volume create; upgrade db, not confirmed; upgrade app while db waits", async () => {
    await ok("up", "-d", "-f", "example1");
    expect(await services()).toEqual({ app: "active 1/1", db: "active 1/1" });
    const first = await listed();

    // app and db upgraded: 2/1, the new containers have the same name, but the id is newer
    await ok("up", "-d", "--upgrade", "-f", "example2");
    expect(await services()).toEqual({ app: "upgraded 2/1", db: "upgraded 2/1" });
    const upgraded = await containers();
    expect(upgraded.map((r) => `${r.name} ${r.state}`)).toEqual(["lesson-app-1 running", "lesson-app-1 stopped", "lesson-db-1 running", "lesson-db-1 stopped"]);
    expect(upgraded.filter((r) => r.state === "stopped").map((r) => r.id)).toEqual([first["lesson-app-1 running"], first["lesson-db-1 running"]]);
    expect(upgraded.filter((r) => r.state === "running").map((r) => r.id)).not.toContain(first["lesson-app-1 running"]);
    expect(upgraded.find((r) => r.state === "stopped")!.detail).toMatch(/^previous container, kept by the upgrade \(revision 1 → 2\)/);
    // ps's docker column names the engine's own containers, in the states ps gives
    const onEngine = await engine();
    for (const r of upgraded) expect(onEngine[r.docker!]).toBe(r.state === "running" ? "running" : "exited");

    // the same file with --confirm-upgrade: the pending upgrades are finished
    await ok("up", "-d", "--upgrade", "--confirm-upgrade", "-f", "example2");
    expect(await services()).toEqual({ app: "active 1/1", db: "active 1/1" });
    const confirmed = await listed();
    expect(Object.keys(confirmed)).toEqual(["lesson-app-1 running", "lesson-db-1 running"]);
    expect(Object.keys(await engine())).toHaveLength(2);

    await ok("up", "-d", "--upgrade", "--force-upgrade", "-f", "example2");
    expect(await services()).toEqual({ app: "upgraded 2/1", db: "upgraded 2/1" });

    // the rollback leaves one container per service, with the id of the old one
    await ok("up", "--upgrade", "-d", "--rollback", "-f", "example2");
    expect(await services()).toEqual({ app: "active 1/1", db: "active 1/1" });
    expect(await listed()).toEqual(confirmed);
    expect(Object.keys(await engine())).toHaveLength(2);

    await ok("volume", "create", "db.lesson");

    // db upgraded, not confirmed
    await ok("up", "-d", "--upgrade", "-f", "example3");
    expect(await services()).toEqual({ app: "active 1/1", db: "upgraded 2/1" });
    // app upgraded while db's upgrade still awaits confirmation
    const app = await ok("up", "-d", "--upgrade", "-f", "example4");
    expect(app).toContain("Upgrading app");
    expect(app).not.toContain("Upgrading db");
    expect(await services()).toEqual({ app: "upgraded 2/1", db: "upgraded 2/1" });
    const db = (await stackContainers("lesson")).find((c) => c.State === "running" && c.Labels["io.corral.service"] === "db")!;
    expect(db.Mounts.map((m) => m.Name)).toContain("db.lesson");

    // history: every revision, the current one marked
    // history: every revision, the rollback as an entry of its own, the current one marked
    type Entry = { revision: number; current: string; rollback: string };
    const history = JSON.parse(await ok("history", "lesson", "--format", "json")) as Entry[];
    expect(history.map((h) => `${h.revision}${h.rollback ? ` ${h.rollback}` : ""}`)).toEqual(["1", "2", "3", "2 rollback to 2", "4", "5"]);
    expect(history.filter((h) => h.current).map((h) => h.revision)).toEqual([5]);

    // a rollback now rolls back both, each to what it ran before: no earlier revision, so a revision of its own
    await ok("up", "-d", "--rollback");
    expect(await services()).toEqual({ app: "active 1/1", db: "active 1/1" });
    expect(await listed()).toEqual(confirmed);
    const after = JSON.parse(await ok("history", "lesson", "--format", "json")) as Entry[];
    expect(after.at(-1)).toMatchObject({ revision: 6, rollback: "rollback of db, app" });
    expect(after.filter((h) => h.current).map((h) => h.revision)).toEqual([6]);
    const running = (await stackContainers("lesson")).filter((c) => c.State === "running");
    expect(running.map((c) => c.Labels["io.corral.revision"]).sort()).toEqual(["2", "2"]);
  });
});
