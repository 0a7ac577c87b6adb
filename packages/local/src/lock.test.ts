import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DataFolderInUseError, LOCK_FILE, lockDataFolder, processStart } from "./lock.js";

const scratch = () => mkdtempSync(join(tmpdir(), "corral-lock-"));
/** The pid of a process that has ended. */
const deadPid = () => spawnSync(process.execPath, ["-e", ""]).pid!;

describe("DATA/server.lock: one corral server per data folder", () => {
  it("holds this process's pid, refuses a second taker naming it, and is gone once released", () => {
    const data = scratch();
    const lock = lockDataFolder(data);
    expect(JSON.parse(readFileSync(join(data, LOCK_FILE), "utf8")).pid).toBe(process.pid);
    expect(() => lockDataFolder(data)).toThrow(new DataFolderInUseError(data, process.pid));
    expect(() => lockDataFolder(data)).toThrow(`data folder ${data} is in use by another corral server (pid ${process.pid})`);
    lock.release();
    expect(existsSync(join(data, LOCK_FILE))).toBe(false);
    lockDataFolder(data).release();
  });

  it("takes over the lock of a process that has ended", () => {
    const data = scratch();
    writeFileSync(join(data, LOCK_FILE), `${JSON.stringify({ pid: deadPid() })}\n`);
    const lock = lockDataFolder(data);
    expect(JSON.parse(readFileSync(join(data, LOCK_FILE), "utf8")).pid).toBe(process.pid);
    lock.release();
  });

  it("takes over a lock whose pid now belongs to another process (its start time differs)", () => {
    const data = scratch();
    writeFileSync(join(data, LOCK_FILE), `${JSON.stringify({ pid: process.pid, start: "1" })}\n`);
    if (processStart(process.pid) === undefined) return; // no /proc: the pid alone decides
    lockDataFolder(data).release();
  });

  it("never removes a lock another server took after ours was taken over", () => {
    const data = scratch();
    const ours = lockDataFolder(data);
    writeFileSync(join(data, LOCK_FILE), `${JSON.stringify({ pid: 1 })}\n`); // what a server that took over would have written
    ours.release();
    expect(existsSync(join(data, LOCK_FILE))).toBe(true);
  });
});
