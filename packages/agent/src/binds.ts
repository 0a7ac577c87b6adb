import { realpath, stat } from "node:fs/promises";
import { dirname, posix } from "node:path";

/** Strictly below `root`: the root itself is not "under" it (binding the root would hand over every user's folder). */
const strictlyUnder = (path: string, root: string) => root !== path && path.startsWith(root === posix.sep ? root : `${root}/`);

const missing = (e: unknown) => (e as NodeJS.ErrnoException).code === "ENOENT" || (e as NodeJS.ErrnoException).code === "ENOTDIR";

/**
 * Where a bind mount really points on this host, if that is strictly under
 * one of the site's roots: every symlink on the way resolved (realpath), and
 * the roots resolved too. The agent mounts the path this returns, never the
 * one the compose file wrote, so a symlink swapped after this check does not
 * change what is mounted. (Docker resolves the path again when it starts the
 * container: a user who may rename directories inside the real path can still
 * race that, so a root's own folders must not be writable by its users.)
 */
export async function resolveBind(source: string, roots: readonly string[]): Promise<{ path: string } | { problem: string }> {
  const allowed = roots.length ? roots.join(", ") : "none";
  let path: string;
  try {
    path = await realpath(source);
  } catch (e) {
    if (missing(e)) return { problem: `bind mount source ${source} does not exist on this host` };
    throw e;
  }
  const real = await Promise.all(roots.map((r) => realpath(r).catch((e: unknown) => (missing(e) ? undefined : Promise.reject(e)))));
  if (real.some((r) => r !== undefined && strictlyUnder(path, r))) return { path };
  const through = path === posix.normalize(source) ? "" : ` (it resolves to ${path})`;
  return { problem: `bind mount ${source}${through} is not under an allowed root (allowed: ${allowed}; the root itself is not)` };
}

/**
 * Can a numeric user reach a bind mount's source? Every directory on the way
 * must be traversable by that user (the o+x rule Spin users learned the hard
 * way); the answer names the first one that is not. Undefined when it can.
 */
export async function bindProblem(source: string, user: string | undefined, groupAdd: string[] = []): Promise<string | undefined> {
  let info;
  try {
    info = await stat(source);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return `bind mount source ${source} does not exist on this host`;
    throw e;
  }
  const m = /^(\d+)(?::(\d+))?$/.exec(user ?? "");
  if (!m) return undefined; // not numeric: the policy decides whether that is allowed
  const uid = Number(m[1]);
  const gid = Number(m[2] ?? m[1]);
  if (uid === 0) return undefined;
  const groups = new Set([gid, ...groupAdd.filter((g) => /^\d+$/.test(g)).map(Number)]);
  const dirs: string[] = [];
  for (let d = info.isDirectory() ? source : dirname(source); ; d = dirname(d)) {
    dirs.unshift(d);
    if (d === posix.sep || d === dirname(d)) break;
  }
  for (const dir of dirs) {
    const st = await stat(dir);
    const mode = st.mode & 0o777;
    const may = st.uid === uid ? (mode & 0o100) !== 0 : groups.has(st.gid) ? (mode & 0o010) !== 0 : (mode & 0o001) !== 0;
    if (!may) {
      const where = `directory ${dir} is not traversable by user ${uid}:${gid} (mode ${mode.toString(8).padStart(3, "0")}, owner ${st.uid}:${st.gid})`;
      return `${where}: give it o+x (chmod o+x ${dir}), or run as a user that may enter it`;
    }
  }
  return undefined;
}
