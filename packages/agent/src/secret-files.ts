import { constants } from "node:fs";
import { lstat, mkdir, open } from "node:fs/promises";

const agentUid = () => process.geteuid?.() ?? process.getuid?.() ?? 0;

/**
 * A folder only this agent's user may enter: made 0700 when missing, and one
 * that exists must be a real directory (not a symlink: lstat), owned by this
 * user, with no access for group or others. Its default place, /dev/shm, is
 * writable by everyone: another local user could have made it first, to read
 * the secrets written there or to point it elsewhere.
 */
export async function ensurePrivateDir(path: string): Promise<void> {
  await mkdir(path, { mode: 0o700 }).catch((e: unknown) => {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  });
  const st = await lstat(path);
  const refuse = (why: string) => new Error(`the secrets folder ${path} ${why}: refusing to write secrets there (remove it, and the agent makes its own)`);
  if (st.isSymbolicLink()) throw refuse("is a symlink");
  if (!st.isDirectory()) throw refuse("is not a directory");
  if (st.uid !== agentUid()) throw refuse(`is owned by uid ${st.uid}, not by the agent's user (${agentUid()})`);
  if ((st.mode & 0o077) !== 0) throw refuse(`has mode ${(st.mode & 0o777).toString(8).padStart(3, "0")}, where only its owner may enter (700)`);
}

/**
 * Write a file that must not exist yet, never through a symlink (O_EXCL with
 * O_NOFOLLOW: a name planted there, link or file, fails the open), then give
 * it its owner and mode on the open file itself.
 */
export async function writeNewFile(path: string, data: Buffer, owner: { uid: number; gid: number }, mode: number): Promise<void> {
  const file = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await file.writeFile(data);
    await file.chown(owner.uid, owner.gid);
    await file.chmod(mode);
  } finally {
    await file.close();
  }
}
