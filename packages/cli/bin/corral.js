#!/usr/bin/env node
// corral's command line. Installed (npm pack), it runs the built JavaScript, dist/corral.js; in a checkout, the
// same once `npm run build` made it and no TypeScript source is newer, else the sources through tsx.
import module from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";

// (required, not imported: an ESM import of node:fs reads every export, and its ReadStream getter loads Node's
// streams, which `--version` has no use for; node:tty, which loads them too, only where help is asked for)
const require = module.createRequire(import.meta.url);
const { existsSync, readdirSync, readFileSync, statSync, writeSync } = require("node:fs");

const dist = fileURLToPath(new URL("../dist/corral.js", import.meta.url));
// the top-level help, as the build printed it through the same command tree (at 80 columns, as for a pipe)
const staticHelp = fileURLToPath(new URL("../dist/help.txt", import.meta.url));
const packages = fileURLToPath(new URL("../../", import.meta.url));

/** Whether a .ts file under `dir` changed after `built` (ms). */
function newer(dir, built) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory() ? newer(path, built) : e.name.endsWith(".ts") && statSync(path).mtimeMs > built) return true;
  }
  return false;
}

function built() {
  if (!existsSync(dist)) return false;
  if (!existsSync(fileURLToPath(new URL("../src", import.meta.url)))) return true; // installed: only the build is there
  const at = statSync(dist).mtimeMs;
  return !readdirSync(packages).some((p) => existsSync(`${packages}${p}/src`) && newer(`${packages}${p}/src`, at));
}

/**
 * `corral --help` and `corral --version` answered without loading the CLI: what the build's own run printed,
 * and the package's version. Only where that is what the CLI would print: help at 80 columns (a pipe, a file,
 * a terminal of that width; commander wraps to the terminal's width otherwise).
 */
function answeredStatically(args) {
  // (straight to the descriptor: process.stdout, a stream over a pipe, costs more to set up than the rest)
  const out = (text) => {
    const bytes = Buffer.from(text);
    let at = 0;
    try {
      while (at < bytes.length) at += writeSync(1, bytes, at);
    } catch (e) {
      if (e.code !== "EAGAIN") throw e;
      process.stdout.write(bytes.subarray(at)); // a non-blocking pipe that is full: the stream waits for it
    }
  };
  if (args.length !== 1) return false;
  if (args[0] === "--version" || args[0] === "-V") {
    const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
    out(`${version}\n`);
    return true;
  }
  if (args[0] !== "--help" && args[0] !== "-h") return false;
  const eighty = !require("node:tty").isatty(1) || process.stdout.columns === 80;
  if (!eighty || !existsSync(staticHelp)) return false;
  out(readFileSync(staticHelp, "utf8"));
  return true;
}

/**
 * `corral agent` runs on every Docker node for as long as the node does, mostly waiting: it starts again, once, in
 * place (execve, Node 22.15+), as a small daemon. A young generation of at most 1 MB (V8 lets it grow to 16 at
 * start and keeps what it grew to) and no optimizing compilers (their code and what they make): ~80 MB of RSS
 * instead of ~90. Its work is the engine's; the baseline compiler stays. Flags given to node by hand win.
 */
const AGENT_FLAGS = ["--max-semi-space-size=1", "--no-opt", "--no-maglev"];
if (process.argv[2] === "agent" && typeof process.execve === "function" && process.execArgv.length === 0 && !process.env.CORRAL_AGENT_NODE_FLAGS_SET) {
  process.execve(process.execPath, [process.execPath, ...AGENT_FLAGS, ...process.argv.slice(1)], { ...process.env, CORRAL_AGENT_NODE_FLAGS_SET: "1" });
}

if (built()) {
  if (!answeredStatically(process.argv.slice(2))) {
    // Node keeps the bundle's compiled code on disk (Node 22.1+): every start after the first skips compiling it
    module.enableCompileCache?.();
    await import(pathToFileURL(dist).href);
  }
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/bin.ts");
}
