import { createHash } from "node:crypto";
import { chmod, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { z } from "zod";

/**
 * What a joined agent keeps to start again without a new join token: its
 * host id and its host token (rotated at every registration), per control
 * plane. One file per host and control plane, readable by its owner only
 * (0600, in a 0700 directory), written whole (a temporary file renamed), so
 * that an agent killed mid-write leaves the old token or the new one.
 */
export interface SavedHost {
  url: string;
  hostId: string;
  hostToken: string;
}

const savedSchema = z.object({ url: z.string().max(2048), hostId: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$/), hostToken: z.string().max(200) }).strict();

/** Where agents keep their credentials by default: /var/lib/corral/agent for root, else ~/.local/state/corral/agent. */
export const defaultStateDir = () => (process.getuid?.() === 0 ? "/var/lib/corral/agent" : join(homedir(), ".local", "state", "corral", "agent"));

const fileName = (url: string, hostId: string) => `${hostId}@${createHash("sha256").update(url).digest("hex").slice(0, 16)}.json`;

export class CredentialStore {
  constructor(readonly dir: string) {}

  /** The saved credentials for `url`: of `hostId`, or (none given) the only host saved for that URL. Undefined: none (or several, and no id to choose). */
  async load(url: string, hostId?: string): Promise<SavedHost | undefined> {
    const names = hostId ? [fileName(url, hostId)] : (await readdir(this.dir).catch(() => [] as string[])).filter((n) => n.endsWith(`@${fileName(url, "x").split("@")[1]}`));
    const found: SavedHost[] = [];
    for (const name of names) {
      const text = await readFile(join(this.dir, name), "utf8").catch(() => undefined);
      if (text === undefined) continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new Error(`${join(this.dir, name)}: not a corral agent credentials file (invalid JSON); remove it and join again`);
      }
      const saved = savedSchema.safeParse(parsed);
      if (!saved.success) throw new Error(`${join(this.dir, name)}: not a corral agent credentials file; remove it and join again`);
      if (saved.data.url === url) found.push(saved.data);
    }
    return found.length === 1 ? found[0] : undefined;
  }

  async save(saved: SavedHost): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await chmod(this.dir, 0o700);
    const file = join(this.dir, fileName(saved.url, saved.hostId));
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(saved) + "\n", { mode: 0o600 });
    await rename(tmp, file);
  }

  /** The host was removed from the control plane: its token is worth nothing now. */
  async forget(url: string, hostId: string): Promise<void> {
    await rm(join(this.dir, fileName(url, hostId)), { force: true });
  }
}
