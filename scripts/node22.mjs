#!/usr/bin/env node
// Run a script on Node 22 or later: `node scripts/node22.mjs SCRIPT [ARGS...]`.
//
// corral needs Node >= 22 (its dependencies do; 22 and 24 are Lambda's runtimes). On such a Node the
// script runs in this very process, so signals reach it directly. On an older system Node (Debian's 20,
// say) this finds Node 22 through npx, which fetches the `node` package once into npm's cache (the
// registry must be reachable the first time), and runs the script under it as a child that gets every
// SIGINT, SIGTERM and SIGHUP this process gets, and whose exit status (or signal) becomes ours.
//
// CORRAL_NODE=/path/to/node picks the Node to run under instead.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const NEEDED = 22;
const [script, ...args] = process.argv.slice(2);
if (!script) {
  process.stderr.write("usage: node scripts/node22.mjs SCRIPT [ARGS...]\n");
  process.exit(2);
}
const target = resolve(script);
const major = Number(process.versions.node.split(".")[0]);

if (major >= NEEDED && !process.env.CORRAL_NODE) {
  // this Node will do: the script runs here, as if started as `node SCRIPT ARGS...`
  process.argv = [process.execPath, target, ...args];
  await import(pathToFileURL(target).href);
} else {
  const node = process.env.CORRAL_NODE ?? newerNode();
  const child = spawn(node, [target, ...args], { stdio: "inherit" });
  const forward = (signal) => child.kill(signal);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, forward);
  child.on("error", (e) => {
    process.stderr.write(`scripts/node22.mjs: cannot run ${node}: ${e.message}\n`);
    process.exit(1);
  });
  child.on("exit", (code, signal) => {
    if (signal) {
      // end the way the child did, so that whoever waits on us (npm, a shell) sees the same signal
      for (const s of ["SIGINT", "SIGTERM", "SIGHUP"]) process.removeListener(s, forward);
      process.kill(process.pid, signal);
    } else process.exit(code ?? 1);
  });
}

/** The path of a Node >= 22 binary: remembered in node_modules/.cache, else asked of npx (fetched once). */
function newerNode() {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..");
  const cache = join(root, "node_modules", ".cache", "corral", `node${NEEDED}`);
  if (existsSync(cache)) {
    const path = readFileSync(cache, "utf8").trim();
    if (path && existsSync(path)) return path;
  }
  process.stderr.write(`Node ${process.versions.node} is older than corral needs (${NEEDED}+); running under Node ${NEEDED} from npm (npx -p node@${NEEDED}, fetched once)\n`);
  let path;
  try {
    path = execFileSync("npx", ["-y", "-p", `node@${NEEDED}`, "node", "-p", "process.execPath"], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
  } catch (e) {
    process.stderr.write(`scripts/node22.mjs: could not get Node ${NEEDED} with npx (${e.message.split("\n")[0]}); install Node ${NEEDED} or later, or set CORRAL_NODE\n`);
    process.exit(1);
  }
  mkdirSync(dirname(cache), { recursive: true });
  writeFileSync(cache, `${path}\n`);
  return path;
}
