import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanupStack, composeFile, corral, stackContainers, testServer } from "../support.js";
import { addRow } from "./profile.js";

const run = promisify(execFile);

/**
 * A full disk under the data folder: the server's writes are refused with a
 * clear error (507, the folder named), what it had stays readable and
 * whole, nothing is half-written, and once space is freed it carries on
 * where it was, without a restart.
 */

const why = process.getuid?.() !== 0 ? "the full-disk test mounts a small tmpfs: it needs root" : undefined;
if (why) console.warn(`skipped: ${why}`);

describe.skipIf(why !== undefined)("a full disk for the data folder", () => {
  const mount = mkdtempSync(join(tmpdir(), "corral-full-"));
  const fill = join(mount, "fill");
  let server: Awaited<ReturnType<typeof testServer>>;
  const stack = "faults-disk";
  const file = (v: string) => composeFile(`services:\n  app:\n    image: corral-hello:latest\n    environment: {V: "${v}"}\n    cap_drop: [ALL]\n    cap_add: [NET_BIND_SERVICE]\n`);

  beforeAll(async () => {
    await run("mount", ["-t", "tmpfs", "-o", "size=48m", "tmpfs", mount]);
    server = await testServer({ dataDir: join(mount, "data"), hostId: "disk-host" });
  });
  afterAll(async () => {
    await server?.stop();
    await cleanupStack(stack);
    await run("umount", [mount]).catch(() => {});
    rmSync(mount, { recursive: true, force: true });
  });

  it("refuses writes with 507 naming the data folder, keeps what it had readable, and carries on once space is freed", async () => {
    expect((await corral(server, ["up", "-d", "-s", stack, "-f", file("1")])).code).toBe(0);
    const before = await corral(server, ["history", stack, "--format", "json"]);
    expect(before.code).toBe(0);

    // fill the disk (dd stops at ENOSPC)
    await run("sh", ["-c", `dd if=/dev/zero of=${fill} bs=1M count=1000 2>/dev/null || true`]);
    // a file's last page may still take a small append (tmpfs gives no new page, but the store's log has room in its
    // last one): writes that change nothing the test reads (a secret's versions) use it up until the store refuses
    // (a secret of the stack's: a name of another shape is refused before anything is written, full disk or not)
    const secretName = `app.${stack}.token`;
    const secret = () =>
      fetch(`${server.url}/v1/secrets/${secretName}`, {
        method: "POST",
        headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json" },
        body: JSON.stringify({ value: Buffer.from(`s3cret-${Math.random()}`).toString("base64") }),
      });
    for (let i = 0; i < 200 && (await secret()).status !== 507; i++);
    const full = Date.now();
    const upgrade = await corral(server, ["up", "-d", "--upgrade", "-s", stack, "-f", file("2")]);
    expect(upgrade.code).not.toBe(0);
    expect(upgrade.stderr).toMatch(/data folder is full/);
    const res = await fetch(`${server.url}/v1/secrets/${secretName}`, {
      method: "POST",
      headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json" },
      body: JSON.stringify({ value: Buffer.from("s3cret").toString("base64") }),
    });
    expect(res.status).toBe(507);
    expect(((await res.json()) as { error: string }).error).toBe("storage_full");
    // reads still answer, and show what was there
    const during = await corral(server, ["history", stack, "--format", "json"]);
    expect(during.stdout).toBe(before.stdout);
    expect((await stackContainers(stack)).map((c) => c.State)).toEqual(["running"]);

    rmSync(fill);
    const freed = Date.now();
    const again = await corral(server, ["up", "-d", "--upgrade", "-s", stack, "-f", file("2")]);
    expect(again.stderr).toBe("");
    expect(again.code).toBe(0);
    expect((await corral(server, ["up", "-d", "--confirm-upgrade", "-s", stack, "-f", file("2")])).code).toBe(0);
    const after = JSON.parse((await corral(server, ["history", stack, "--format", "json"])).stdout) as { rows?: unknown[] } | unknown[];
    expect(JSON.stringify(after)).toContain('"revision":2');
    const running = await stackContainers(stack);
    expect(running.map((c) => `${c.Names[0]} ${c.State} ${c.Labels["io.corral.revision"]}`)).toEqual([`/${stack}-app-1 running 2`]);
    addRow({ fault: "data folder full", injected: 1, converged: 1, seconds: [(Date.now() - freed) / 1000], orphans: 0, duplicates: 0, lost: 0 });
    console.log(`disk full for ${((freed - full) / 1000).toFixed(1)} s; after freeing, the upgrade and confirm took ${((Date.now() - freed) / 1000).toFixed(1)} s`);
  });
});
