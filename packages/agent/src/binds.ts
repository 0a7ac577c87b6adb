import { stat } from "node:fs/promises";
import { dirname, posix } from "node:path";

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
      return `directory ${dir} is not traversable by user ${uid}:${gid} (mode ${mode.toString(8).padStart(3, "0")}, owner ${st.uid}:${st.gid}): give it o+x (chmod o+x ${dir}), or run as a user that may enter it`;
    }
  }
  return undefined;
}
