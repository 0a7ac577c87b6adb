import type { Step } from "@corral/core";
import { mkdir, rm } from "node:fs/promises";
import { join, posix } from "node:path";
import { AgentSetupError } from "../errors.js";
import { SECRET_OWNER_FILE, secretFolder } from "../names.js";
import type { AgentOptions } from "../options.js";
import type { MountRequest } from "../runtime.js";
import { ensurePrivateDir, writeNewFile } from "../secret-files.js";

/**
 * Write the secrets a container mounts into its own folder on the host's
 * tmpfs (0700, the agent's user's, checked: see ensurePrivateDir), each file
 * new, never through a symlink, with the owner and mode the service asked
 * for, and bind them read-only at /run/secrets/TARGET.
 */
export async function secretMounts(step: Step, o: AgentOptions): Promise<MountRequest[]> {
  if (!step.secrets?.length) return [];
  const { fetchSecret, secretsDir } = o;
  if (!fetchSecret || !secretsDir) throw new AgentSetupError("this agent cannot mount secrets (no secret path configured)");
  // one folder per container, named by its create step (the container's name moves aside in an upgrade)
  const dir = join(secretsDir, secretFolder(step.id));
  await ensurePrivateDir(secretsDir);
  await rm(dir, { recursive: true, force: true }); // a leftover of an earlier attempt; rm does not follow links
  await mkdir(dir, { mode: 0o700 }); // fails if anything took the name meanwhile
  await ensurePrivateDir(dir);
  await writeNewFile(join(dir, SECRET_OWNER_FILE), Buffer.from(o.hostId), { uid: process.geteuid?.() ?? 0, gid: process.getegid?.() ?? 0 }, 0o600);
  const mounts: MountRequest[] = [];
  for (const [i, s] of step.secrets.entries()) {
    const file = join(dir, String(i));
    await writeNewFile(file, await fetchSecret(step, s.name, s.version), { uid: Number(s.uid), gid: Number(s.gid) }, s.mode);
    const target = s.target.startsWith("/") ? s.target : posix.join("/run/secrets", s.target);
    mounts.push({ type: "bind", source: file, target, readOnly: true });
  }
  return mounts;
}
