import { closeSync, linkSync, mkdirSync, openSync, readFileSync, rmdirSync, statSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";

/** Another live process holds the data folder: its pid, and the lock file to remove if that is wrong. */
export class DataFolderInUseError extends Error {
  override name = "DataFolderInUseError";
  constructor(
    readonly dataDir: string,
    readonly pid: number | undefined,
  ) {
    super(
      `data folder ${dataDir} is in use by another corral server${pid ? ` (pid ${pid})` : ""}; stop it, or choose another --data` +
        ` (if no server runs, remove ${join(dataDir, LOCK_FILE)})`,
    );
  }
}

export const LOCK_FILE = "server.lock";

interface Holder {
  pid: number;
  /** The process's start time (/proc/PID/stat field 22): tells a live holder from a new process that got its pid. */
  start?: string;
}

export interface DataLock {
  release(): void;
}

/** The start time of a process, where /proc says it (Linux); undefined elsewhere or when it is gone. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // the command name (field 2) is in parentheses and may hold spaces: count fields after its closing one
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** Whether the process that wrote `holder` still runs (a pid alive with another start time is someone else). */
export function holderAlive(holder: Holder): boolean {
  try {
    process.kill(holder.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false; // ESRCH: gone
  }
  if (holder.start === undefined) return true;
  const now = processStart(holder.pid);
  return now === undefined || now === holder.start;
}

function readHolder(path: string): Holder | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  try {
    const parsed = JSON.parse(text) as { pid?: unknown; start?: unknown };
    if (typeof parsed.pid === "number" && Number.isInteger(parsed.pid) && parsed.pid > 0) {
      return { pid: parsed.pid, ...(typeof parsed.start === "string" ? { start: parsed.start } : {}) };
    }
  } catch {
    // a torn or foreign file: no live holder named in it
  }
  return { pid: 0 };
}

const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Take DATA/server.lock for this process: linked into place whole (only one
 * process can), holding this pid and its start time. A lock whose process is
 * gone is taken over, under a short-lived guard folder so that two servers
 * starting at once over the same stale lock cannot both win.
 */
export function lockDataFolder(dataDir: string, me: Holder = { pid: process.pid, ...(processStart(process.pid) ? { start: processStart(process.pid)! } : {}) }): DataLock {
  const path = join(dataDir, LOCK_FILE);
  const guard = `${path}.takeover`;
  for (let attempt = 0; attempt < 100; attempt++) {
    // written whole to a file of our own, then linked into place: link(2) fails if the lock exists, and no
    // process ever reads a half-written lock
    const mine = `${JSON.stringify(me)}\n`;
    const tmp = `${path}.${process.pid}.${attempt}`;
    const fd = openSync(tmp, "wx", 0o600);
    try {
      writeSync(fd, mine);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(tmp, path);
      return {
        release() {
          // only our own lock: never one a later server took over
          if (readHolderText(path) === mine) unlinkSync(path);
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    } finally {
      unlinkSync(tmp);
    }
    const holder = readHolder(path);
    if (holder === undefined) continue; // released meanwhile
    if (holder.pid !== 0 && holderAlive(holder)) throw new DataFolderInUseError(dataDir, holder.pid);
    // stale: its process is gone. Take it over under the guard, checking again that it is the same stale lock.
    try {
      mkdirSync(guard);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      // another process takes it over right now; a guard older than a few seconds was left by a crash
      if (Date.now() - statMtime(guard) > 5000) rmdirSync(guard);
      sleep(20);
      continue;
    }
    try {
      const again = readHolder(path);
      if (again && again.pid === holder.pid && again.start === holder.start) unlinkSync(path);
    } finally {
      rmdirSync(guard);
    }
  }
  throw new DataFolderInUseError(dataDir, readHolder(path)?.pid || undefined);
}

function readHolderText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function statMtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return Date.now();
  }
}
