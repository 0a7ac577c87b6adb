import { createPrivateKey, createPublicKey, generateKeyPairSync, hkdfSync, type KeyObject } from "node:crypto";
import { closeSync, constants, fstatSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * The control plane's keys, from one file, DATA/control.key (mode 0600): an
 * Ed25519 private key that signs every message to a host, and, derived from
 * it, the MAC key that signs every commit of the event log. Hosts learn only
 * the public key.
 */
export interface ControlKeys {
  privateKey: KeyObject;
  publicKey: KeyObject;
  commitKey: Buffer;
}

/**
 * Read a file only this process's user may read or write: a regular file
 * (not a symlink), owned by us, with no group or other bits. Anything else
 * is refused naming the file and the fix, since someone else could have
 * planted or read it.
 */
export function readPrivateFile(path: string): Buffer {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const st = fstatSync(fd);
    const uid = process.getuid?.();
    if (!st.isFile()) throw new Error(`${path} is not a regular file`);
    if (uid !== undefined && st.uid !== uid) throw new Error(`${path} is owned by uid ${st.uid}, not by this user (${uid}): chown it, or remove it to make a new one`);
    if ((st.mode & 0o077) !== 0) throw new Error(`${path} has mode ${(st.mode & 0o777).toString(8)}: others may read or change it; chmod 600 it`);
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Write a new private file (0600), never over an existing one or through a symlink. */
export function writePrivateFile(path: string, data: string | Buffer): void {
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    writeFileSync(fd, data);
  } finally {
    closeSync(fd);
  }
}

export function controlKeys(dataDir: string): ControlKeys {
  const file = join(dataDir, "control.key");
  let pem: string;
  try {
    pem = readPrivateFile(file).toString();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    pem = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    writePrivateFile(file, pem);
  }
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== "ed25519") throw new Error(`${file} is not an Ed25519 private key`);
  const der = privateKey.export({ type: "pkcs8", format: "der" });
  const commitKey = Buffer.from(hkdfSync("sha256", der, "corral", "event-log commit MAC", 32));
  return { privateKey, publicKey: createPublicKey(privateKey), commitKey };
}
