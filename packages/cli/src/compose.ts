import { existsSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import type { NamedDocument } from "@corral/core";
import { CliError } from "./client.js";

// The compose files `up` sends: found, read and interpolated here, where the environment is.

/** The stack name from a folder name, as Rancher did: lower case, other characters as '-'. */
export function stackNameFromDir(dir: string): string {
  return basename(dir).toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "") || "default";
}

const composeNames = ["docker-compose.yml", "docker-compose.yaml", "compose.yaml", "compose.yml"];

/** The compose file in this folder, if there is one (confirm and rollback do without). */
export function defaultComposeFile(): string[] {
  for (const f of composeNames) if (existsSync(f)) return [f];
  return [];
}

export function composeFiles(files: string[] | undefined): string[] {
  if (files && files.length > 0) return files;
  for (const f of composeNames) if (existsSync(f)) return [f];
  throw new CliError("no compose file: pass -f FILE, or run in a folder with a docker-compose.yml");
}

/** `-f DIR` names the compose file in that folder (the Spin lessons keep one example per folder); its rancher-compose.yml is found beside it. */
function composeFileIn(path: string): string {
  if (!existsSync(path) || !statSync(path).isDirectory()) return path;
  const found = composeNames.map((f) => join(path, f)).find((f) => existsSync(f));
  if (!found) throw new CliError(`${path}: a folder with no compose file in it (looked for ${composeNames.join(", ")})`);
  return found;
}

/** A file's text; undefined when there is no such file. */
export function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

/** Read, interpolate and resolve the compose files here, where the environment is; the API gets documents only. */
export async function loadComposeFiles(given: string[], rancherFile: string | undefined, env = process.env): Promise<{ files: NamedDocument[]; rancher?: NamedDocument }> {
  // the compose reader (YAML, interpolation) is loaded by the verbs that read files, not with the CLI
  const { parseComposeYaml, resolveComposeFiles } = await import("@corral/core");
  const files = given.map(composeFileIn);
  const sources = files.map((name) => {
    const text = readText(name);
    if (text === undefined) throw new CliError(`${name}: no such file`);
    return { name: basename(name), path: resolve(name), text };
  });
  const documents = resolveComposeFiles({ files: sources, env, home: homedir(), readFile: readText });
  const rancherPath = rancherFile ?? join(dirname(resolve(files[0]!)), "rancher-compose.yml");
  const rancherText = readText(rancherPath);
  if (rancherFile && rancherText === undefined) throw new CliError(`${rancherFile}: no such file`);
  if (rancherText === undefined) return { files: documents };
  return { files: documents, rancher: { name: basename(rancherPath), document: parseComposeYaml(rancherText, basename(rancherPath)) } };
}

/** A top-level secret whose value the CLI holds, and where it comes from. */
export interface SecretSource {
  name: string;
  from: string;
  read: () => Buffer;
}

type TopLevelSecrets = Record<string, { name?: string; file?: string; environment?: string } | null>;

/** Top-level secrets whose value the CLI holds: a file, or a variable of its environment. */
export function secretSources(files: NamedDocument[], env = process.env): SecretSource[] {
  const out = new Map<string, SecretSource>();
  for (const f of files) {
    const secrets = (f.document as { secrets?: TopLevelSecrets } | null)?.secrets ?? {};
    for (const [key, s] of Object.entries(secrets)) {
      const name = s?.name ?? key;
      if (s?.file) {
        const path = s.file;
        out.set(name, { name, from: `file ${path}`, read: () => readFileSync(path) });
      } else if (s?.environment) {
        const variable = s.environment;
        out.set(name, {
          name,
          from: `variable ${variable}`,
          read: () => {
            const v = env[variable];
            if (v === undefined) throw new CliError(`${f.name}: secrets.${key}.environment: variable ${variable} is not set`);
            return Buffer.from(v);
          },
        });
      }
    }
  }
  return [...out.values()];
}
