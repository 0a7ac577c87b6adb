import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { bindProblem } from "./binds.js";

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
    `directory ${closed} is not traversable by user 4242:4242 (mode 750, owner ${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}): give it o+x (chmod o+x ${closed}), or run as a user that may enter it`,
  );
  chmodSync(closed, 0o751);
  expect(await bindProblem(data, "4242:4242")).toBeUndefined();
  expect(await bindProblem(join(data, "f"), "4242:4242")).toBeUndefined();
  expect(await bindProblem(join(root, "nope"), "4242:4242")).toBe(`bind mount source ${join(root, "nope")} does not exist on this host`);
  // the group may enter where others may not
  chmodSync(closed, 0o750);
  expect(await bindProblem(data, `4242:${process.getgid?.() ?? 0}`)).toBeUndefined();
});
