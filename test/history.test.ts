import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanupStack, composeFile, corral, docker, stackContainers, testServer } from "./support.js";

// History through the CLI on the real engine: the lives of a stack, rollbacks as entries, and the order of progress lines.
let server: Awaited<ReturnType<typeof testServer>>;
beforeAll(async () => {
  server = await testServer();
});
afterAll(async () => {
  await server?.stop();
  for (const s of ["lives", "order"]) await cleanupStack(s);
});

const idle = `["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]`;
const file = (version: string) =>
  composeFile(`services:
  app:
    image: corral-busybox:latest
    command: ${idle}
    environment: {VERSION: "${version}"}
    cap_drop: [ALL]
`);

interface Row {
  revision: number;
  current: boolean;
  time: string | null;
  by: string;
  source: string;
  changed: Array<{ service: string; keys: string[] }>;
  rollback: string | null;
  life?: number;
  removed?: string | null;
}
const history = async (args: string[]) => {
  const res = await corral(server, ["history", ...args, "--format", "json"]);
  expect(res.stderr).toBe("");
  return JSON.parse(res.stdout) as Row[];
};
const ok = async (args: string[]) => {
  const res = await corral(server, args);
  expect(res.stderr).toBe("");
  expect(res.code).toBe(0);
  return res.stdout;
};
/** The lines about one service, in the order printed. */
const about = (stdout: string, service: string) => stdout.split("\n").filter((l) => l.startsWith(`[${service}]:`));

describe("a stack removed and made again under its name", () => {
  it("starts afresh at revision 1; history shows the current life, --all the earlier ones too, each marked", async () => {
    await ok(["up", "-d", "-f", file("1"), "-s", "lives"]);
    await ok(["up", "-d", "--upgrade", "--confirm-upgrade", "-f", file("2"), "-s", "lives"]);
    expect((await history(["lives"])).map((r) => r.revision)).toEqual([1, 2]);
    await ok(["rm", "lives"]);
    // removed: its last life is still readable, marked removed
    const gone = await corral(server, ["history", "lives"]);
    expect(gone.code).toBe(0);
    expect(gone.stdout).toMatch(/^Life 1 of stack lives: removed at \S+Z by \S+/m);

    await ok(["up", "-d", "-f", file("3"), "-s", "lives"]);
    const now = await history(["lives"]);
    expect(now.map((r) => [r.revision, r.current, r.rollback])).toEqual([[1, true, null]]);
    expect(Object.keys(now[0]!).sort()).toEqual(["by", "changed", "current", "images", "revision", "rollback", "source", "time"]); // the table's columns
    expect(now[0]!.changed).toEqual([{ service: "app", keys: ["added"] }]);
    const stacks = JSON.parse(await ok(["stack", "ls", "--format", "json"])) as Array<{ name: string; revision: string | number }>;
    expect(String(stacks.find((s) => s.name === "lives")?.revision)).toBe("1");
    // the new life's container says revision 1, and runs the new life's config
    const [c] = await stackContainers("lives");
    expect(c?.Labels["io.corral.revision"]).toBe("1");
    expect((await docker.getContainer(c!.Id).inspect()).Config.Env).toContain("VERSION=3");

    const all = await history(["lives", "--all"]);
    expect(all.map((r) => [r.life, r.revision, r.current, r.removed === null])).toEqual([
      [1, 1, false, false],
      [1, 2, false, false],
      [2, 1, true, true],
    ]);
    expect(all[0]!.removed).toMatch(/Z$/);
    const table = await ok(["history", "lives", "--all"]);
    expect(table).toMatch(/^Life 1 of stack lives: removed at \S+Z by \S+\nREVISION\s+CURRENT\s+TIME\s+BY\s+SOURCE\s+CHANGED\s+ROLLBACK\s+IMAGES\n1\s.*\n2\s.*\n\nLife 2 of stack lives: current\nREVISION.*\n1\s+\*\s/m);
  });

  it("rollback --to-revision reaches only the current life's revisions", async () => {
    const res = await corral(server, ["up", "-d", "--rollback", "--to-revision", "2", "-s", "lives"]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("stack lives has no revision 2");
    expect(res.stderr).toContain("an earlier life of the stack had one");
    expect((await history(["lives"])).map((r) => r.revision)).toEqual([1]); // nothing written
    await ok(["rm", "lives"]);
  });
});

describe("progress lines and rollbacks in history", () => {
  it("a no-op up says the stack is up to date; upgrade and rollback print what happens, in order, without renames", async () => {
    await ok(["up", "-d", "-f", file("1"), "-s", "order"]);
    expect((await ok(["up", "-d", "-f", file("1"), "-s", "order"])).trim()).toBe("Stack order is up to date");

    const upgrade = await ok(["up", "-d", "--upgrade", "-f", file("2"), "-s", "order"]);
    expect(upgrade).toMatch(/^Revision 2: app changed\nUpgrading app\n/);
    // the old container stops before the new one is created (the create was planned at once, behind the stop)
    expect(about(upgrade, "app")).toEqual(["[app]: Stopping", "[app]: Stopped", "[app]: Creating", "[app]: Created", "[app]: Starting", "[app]: Started"]);
    expect(upgrade).not.toContain("Kept");
    expect(upgrade.trimEnd().split("\n").at(-1)).toMatch(/^Upgraded: /);

    const rollback = await ok(["up", "-d", "--rollback", "-s", "order"]);
    // the new container goes, the old one runs again under its name
    expect(about(rollback, "app")).toEqual(["[app]: Stopping", "[app]: Stopped", "[app]: Removed order-app-1", "[app]: Starting", "[app]: Started"]);
    expect(rollback).not.toMatch(/Kept|-r1/);
    expect(rollback.trimEnd().split("\n").at(-1)).toBe("Rolled back to revision 1");
    const [c] = await stackContainers("order");
    expect((await docker.getContainer(c!.Id).inspect()).Config.Env).toContain("VERSION=1");

    const rows = await history(["order"]);
    expect(rows.map((r) => [r.revision, r.current, r.rollback])).toEqual([
      [1, false, null],
      [2, false, null],
      [1, true, "rollback to 1"],
    ]);
    expect(rows[2]).toMatchObject({ source: "cli", changed: [{ service: "app", keys: ["environment"] }] });
    expect(rows[2]!.by).toBe(rows[1]!.by);
    expect(rows[2]!.time! >= rows[1]!.time!).toBe(true);
    // (IMAGES: empty, the image is a local one: no digest to show)
    expect(await ok(["history", "order"])).toMatch(/^1\s+\*\s+\S+Z\s+\S+\s+cli\s+app \(environment\)\s+rollback to 1$/m);
    await ok(["rm", "order"]);
  });

  it("history --help says what each column means", async () => {
    const help = await corral(server, ["history", "--help"]);
    for (const column of ["REVISION", "CURRENT", "TIME", "BY", "SOURCE", "CHANGED", "ROLLBACK"]) expect(help.stdout).toMatch(new RegExp(`^  ${column} +\\S`, "m"));
    expect(help.stdout).toContain("--all");
  });
});
