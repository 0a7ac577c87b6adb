import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ensurePrivateDir, writeNewFile } from "./secret-files.js";

// Real files in a fresh folder; the test runs as root here, so it can hand a folder to another uid.
const scratch = () => mkdtempSync(join(tmpdir(), "corral-secrets-test-"));
const me = process.geteuid?.() ?? 0;

describe("the secrets folder", () => {
  it("is made 0700, owned by the agent's user, when missing", async () => {
    const dir = join(scratch(), "corral-secrets");
    await ensurePrivateDir(dir);
    const st = lstatSync(dir);
    expect([st.isDirectory(), st.uid, st.mode & 0o777]).toEqual([true, me, 0o700]);
    await ensurePrivateDir(dir); // and taken as it is the next time
  });

  it.runIf(me === 0)("refuses one another user made first", async () => {
    const dir = join(scratch(), "corral-secrets");
    mkdirSync(dir, { mode: 0o700 });
    chownSync(dir, 12345, 12345);
    await expect(ensurePrivateDir(dir)).rejects.toThrow(`the secrets folder ${dir} is owned by uid 12345, not by the agent's user (0): refusing to write secrets there`);
  });

  it("refuses a symlink, even to a folder of its own", async () => {
    const base = scratch();
    const real = join(base, "real");
    mkdirSync(real, { mode: 0o700 });
    symlinkSync(real, join(base, "corral-secrets"));
    await expect(ensurePrivateDir(join(base, "corral-secrets"))).rejects.toThrow(`the secrets folder ${join(base, "corral-secrets")} is a symlink`);
  });

  it("refuses one that others may enter, or a file", async () => {
    const base = scratch();
    mkdirSync(join(base, "open"));
    chmodSync(join(base, "open"), 0o755);
    await expect(ensurePrivateDir(join(base, "open"))).rejects.toThrow("has mode 755, where only its owner may enter (700)");
    writeFileSync(join(base, "file"), "");
    await expect(ensurePrivateDir(join(base, "file"))).rejects.toThrow("is not a directory");
  });
});

describe("a secret file", () => {
  it("is written new, with its owner and mode", async () => {
    const file = join(scratch(), "0");
    await writeNewFile(file, Buffer.from("s3cret"), { uid: 4242, gid: 4343 }, 0o440);
    const st = lstatSync(file);
    expect([readFileSync(file, "utf8"), st.uid, st.gid, st.mode & 0o777]).toEqual(["s3cret", me === 0 ? 4242 : me, me === 0 ? 4343 : st.gid, 0o440]);
  });

  it("is never written through a planted symlink, nor over a planted file", async () => {
    const base = scratch();
    const victim = join(base, "victim");
    writeFileSync(victim, "untouched");
    symlinkSync(victim, join(base, "0"));
    await expect(writeNewFile(join(base, "0"), Buffer.from("s3cret"), { uid: me, gid: me }, 0o400)).rejects.toThrow(/EEXIST/);
    symlinkSync(join(base, "nowhere"), join(base, "1")); // a dangling link: O_CREAT alone would follow it and create its target
    await expect(writeNewFile(join(base, "1"), Buffer.from("s3cret"), { uid: me, gid: me }, 0o400)).rejects.toThrow(/EEXIST/);
    writeFileSync(join(base, "2"), "planted");
    await expect(writeNewFile(join(base, "2"), Buffer.from("s3cret"), { uid: me, gid: me }, 0o400)).rejects.toThrow(/EEXIST/);
    expect(readFileSync(victim, "utf8")).toBe("untouched");
    expect(() => lstatSync(join(base, "nowhere"))).toThrow(/ENOENT/);
    expect(readFileSync(join(base, "2"), "utf8")).toBe("planted");
  });
});
