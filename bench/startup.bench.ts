/**
 * `npm run bench` (CLI start): how long a command takes from the shell, its
 * start included, beside Node's own start (`node -e 0`, the direct column),
 * the docker CLI (the Swarm column: what a Swarm user types) and
 * docker-compose, on the same machine in the same run, interleaved. corral is
 * run as installed (npm pack, npm install -g): the package's bin, dist and
 * package.json, no sources (so no check for sources newer than the build,
 * which the checkout's bin makes). `ps` asks a server started here with no
 * agent (an empty list); docker's asks the engine, compose's a project.
 */
import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "@corral/local";
import { row, Timings, type Tool } from "./report.js";
import { composeProblem, runsFor, type BenchOptions, type BenchPart } from "./support.js";

const root = fileURLToPath(new URL("..", import.meta.url));

const run = (cmd: string, args: string[], env: Record<string, string> = {}) =>
  new Promise<number>((resolve, reject) => {
    const started = process.hrtime.bigint();
    execFile(cmd, args, { env: { ...process.env, ...env } }, (error) => {
      if (error) return reject(error);
      resolve(Number(process.hrtime.bigint() - started) / 1e6);
    });
  });

export async function startupBench(o: BenchOptions): Promise<BenchPart> {
  const runs = runsFor(o, 5, 21);
  const dir = mkdtempSync(join(tmpdir(), "corral-bench-installed-"));
  for (const part of ["bin", "dist", "package.json"]) cpSync(join(root, "packages/cli", part), join(dir, part), { recursive: true });
  const bin = join(dir, "bin/corral.js");
  const project = join(dir, "docker-compose.yml");
  writeFileSync(project, "services:\n  web:\n    image: corral-hello:latest\n");
  const noCompose = await composeProblem();
  const server = await startServer({ port: 0, dataDir: mkdtempSync(join(tmpdir(), "corral-bench-startup-")), hostId: "bench", agent: false });
  const env = { CORRAL_URL: server.url, CORRAL_TOKEN: server.token };
  const node = process.execPath;
  type Case = [tool: Tool, cmd: string, args: string[], env?: Record<string, string>];
  const cases: Record<string, Case[]> = {
    "--version": [["corral", node, [bin, "--version"]], ["swarm", "docker", ["--version"]], ["compose", "docker-compose", ["version", "--short"]]],
    "--help": [["corral", node, [bin, "--help"]], ["swarm", "docker", ["--help"]], ["compose", "docker-compose", ["--help"]]],
    ps: [["corral", node, [bin, "ps"], env], ["swarm", "docker", ["ps"]], ["compose", "docker-compose", ["-f", project, "ps"]]],
  };
  const t = new Timings();
  try {
    for (let i = 0; i < runs; i++) {
      t.add("node", "direct", await run(node, ["-e", "0"]));
      for (const [what, list] of Object.entries(cases)) {
        for (const [tool, cmd, args, e] of list) if (tool !== "compose" || !noCompose) t.add(what, tool, await run(cmd, args, e));
      }
    }
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const nodeSamples = t.get("node").direct!;
  const note = "direct: node -e 0; Swarm: the docker CLI; compose: docker-compose";
  return {
    rows: [
      row("CLI start", "--version", "the process exits", { ...t.get("--version"), direct: nodeSamples }, note),
      row("CLI start", "--help", "the process exits", { ...t.get("--help"), direct: nodeSamples }, note),
      row("CLI start", "ps", "the process exits, the list printed (corral's server on loopback, no containers)", { ...t.get("ps"), direct: nodeSamples }, note),
    ],
    notes: noCompose ? [`compose: not measured (${noCompose})`] : [],
  };
}
