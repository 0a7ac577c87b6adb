import { chmodSync, chownSync, mkdirSync, mkdtempSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { KeyFileMasterKey, privateFile, privateFolder, readPrivateFile, UnsafeFileError } from "./index.js";

const scratch = () => mkdtempSync(join(tmpdir(), "corral-private-"));
const isRoot = process.getuid?.() === 0;

describe("private files: keys and tokens are this user's alone", () => {
  it("makes a missing file 0600 and reads it back", () => {
    const file = join(scratch(), "token");
    expect(privateFile(file, () => "abc\n").toString()).toBe("abc\n");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(privateFile(file, () => "other").toString()).toBe("abc\n");
  });

  it.each([0o644, 0o640, 0o604, 0o620, 0o602, 0o660, 0o666])("refuses an existing file of mode %o, naming the file, its mode and the fix", (mode) => {
    const file = join(scratch(), "master.key");
    writeFileSync(file, Buffer.alloc(32));
    chmodSync(file, mode);
    expect(() => readPrivateFile(file)).toThrow(UnsafeFileError);
    expect(() => readPrivateFile(file)).toThrow(`${file}: refusing to use this file: its mode 0${mode.toString(8)} lets its group or others`);
    expect(() => readPrivateFile(file)).toThrow(`chmod 600 ${file}`);
    expect(() => new KeyFileMasterKey(file)).toThrow(/chmod 600/);
  });

  it("accepts 0600 and 0400", () => {
    for (const mode of [0o600, 0o400]) {
      const file = join(scratch(), "master.key");
      writeFileSync(file, Buffer.alloc(32, 1), { mode });
      expect(readPrivateFile(file)?.length).toBe(32);
    }
  });

  it("refuses a symbolic link, even to a private file, and a folder in the file's place", () => {
    const dir = scratch();
    writeFileSync(join(dir, "real"), "x", { mode: 0o600 });
    symlinkSync(join(dir, "real"), join(dir, "token"));
    expect(() => readPrivateFile(join(dir, "token"))).toThrow(/is a symbolic link/);
    symlinkSync(join(dir, "nowhere"), join(dir, "dangling"));
    expect(() => privateFile(join(dir, "dangling"), () => "x")).toThrow(/symbolic link/);
    mkdirSync(join(dir, "folder"), { mode: 0o700 });
    expect(() => readPrivateFile(join(dir, "folder"))).toThrow(/not a regular file/);
  });

  it.skipIf(!isRoot)("refuses a file or folder owned by another uid, naming the owner and the chown", () => {
    const dir = scratch();
    const file = join(dir, "token");
    writeFileSync(file, "t", { mode: 0o600 });
    chownSync(file, 65534, 65534);
    expect(() => readPrivateFile(file)).toThrow(`${file}: refusing to use this file: it is owned by uid 65534, not by this process's uid 0`);
    expect(() => readPrivateFile(file)).toThrow(`chown 0 ${file}`);
    const other = join(dir, "data");
    mkdirSync(other, { mode: 0o700 });
    chownSync(other, 65534, 65534);
    expect(() => privateFolder(other)).toThrow(/owned by uid 65534/);
  });

  it("a data folder: made 0700 when missing; refused when open to group or others", () => {
    const made = join(scratch(), "a", "data");
    privateFolder(made);
    expect(statSync(made).mode & 0o777).toBe(0o700);
    const open = join(scratch(), "data");
    mkdirSync(open);
    chmodSync(open, 0o755);
    expect(() => privateFolder(open)).toThrow(`${open}: refusing to use this folder: its mode 0755 lets its group or others read and search/run it. It must be this user's alone: chmod 700 ${open}`);
    chmodSync(open, 0o700);
    expect(() => privateFolder(open)).not.toThrow();
  });
});
