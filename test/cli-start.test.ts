import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cliBin, repoRoot } from "./support.js";

// corral --help and --version are answered by bin/corral.js without loading the CLI (a file the build wrote,
// the package's version): they must read exactly as the CLI itself prints them (npm test builds first).
const run = (file: string, args: string[]) => execFileSync(process.execPath, [file, ...args], { encoding: "utf8" });
const bundle = join(repoRoot, "packages/cli/dist/corral.js");

describe("the answers bin/corral.js gives without loading the CLI", () => {
  it("--help and -h: the CLI's own help, byte for byte", () => {
    const live = run(bundle, ["--help"]);
    expect(live).toMatch(/^Usage: corral \[options\] \[command\]/);
    expect(run(cliBin, ["--help"])).toBe(live);
    expect(run(cliBin, ["-h"])).toBe(live);
  });

  it("--version and -V: the package's version, as the CLI prints it", () => {
    const { version } = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string };
    expect(run(bundle, ["--version"])).toBe(`${version}\n`);
    expect(run(cliBin, ["--version"])).toBe(`${version}\n`);
    expect(run(cliBin, ["-V"])).toBe(`${version}\n`);
  });

  it("anything else goes to the CLI: a verb's help, a typo", () => {
    expect(run(cliBin, ["ps", "--help"])).toMatch(/^Usage: corral ps/);
    expect(() => run(cliBin, ["--helpp"])).toThrow(/unknown option '--helpp'/);
  });
});
