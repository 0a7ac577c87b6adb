import { chmodSync, mkdirSync, mkdtempSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bindProblem, resolveBind } from "./binds.js";

// Real directories on this machine; the checks are about modes, so a uid other than the files' owner is used.
it("names the first directory a numeric user cannot traverse, and a missing source", async () => {
  const root = mkdtempSync(join(tmpdir(), "corral-binds-"));
  chmodSync(root, 0o755);
  const closed = join(root, "closed");
  const data = join(closed, "data");
  mkdirSync(data, { recursive: true });
  writeFileSync(join(data, "f"), "x");
  chmodSync(closed, 0o750);
  chmodSync(data, 0o755);
  expect(await bindProblem(data, "4242:4242")).toBe(
    `directory ${closed} is not traversable by user 4242:4242 (mode 750, owner ${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}): ` +
      `give it o+x (chmod o+x ${closed}), or run as a user that may enter it`,
  );
  chmodSync(closed, 0o751);
  expect(await bindProblem(data, "4242:4242")).toBeUndefined();
  expect(await bindProblem(join(data, "f"), "4242:4242")).toBeUndefined();
  expect(await bindProblem(join(root, "nope"), "4242:4242")).toBe(`bind mount source ${join(root, "nope")} does not exist on this host`);
  // the group may enter where others may not
  chmodSync(closed, 0o750);
  expect(await bindProblem(data, `4242:${process.getgid?.() ?? 0}`)).toBeUndefined();
});

describe("a bind's real path", () => {
  const tree = () => {
    const root = mkdtempSync(join(tmpdir(), "corral-roots-"));
    const allowed = join(root, "cdirs");
    mkdirSync(join(allowed, "proj", "data"), { recursive: true });
    symlinkSync("/", join(allowed, "proj", "escape"));
    symlinkSync(join(allowed, "proj", "data"), join(allowed, "proj", "alias"));
    symlinkSync(allowed, join(root, "roots-link"));
    return { root, allowed, real: realpathSync(allowed) };
  };

  it("a symlink inside an allowed folder that points at / is refused, naming what it resolves to", async () => {
    const { allowed } = tree();
    expect(await resolveBind(join(allowed, "proj", "escape"), [allowed])).toEqual({
      problem: `bind mount ${join(allowed, "proj", "escape")} (it resolves to /) is not under an allowed root (allowed: ${allowed}; the root itself is not)`,
    });
    expect(await resolveBind(join(allowed, "proj", "escape", "etc"), [allowed])).toMatchObject({ problem: expect.stringContaining("(it resolves to /etc)") as unknown });
  });

  it("the root itself is not under the root, through a symlink or a trailing slash either", async () => {
    const { root, allowed } = tree();
    for (const source of [allowed, `${allowed}/`, join(allowed, "proj", ".."), join(root, "roots-link")]) {
      expect(await resolveBind(source, [allowed]), source).toMatchObject({ problem: expect.stringContaining("is not under an allowed root") as unknown });
    }
    expect(await resolveBind("/", ["/"])).toMatchObject({ problem: expect.stringContaining("is not under an allowed root") as unknown });
  });

  it("gives the resolved path to mount; roots are resolved too", async () => {
    const { root, allowed, real } = tree();
    expect(await resolveBind(join(allowed, "proj", "alias"), [allowed])).toEqual({ path: join(real, "proj", "data") });
    expect(await resolveBind(join(allowed, "proj", "data"), [join(root, "roots-link")])).toEqual({ path: join(real, "proj", "data") });
    expect(await resolveBind(join(allowed, "nope"), [allowed])).toEqual({ problem: `bind mount source ${join(allowed, "nope")} does not exist on this host` });
    expect(await resolveBind(join(allowed, "proj", "data"), [])).toMatchObject({ problem: expect.stringContaining("(allowed: none;") as unknown });
  });
});
