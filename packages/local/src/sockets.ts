import { createHash } from "node:crypto";
import { lstatSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { privateFolder } from "@corral/store";

/** The longest Unix socket path Linux takes (sun_path is 108 bytes, NUL included), with a margin. */
const MAX_SOCKET_PATH = 100;
const SOCKETS = ["dynamo.sock", "sqs.sock"] as const;

/**
 * Where the stand-ins of the server on `dataDir` listen: the same folder at
 * every start, so that an agent that outlives a restart of the control plane
 * finds its queues where they were (their URLs and socket do not change).
 * DATA/run when its socket paths fit sun_path, else a folder in the temporary
 * directory named after the data folder and this user (refused, as the data
 * folder is, if someone else made it).
 */
export function socketFolder(dataDir: string, uid = process.getuid?.() ?? 0, tmp = tmpdir()): string {
  const inData = join(dataDir, "run");
  if (SOCKETS.every((s) => Buffer.byteLength(join(inData, s)) <= MAX_SOCKET_PATH)) return inData;
  const tag = createHash("sha256").update(dataDir).digest("hex").slice(0, 16);
  return join(tmp, `corral-${uid}-${tag}`);
}

/**
 * Make the stand-ins' folder (0700, ours alone) and clear the sockets a
 * killed server left there. Only the holder of the data folder's lock calls
 * this, so no live server listens on them. Returns the socket paths.
 */
export function prepareSockets(folder: string): { dynamo: string; sqs: string } {
  privateFolder(folder);
  for (const name of SOCKETS) {
    const path = join(folder, name);
    let stale = false;
    try {
      stale = lstatSync(path).isSocket();
    } catch {
      continue; // none
    }
    if (!stale) throw new Error(`${path}: not a socket; corral listens there: remove it`);
    rmSync(path, { force: true });
  }
  return { dynamo: join(folder, "dynamo.sock"), sqs: join(folder, "sqs.sock") };
}

/** Remove the stand-ins' sockets at a clean stop (the folder stays, empty). */
export function removeSockets(folder: string): void {
  for (const name of SOCKETS) rmSync(join(folder, name), { force: true });
}
