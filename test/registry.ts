import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type Docker from "dockerode";

const run = promisify(execFile);

/**
 * A private registry for the tests: Debian's docker-registry (distribution
 * 2.x) on ADDRESS:a free port, plain HTTP (engines take 127.0.0.0/8 as
 * insecure; the fleet's engines 198.18.0.0/15), logins from an htpasswd
 * file (bcrypt), storage in a temp folder. Started and stopped by the test.
 */
export interface TestRegistry {
  /** host:port, as images name it. */
  server: string;
  stop(): Promise<void>;
}

/** Why no test registry can run here, or undefined when one can. */
export async function registryUnavailable(): Promise<string | undefined> {
  for (const tool of ["docker-registry", "htpasswd"]) {
    try {
      await run("sh", ["-c", `command -v ${tool}`]);
    } catch {
      return `${tool} is not installed (apt-get install docker-registry apache2-utils)`;
    }
  }
  return undefined;
}

/** A port nobody listens on at `address`, to listen on next. */
export const freePort = (address: string) =>
  new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, address, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

/** `notify`: a URL the registry posts its notification envelopes to (pushes, pulls), as a registry configured for webhooks does. */
export async function startRegistry(address: string, users: Record<string, string>, options: { notify?: string } = {}): Promise<TestRegistry> {
  const dir = mkdtempSync(join(tmpdir(), "corral-registry-"));
  const lines: string[] = [];
  for (const [user, password] of Object.entries(users)) lines.push((await run("htpasswd", ["-Bbn", user, password])).stdout.trim());
  writeFileSync(join(dir, "htpasswd"), `${lines.join("\n")}\n`);
  const port = await freePort(address);
  const server = `${address}:${port}`;
  writeFileSync(
    join(dir, "config.yml"),
    [
      "version: 0.1",
      "log: {level: warn}",
      "storage:",
      `  filesystem: {rootdirectory: ${join(dir, "data")}}`,
      "  delete: {enabled: true}",
      "http:",
      `  addr: ${server}`,
      "auth:",
      `  htpasswd: {realm: corral-test, path: ${join(dir, "htpasswd")}}`,
      ...(options.notify ? ["notifications:", "  endpoints:", "    - name: corral", `      url: ${options.notify}`, "      timeout: 3s", "      threshold: 5", "      backoff: 1s"] : []),
      "",
    ].join("\n"),
  );
  let log = "";
  const child: ChildProcess = spawn("docker-registry", ["serve", join(dir, "config.yml")], { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.on("data", (d: Buffer) => (log += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  // up once /v2/ asks for a login
  for (let i = 0; ; i++) {
    const status = await fetch(`http://${server}/v2/`).then((r) => r.status).catch(() => 0);
    if (status === 401) break;
    if (i > 100 || child.exitCode !== null) {
      child.kill("SIGKILL");
      throw new Error(`docker-registry did not answer on ${server}: ${log.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    server,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const follow = (engine: Docker, stream: NodeJS.ReadableStream) =>
  new Promise<void>((resolve, reject) =>
    engine.modem.followProgress(stream, (err: Error | null, out: Array<{ error?: string }>) => {
      const failed = out.find((o) => o.error);
      return err ? reject(err) : failed ? reject(new Error(failed.error)) : resolve();
    }),
  );

/** Tag an image of `engine` as `ref` and push it with a login; then drop the tag there, so that a run must pull it. */
export async function pushImage(engine: Docker, from: string, ref: string, auth: { username: string; password: string; serveraddress: string }): Promise<void> {
  const at = ref.lastIndexOf(":");
  await engine.getImage(from).tag({ repo: ref.slice(0, at), tag: ref.slice(at + 1) });
  await follow(engine, await engine.getImage(ref).push({ authconfig: auth }));
  await engine.getImage(ref).remove();
}

/** Drop an image from an engine (its tag; a running container keeps its layers), if it is there. */
export async function dropImage(engine: Docker, ref: string): Promise<void> {
  await engine
    .getImage(ref)
    .remove({ force: true })
    .catch((e: { statusCode?: number }) => {
      if (e.statusCode !== 404) throw e;
    });
}
