import { execFile } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, realpathSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sitePolicySchema } from "@corral/core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { cleanupStack, composeFile, corral, docker, stackContainers, testServer } from "./support.js";

// Trust boundaries on the real engine: names no two stacks share, and no image steering the agent.
let server: Awaited<ReturnType<typeof testServer>>;
const evil = "corral-evil-label:latest";
const root = realpathSync(mkdtempSync(join(tmpdir(), "corral-trust-")));

/** `docker build` from a Dockerfile on stdin (no context needed). */
const build = (tag: string, dockerfile: string) =>
  new Promise<void>((resolve, reject) => {
    const child = execFile("docker", ["build", "-q", "-t", tag, "-"], (error, _out, stderr) => (error ? reject(new Error(stderr || error.message)) : resolve()));
    child.stdin?.end(dockerfile);
  });

beforeAll(async () => {
  await build(evil, "FROM corral-busybox:latest\nLABEL io.corral.routes=60041:80\n");
  mkdirSync(join(root, "proj"));
  chmodSync(root, 0o755);
  symlinkSync("/", join(root, "proj", "escape"));
  server = await testServer({ policy: sitePolicySchema.parse({ bindRoots: [root] }) });
});
afterAll(async () => {
  await server?.stop();
  for (const stack of ["e2e-tr-b", "e2e-tr", "e2e-evil", "e2e-escape"]) await cleanupStack(stack);
  await docker.getImage(evil).remove({ force: true }).catch(() => {});
});

const sleeper = (service: string) => `
services:
  ${service}:
    image: corral-busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    cap_drop: [ALL]
`;

it("stack e2e-tr-b service c and stack e2e-tr service b-c both run, under different engine names, both shown as e2e-tr-b-c-1", async () => {
  const first = await corral(server, ["up", "-d", "-f", composeFile(sleeper("c")), "-s", "e2e-tr-b"]);
  expect(first.stderr).toBe("");
  const second = await corral(server, ["up", "-d", "-f", composeFile(sleeper("b-c")), "-s", "e2e-tr"]);
  expect(second.stderr).toBe("");
  expect(second.code).toBe(0);
  const engine = [...(await stackContainers("e2e-tr-b")), ...(await stackContainers("e2e-tr"))].map((c) => [c.Names[0], c.Labels["io.corral.stack"], c.State]);
  expect(engine).toEqual([
    ["/e2e-tr-b-c-1", "e2e-tr-b", "running"],
    ["/e2e-tr_b-c-1", "e2e-tr", "running"],
  ]);
  const ps = JSON.parse((await corral(server, ["ps", "--containers", "--format", "json"])).stdout) as Array<{ name: string; docker: string }>;
  expect(ps.filter((r) => r.name === "e2e-tr-b-c-1")).toHaveLength(2);
  // the shared name is refused, naming both; the service, or the engine's name, says which
  const inspect = await corral(server, ["inspect", "e2e-tr-b-c-1"]);
  expect(inspect.code).not.toBe(0);
  expect(inspect.stderr).toContain("the name e2e-tr-b-c-1 fits containers of several stacks: ");
  expect(JSON.parse((await corral(server, ["inspect", "e2e-tr_b-c-1"])).stdout)).toMatchObject({ name: "e2e-tr-b-c-1", stack: "e2e-tr", service: "b-c" });
  const exec = await corral(server, ["exec", "e2e-tr/b-c", "--", "echo", "hi"]);
  expect([exec.code, exec.stdout]).toEqual([0, "hi\n"]);
  // removing one stack leaves the other's container alone
  expect((await corral(server, ["rm", "e2e-tr"])).code).toBe(0);
  expect((await stackContainers("e2e-tr-b")).map((c) => [c.Names[0], c.State])).toEqual([["/e2e-tr-b-c-1", "running"]]);
  expect((await corral(server, ["rm", "e2e-tr-b"])).code).toBe(0);
});

it("an image that carries an io.corral.* label is refused, naming the image and the label, and no container runs", async () => {
  const file = composeFile(`
services:
  web:
    image: ${evil}
    command: ["sleep", "1000"]
    cap_drop: [ALL]
`);
  const up = await corral(server, ["up", "-d", "-f", file, "-s", "e2e-evil"]);
  expect(up.code).not.toBe(0);
  expect(up.stderr).toContain(`image ${evil} carries the label io.corral.routes: io.corral.* labels are corral's own`);
  expect(await stackContainers("e2e-evil")).toEqual([]);
  expect((await docker.listContainers({ all: true, filters: { label: ["io.corral.routes"] } })).filter((c) => c.Image === evil)).toEqual([]);
  expect((await corral(server, ["rm", "e2e-evil"])).code).toBe(0);
});

it("a bind through a symlink inside the root that points at / passes the API's check of the path as written, and the agent refuses it", async () => {
  const escape = join(root, "proj", "escape");
  const file = composeFile(`
services:
  web:
    image: corral-busybox:latest
    command: ["sleep", "1000"]
    user: "1000:1000"
    volumes: ["${escape}:/host:ro"]
    cap_drop: [ALL]
`);
  const up = await corral(server, ["up", "-d", "-f", file, "-s", "e2e-escape"]);
  expect(up.code).not.toBe(0);
  expect(up.stderr).toContain(`bind mount ${escape} (it resolves to /) is not under an allowed root (allowed: ${root}; the root itself is not)`);
  expect(await stackContainers("e2e-escape")).toEqual([]);
  expect((await corral(server, ["rm", "e2e-escape"])).code).toBe(0);
});
