#!/usr/bin/env node
// `npm run build`: the CLI, bundled with esbuild into packages/cli/dist (what bin/corral.js runs), with the
// packages it uses but for a few (stayImports), which are resolved from node_modules at run time and must be
// among the root package.json's dependencies (what `npm pack` installs with it). Code split: a client verb
// loads none of what only `server` and `agent` need (the AWS SDK, dockerode, dynalite, fauxqs).
import { build } from "esbuild";
import { readFileSync, rmSync } from "node:fs";
import { builtinModules } from "node:module";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const outdir = `${root}packages/cli/dist`;
const pkg = JSON.parse(readFileSync(`${root}package.json`, "utf8"));
const cli = JSON.parse(readFileSync(`${root}packages/cli/package.json`, "utf8"));
if (cli.version !== pkg.version) throw new Error(`packages/cli/package.json is at ${cli.version}, the package at ${pkg.version}: corral --version reads the first`);

/**
 * What stays an import, installed beside the bundle: what only `server` and `agent` load, and what reads its own
 * files at run time (dynalite's LevelDB, fauxqs) or carries native parts (dockerode's ssh2). The rest (zod, yaml,
 * commander, hono, ...) goes into the bundle: a client verb loads one file of code, not a tree of packages.
 */
const stayImports = (name) => name.startsWith("@aws-sdk/") || ["dynalite", "fauxqs", "@hono/node-server"].includes(name);

/**
 * dockerode is bundled but for what it loads at its top and corral never calls: docker-modem's ssh:// transport
 * (ssh2, whose WebAssembly Poly1305 alone reserves 16 MB) and dockerode's BuildKit session and protocol (gRPC,
 * protobufjs). Each is a stub that requires the real file from dockerode's own install the first time it is
 * called (corral calls none: its DOCKER_HOST is unix:// or tcp://): an idle agent holds ~30 MB less.
 */
const dockerodeOnDemand = {
  "docker-modem/lib/modem.js ./ssh": "docker-modem/lib/ssh.js",
  "dockerode/lib/docker.js ./session": "dockerode/lib/session.js",
  "dockerode/lib/docker.js ./buildkit": "dockerode/lib/buildkit.js",
};
const imported = new Set();
rmSync(outdir, { recursive: true, force: true });
const result = await build({
  // the embedded server's stand-ins run in a worker thread, from a file of their own beside the chunks (where
  // standins.ts, bundled into one of them, looks for it)
  entryPoints: { corral: `${root}packages/cli/src/bin.ts`, "chunks/standins-thread": `${root}packages/local/src/standins-thread.ts` },
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node22",
  splitting: true,
  outdir,
  chunkNames: "chunks/[name]-[hash]",
  sourcemap: "linked",
  metafile: true,
  logLevel: "warning",
  // the bundled CommonJS packages require Node's own modules: an ESM bundle gives them a require
  banner: { js: 'import { createRequire as __corralRequire } from "node:module"; const require = __corralRequire(import.meta.url);' },
  plugins: [
    {
      // commander requires child_process at its top for executable subcommands, which corral has none of; Node's
      // child_process loads dgram, net and more: the bundle's commander gets it the first time it spawns instead
      name: "commander-child-process-on-demand",
      setup(b) {
        b.onResolve({ filter: /^node:child_process$/ }, (args) => (/node_modules\/commander\//.test(args.importer) ? { path: "child_process", namespace: "on-demand" } : undefined));
        b.onLoad({ filter: /.*/, namespace: "on-demand" }, () => ({
          contents: 'let m; module.exports = { spawn: (...a) => (m ??= require("node:child_process")).spawn(...a) };',
          loader: "js",
        }));
      },
    },
    {
      name: "dockerode-extras-on-demand",
      setup(b) {
        b.onResolve({ filter: /^\.\/(ssh|session|buildkit)$/ }, (args) => {
          const from = /node_modules\/((?:docker-modem|dockerode)\/lib\/[a-z]+\.js)$/.exec(args.importer)?.[1];
          const real = from && dockerodeOnDemand[`${from} ${args.path}`];
          return real ? { path: real, namespace: "on-demand-dockerode" } : undefined;
        });
        b.onLoad({ filter: /.*/, namespace: "on-demand-dockerode" }, (args) => ({
          // resolved from dockerode's folder: docker-modem may sit under it rather than beside it
          contents:
            `let m; const load = () => (m ??= require(require.resolve(${JSON.stringify(args.path)}, { paths: [require("node:path").dirname(require.resolve("dockerode"))] })));\n` +
            "module.exports = function (...a) { return load().apply(this, a); };",
          loader: "js",
        }));
      },
    },
    {
      name: "dependencies-stay-imports",
      setup(b) {
        b.onResolve({ filter: /^[^./]/ }, (args) => {
          if (args.path.startsWith("node:") || builtinModules.includes(args.path)) return undefined;
          const name = args.path.startsWith("@") ? args.path.split("/").slice(0, 2).join("/") : args.path.split("/")[0];
          if (!stayImports(name)) return undefined;
          imported.add(name);
          return { path: args.path, external: true };
        });
      },
    },
  ],
});
const standIns = Object.entries(result.metafile.outputs).find(([, out]) => Object.keys(out.inputs).some((i) => i.endsWith("packages/local/src/standins.ts")))?.[0];
if (!standIns?.includes("/chunks/")) {
  console.error(`build: standins.ts was bundled into ${standIns}, not a chunk beside chunks/standins-thread.js: the server could not find its thread`);
  process.exit(1);
}
// `corral --help` as the bundle prints it to a pipe (80 columns): bin/corral.js prints this file without loading the bundle
const { execFileSync } = await import("node:child_process");
const { writeFileSync } = await import("node:fs");
writeFileSync(`${outdir}/help.txt`, execFileSync(process.execPath, [`${outdir}/corral.js`, "--help"], { env: { ...process.env, COLUMNS: "80" }, encoding: "utf8" }));
const missing = [...imported].filter((name) => !pkg.dependencies?.[name]).sort();
if (missing.length > 0) {
  console.error(`build: the bundle imports ${missing.join(", ")}, not among package.json's dependencies (npm pack would install corral without them)`);
  process.exit(1);
}
if (process.env.CORRAL_BUILD_REPORT) {
  for (const [file, out] of Object.entries(result.metafile.outputs)) {
    if (!file.endsWith(".js")) continue;
    const top = Object.entries(out.inputs).sort((a, b) => b[1].bytesInOutput - a[1].bytesInOutput);
    const byPackage = new Map();
    for (const [input, { bytesInOutput }] of top) {
      const key = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input)?.[1] ?? input.split("/").slice(0, 2).join("/");
      byPackage.set(key, (byPackage.get(key) ?? 0) + bytesInOutput);
    }
    console.log(`${file} ${out.bytes}: ${[...byPackage].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, v]) => `${k} ${Math.round(v / 1024)}K`).join(", ")}`);
  }
}
if (process.env.CORRAL_BUILD_WHY) {
  const main = Object.entries(result.metafile.outputs).find(([f]) => f.endsWith("dist/corral.js"))[1];
  const inMain = new Set(Object.keys(main.inputs));
  for (const input of inMain) {
    for (const imp of result.metafile.inputs[input]?.imports ?? []) {
      if (!imp.external && !inMain.has(imp.path) && imp.kind !== "dynamic-import") console.log(`${input} -> ${imp.path}`);
    }
  }
}
