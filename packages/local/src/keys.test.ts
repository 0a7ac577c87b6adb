import { chmodSync, chownSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { controlKeys } from "./keys.js";

// DATA/control.key signs every step a host runs: one that others could read or plant is refused.
const dir = () => mkdtempSync(join(tmpdir(), "corral-keys-"));

describe("control keys", () => {
  it("are made once (0600) and read back the same", () => {
    const d = dir();
    const first = controlKeys(d);
    const again = controlKeys(d);
    expect(again.commitKey.equals(first.commitKey)).toBe(true);
    expect(readFileSync(join(d, "control.key"), "utf8")).toMatch(/BEGIN PRIVATE KEY/);
  });

  it("refuse a key file others may read, one owned by another user, and a symlink", () => {
    const loose = dir();
    controlKeys(loose);
    chmodSync(join(loose, "control.key"), 0o644);
    expect(() => controlKeys(loose)).toThrow(/control\.key.*mode 0644.*chmod 600/);

    if (process.getuid?.() === 0) {
      const foreign = dir();
      controlKeys(foreign);
      chownSync(join(foreign, "control.key"), 12345, 12345);
      expect(() => controlKeys(foreign)).toThrow(/owned by uid 12345/);
    }

    const linked = dir();
    const elsewhere = join(dir(), "planted.key");
    writeFileSync(elsewhere, "x", { mode: 0o600 });
    symlinkSync(elsewhere, join(linked, "control.key"));
    expect(() => controlKeys(linked)).toThrow(/symbolic link/);
  });
});
