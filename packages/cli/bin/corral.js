#!/usr/bin/env node
// corral's command line. Installed (npm pack), it runs the built JavaScript, dist/corral.js; in a checkout, the
// same once `npm run build` made it and no TypeScript source is newer, else the sources through tsx.
import { existsSync, readdirSync, statSync } from "node:fs";
import module from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";

const dist = fileURLToPath(new URL("../dist/corral.js", import.meta.url));
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

if (built()) {
  // Node keeps the bundle's compiled code on disk (Node 22.1+): every start after the first skips compiling it
  module.enableCompileCache?.();
  await import(pathToFileURL(dist).href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/bin.ts");
}
