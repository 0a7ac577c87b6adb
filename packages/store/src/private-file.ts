import { chmodSync, closeSync, constants, fstatSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync, type Stats } from "node:fs";

/** A key, token or data folder that others could read, write or swap: corral refuses to start on it. */
export class UnsafeFileError extends Error {
  override name = "UnsafeFileError";
}

const octal = (mode: number) => `0${(mode & 0o777).toString(8).padStart(3, "0")}`;

/** Refuse what is not ours alone: owned by another uid, or open to its group or others. */
function checkPrivate(path: string, st: Stats, kind: "file" | "folder"): void {
  const uid = process.getuid?.();
  const problems: string[] = [];
  const fixes: string[] = [];
  if (uid !== undefined && st.uid !== uid) {
    problems.push(`it is owned by uid ${st.uid}, not by this process's uid ${uid}`);
    fixes.push(`chown ${uid} ${path}`);
  }
  if (st.mode & 0o077) {
    const open = [st.mode & 0o044 ? "read" : "", st.mode & 0o022 ? "write" : "", st.mode & 0o011 ? "search/run" : ""].filter(Boolean).join(" and ");
    problems.push(`its mode ${octal(st.mode)} lets its group or others ${open} it`);
    fixes.push(`chmod ${kind === "file" ? "600" : "700"} ${path}`);
  }
  if (problems.length > 0) {
    throw new UnsafeFileError(`${path}: refusing to use this ${kind}: ${problems.join("; ")}. It must be this user's alone: ${fixes.join(" && ")} (or remove it, and corral makes a new one)`);
  }
}

/**
 * Read a private file (a key, a token) without following a symbolic link,
 * checking the opened file itself: ours, a regular file, mode 0600 or
 * stricter. Undefined when there is no such file.
 */
export function readPrivateFile(path: string): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    if (code === "ELOOP") throw new UnsafeFileError(`${path}: refusing to use this file: it is a symbolic link. Put the file itself there (mode 0600), or remove it, and corral makes a new one`);
    throw e;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new UnsafeFileError(`${path}: refusing to use this file: it is not a regular file`);
    checkPrivate(path, st, "file");
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Create a private file (mode 0600); false when one exists already (never overwritten, never through a link). */
export function createPrivateFile(path: string, data: Buffer | string): boolean {
  try {
    writeFileSync(path, data, { mode: 0o600, flag: "wx" });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  }
}

/** The private file's content, made with `make()` on first use. */
export function privateFile(path: string, make: () => Buffer | string): Buffer {
  const found = readPrivateFile(path);
  if (found) return found;
  if (createPrivateFile(path, make())) return readPrivateFile(path)!;
  return readPrivateFile(path)!; // another process made it first
}

/**
 * A private folder (corral's data dir): made with mode 0700 when missing;
 * one that exists must be ours and closed to group and others.
 */
export function privateFolder(path: string): void {
  const made = mkdirSync(path, { recursive: true, mode: 0o700 });
  if (made !== undefined) chmodSync(path, 0o700); // ours, just made: whatever the umask left
  checkPrivate(path, statSync(path), "folder");
}
