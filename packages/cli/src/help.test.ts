import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { cliVersion, main } from "./main.js";

/** What `corral ARGS` prints (help goes to stdout, errors to stderr), run in this process. */
async function run(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(["node", "corral", ...args], { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

/** The names under a help text's "Commands:" heading (a description's wrapped lines are indented deeper). */
const commandsOf = (help: string) =>
  [...(help.split("Commands:")[1] ?? "").matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]!).filter((c) => c !== "help");

/** The long flags under a help text's "Options:" heading, --help aside. */
const flagsOf = (help: string) =>
  [...(help.split("Options:")[1]?.split("Commands:")[0] ?? "").matchAll(/^ {2}(?:-\w, )?(--[a-z][a-z-]*)/gm)].map((m) => m[1]!).filter((f) => f !== "--help");

const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
/** The README's command-line reference: the first code block of "## The command line". */
const reference = /## The command line[\s\S]*?```\n([\s\S]*?)```/.exec(readme)![1]!;

/** A verb's entries in the reference: lines `corral VERB ...` or `corral A | VERB ...`, with their continuation lines. */
function entryOf(verb: string): string {
  const entries: string[] = [];
  let current: string[] | undefined;
  for (const line of reference.split("\n")) {
    const m = /^corral ((?:[a-z-]+ \| )*[a-z-]+)\b/.exec(line);
    if (m) {
      current = m[1]!.split(" | ").includes(verb) ? [line] : undefined;
      if (current) entries.push(...current);
    } else if (current && /^\s/.test(line)) entries.push(line);
  }
  return entries.join("\n");
}

const verbs = commandsOf((await run(["--help"])).out);
const helpOf = async (path: string[]) => (await run([...path, "--help"])).out;

describe("README and --help agree on every verb and flag", () => {
  it("finds the verbs in corral --help", () => {
    expect(verbs).toEqual(expect.arrayContaining(["server", "agent", "up", "ps", "logs", "exec", "rm", "stop", "start", "restart", "secret", "volume"]));
  });

  it.each(verbs)("corral %s: in the README, with every flag its help lists, and no flag it does not take", async (verb) => {
    const entry = entryOf(verb);
    expect(entry, `README has no 'corral ${verb}' line`).not.toBe("");
    const help = await helpOf([verb]);
    const subs = commandsOf(help);
    const flags = new Set(flagsOf(help));
    for (const sub of subs) {
      expect(entry, `README's 'corral ${verb}' entry has no '${verb} ${sub}'`).toContain(`${verb} ${sub}`);
      for (const f of flagsOf(await helpOf([verb, sub]))) flags.add(f);
    }
    for (const f of flags) expect(entry, `README's 'corral ${verb}' entry lacks ${f}`).toMatch(new RegExp(`${f}\\b`));
    for (const [f] of entry.matchAll(/--[a-z][a-z-]*/g)) expect([...flags], `README gives 'corral ${verb}' ${f}, which it does not take`).toContain(f);
  });

  it("corral --version prints the package's version and exits 0", async () => {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    expect(cliVersion()).toBe(pkg.version);
    expect(await run(["--version"])).toEqual({ code: 0, out: pkg.version, err: "" });
    expect(reference).toContain("corral --version");
  });

  it("the help's examples use forms that work (exec takes STACK/SERVICE, not SERVICE.STACK)", async () => {
    const example = /corral exec (\S+) --/.exec(await helpOf(["exec"]))?.[1];
    expect(example).toMatch(/^[a-z0-9-]+\/[a-z0-9-]+$/);
  });
});

describe("every verb refuses what it does not take, with its usage line", () => {
  it.each([
    [["ps", "a", "b"], "usage: corral ps [options] [target]"],
    [["up", "-d", "--no-such-flag"], "usage: corral up [options] [services...]"],
    [["stack", "ls", "extra"], "usage: corral stack ls [options]"],
    [["inspect", "a", "b"], "usage: corral inspect [options] <target>"],
    [["stop"], "usage: corral stop [options] <targets...>"],
    [["server", "extra"], "usage: corral server [options]"],
  ])("corral %j", async (args, usage) => {
    const r = await run(args);
    expect(r.code).not.toBe(0);
    expect(r.err).toContain(usage);
    expect(r.out).toBe("");
  });

  it("every command, however deep, refuses an extra argument", async () => {
    const { buildProgram } = await import("./main.js");
    const walk = (c: ReturnType<typeof buildProgram>): boolean[] => [!(c as unknown as { _allowExcessArguments: boolean })._allowExcessArguments, ...c.commands.flatMap(walk)];
    expect(walk(buildProgram()).every(Boolean)).toBe(true);
  });

  it("a command line that names a verb builds that verb alone, and every help and error reads as with the whole tree", async () => {
    const { buildProgram } = await import("./main.js");
    const whole = buildProgram();
    expect(buildProgram(undefined, ["node", "corral", "--help"]).commands.map((c) => c.name())).toEqual(whole.commands.map((c) => c.name()));
    for (const v of whole.commands) {
      expect(buildProgram(undefined, ["node", "corral", v.name(), "--help"]).commands.map((c) => c.name())).toEqual([v.name()]);
      // the same text as the whole tree prints, through main (which builds the verb alone)
      const paths = [[v.name()], ...v.commands.map((c) => [v.name(), c.name()])];
      for (const path of paths)
        for (const last of ["--help", "--no-such-flag"]) {
          const out: string[] = [];
          const err: string[] = [];
          await buildProgram({ out: (l) => out.push(l), err: (l) => err.push(l) })
            .parseAsync(["node", "corral", ...path, last])
            .catch(() => {});
          const lazy = await run([...path, last]);
          expect([lazy.out, lazy.err]).toEqual([out.join("\n"), err.join("\n")]);
          if (last !== "--help") expect(lazy.err).toMatch(/^error: .*\nusage: corral /);
        }
    }
  });
});

describe("host flags refuse bad values before anything is sent", () => {
  it.each([
    [["agent", "--join", "http://127.0.0.1:1", "--token", "join.h.x", "--address", "not-an-ip"], /--address: expected an IP address, got "not-an-ip"/],
    [["server", "--host-timeout", "soon"], /--host-timeout: expected a duration from 1s to 24h/],
    [["server", "--host-timeout", "10ms"], /--host-timeout: expected a duration from 1s to 24h/],
    [["host", "add", "h1", "--label", "io.corral.stack=x"], /--label: label key "io.corral.stack": io\.corral\.\* keys are corral's own/],
    [["host", "add", "h1", "--label", "novalue"], /--label: label "novalue": write KEY=VALUE/],
    [["host", "label", "h1", "zone=two words"], /printable characters without spaces/],
  ])("corral %j", async (args, message) => {
    const r = await run(args);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(message);
  });
});
