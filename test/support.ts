import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Docker from "dockerode";
import { dockerOptions } from "@corral/agent";
import { startServer, type RunningServer, type ServerOptions } from "@corral/local";

export const repoRoot = fileURLToPath(new URL("..", import.meta.url));
export const cliBin = join(repoRoot, "packages/cli/bin/corral.js");
export const docker = new Docker(dockerOptions());

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Start a corral server in this process, on a fresh data dir and a free port. */
export async function testServer(options: Partial<ServerOptions> = {}): Promise<RunningServer & { dataDir: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), "corral-test-"));
  const server = await startServer({ port: 0, dataDir, hostId: "test-host", ...options });
  return { ...server, dataDir };
}

/** Run the `corral` CLI as a user would, against `server`. */
export function corral(server: { url: string; token: string }, args: string[], cwd = repoRoot, input?: string, env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [cliBin, ...args],
      { cwd, env: { ...process.env, CORRAL_URL: server.url, CORRAL_TOKEN: server.token, ...env }, timeout: 110_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Where the agents this test file spawns keep their host credentials (not the machine's /var/lib/corral/agent). */
export const agentStateDir = mkdtempSync(join(tmpdir(), "corral-agent-state-"));

/** Spawn a long-running `corral` process (an agent, a follow) against `server`, to read it as it goes and stop it for real. */
export function spawnCorral(server: { url: string; token: string }, args: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, [cliBin, ...args], {
    // agents here run in the test machine's own network namespace: no overlay of theirs on it (test/fleet.ts's
    // spawnAgentInside runs them inside the hosts' namespaces, where the default, auto, makes it)
    env: { ...process.env, CORRAL_URL: server.url, CORRAL_TOKEN: server.token, CORRAL_AGENT_STATE: agentStateDir, CORRAL_OVERLAY: "off", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stderr?.on("data", () => {});
  return child;
}

/** Spawn a `corral agent` process (to kill it for real). */
export const spawnAgent = (server: { url: string; token: string }, hostId: string, env: Record<string, string> = {}): ChildProcess =>
  spawnCorral(server, ["agent", "--host-id", hostId], env);

/**
 * A following command (`logs -f`, `events -f`): what it has printed so far,
 * waiting for a text (at most 5 s; from an offset, to look only at what came
 * after it), and Ctrl-C with its exit code.
 */
export function follow(server: { url: string; token: string }, args: string[]) {
  const child = spawnCorral(server, args);
  let seen = "";
  child.stdout?.on("data", (d: Buffer) => (seen += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return {
    get seen() {
      return seen;
    },
    async until(text: string, from = 0): Promise<string> {
      for (let i = 0; i < 100 && !seen.slice(from).includes(text); i++) await new Promise((r) => setTimeout(r, 50));
      return seen.slice(from);
    },
    interrupt(): Promise<number | null> {
      child.kill("SIGINT");
      return exited;
    },
  };
}

/** Resolves when the child's stdout contains `text`. */
export function outputContains(child: ChildProcess, text: string, ms = 30_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`timed out waiting for "${text}"; saw: ${seen}`)), ms);
    child.stdout?.on("data", (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes(text)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

/** Containers on the engine that carry a stack's label. */
export async function stackContainers(stack: string) {
  return docker.listContainers({ all: true, filters: { label: [`io.corral.stack=${stack}`] } });
}

/** Remove whatever a test left of a stack on the engine. */
export async function cleanupStack(stack: string): Promise<void> {
  for (const c of await stackContainers(stack)) await docker.getContainer(c.Id).remove({ force: true }).catch(() => {});
  await docker.getNetwork(`corral-${stack}`).remove().catch(() => {});
}

/** Write a compose file into a fresh folder; returns its path. */
export function composeFile(yaml: string, name = "docker-compose.yml"): string {
  const dir = mkdtempSync(join(tmpdir(), "corral-compose-"));
  const file = join(dir, name);
  writeFileSync(file, yaml);
  return file;
}

/** Poll `check` until it returns true (test helper only; never on corral's own path). */
export async function eventually(check: () => Promise<boolean>, ms = 30_000, every = 100): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, every));
  }
  throw new Error("condition not met in time");
}

export async function httpGet(url: string): Promise<string> {
  const res = await fetch(url);
  return res.text();
}

/** Run a command in a container, as `docker exec` does; its stdout (demultiplexed). */
export async function execIn(container: string, cmd: string[], user?: string): Promise<string> {
  const exec = await docker.getContainer(container).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true, ...(user ? { User: user } : {}) });
  const stream = await exec.start({});
  const { PassThrough } = await import("node:stream");
  const out = new PassThrough();
  let text = "";
  out.on("data", (d: Buffer) => (text += d.toString()));
  docker.modem.demuxStream(stream, out, new PassThrough());
  await new Promise((resolve) => stream.on("end", resolve));
  return text;
}
