import { afterAll, beforeAll, expect, it } from "vitest";
import { stderrLogger } from "@corral/local";
import { cleanupStack, composeFile, corral, docker, eventually, stackContainers, testServer } from "./support.js";

// The agent reconciles its host against what the control plane wants: corral containers nobody wants go after a grace
// period, never a container without corral's labels (nor another control plane's); a wanted one that dies is reported.
const STACK = "e2e-reconcile";
const GRACE_MS = 4_000;
const suffix = Date.now().toString(36);
const ghost = `${STACK}-ghost-1`;
const plain = `e2e-reconcile-plain-${suffix}`;
const foreign = `e2e-reconcile-foreign-${suffix}`;
let server: Awaited<ReturnType<typeof testServer>>;

const exists = async (name: string) => (await docker.listContainers({ all: true, filters: { name: [`^/${name}$`] } })).length > 0;

async function run(name: string, labels: Record<string, string>): Promise<void> {
  const c = await docker.createContainer({ name, Image: "corral-busybox:latest", Cmd: ["sleep", "300"], Labels: labels, HostConfig: { CapDrop: ["ALL"] } });
  await c.start();
}

interface Row {
  name: string;
  state: string;
  docker: string;
  detail: string;
}
const rows = async () => JSON.parse((await corral(server, ["ps", STACK, "--all", "--containers", "--format", "json"])).stdout) as Row[];

beforeAll(async () => {
  server = await testServer({ reconcileMs: 500, orphanGraceMs: GRACE_MS, tickMs: 500, ...(process.env.CORRAL_TEST_LOG ? { log: stderrLogger("debug") } : {}) });
});
afterAll(async () => {
  await server?.stop();
  for (const name of [plain, foreign, ghost]) await docker.getContainer(name).remove({ force: true }).catch(() => {});
  await cleanupStack(STACK);
});

it("removes a corral container nobody wants after the grace period, never before; leaves unlabelled ones, another control plane's, and the stack's own", async () => {
  const file = composeFile(`services:\n  app:\n    image: corral-busybox:latest\n    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]\n    cap_drop: [ALL]\n`);
  const up = await corral(server, ["up", "-d", "-f", file, "-s", STACK]);
  expect(up.stderr).toBe("");
  expect(up.code).toBe(0);
  const [own] = await stackContainers(STACK);
  expect(own?.State).toBe("running");
  const corralLabels = Object.fromEntries(Object.entries(own!.Labels).filter(([k]) => k.startsWith("io.corral.")));
  // the agent labels what it makes with its host and its control plane
  expect(corralLabels).toMatchObject({ "io.corral.stack": STACK, "io.corral.host": "test-host", "io.corral.control": expect.stringMatching(/^[0-9a-f]{16}$/) as unknown });

  // (a) a container that looks like one of this stack's, under a name nobody wants; (b) one without corral's labels;
  // (c) one of the stack's name made by another control plane's agent (its io.corral.control differs)
  const made = Date.now();
  await run(ghost, { ...corralLabels, "io.corral.step": `${STACK}.ghost.create` });
  await run(plain, { purpose: "not corral's" });
  await run(foreign, { ...corralLabels, "io.corral.control": "0000000000000000" });

  // not before the grace period: several reconcile rounds go by while it stays
  await new Promise((r) => setTimeout(r, GRACE_MS - 1_500));
  expect(await exists(ghost)).toBe(true);
  await eventually(async () => !(await exists(ghost)), 20_000, 100);
  expect(Date.now() - made).toBeGreaterThanOrEqual(GRACE_MS);

  // a few rounds more: the others are all still there
  await new Promise((r) => setTimeout(r, 1_500));
  expect(await exists(plain)).toBe(true);
  expect(await exists(foreign)).toBe(true);
  const after = await stackContainers(STACK);
  expect(after.find((c) => c.Id === own!.Id)?.State).toBe("running");
  expect((await rows()).map((r) => `${r.name} ${r.state}`)).toEqual([`${STACK}-app-1 running`]);
});

it("a stack container whose process is killed shows stopped, with its exit code; a start makes it run again", async () => {
  const own = (await stackContainers(STACK)).find((c) => c.Names[0] === `/${STACK}-app-1`);
  expect(own).toBeDefined();
  await docker.getContainer(own!.Id).kill();
  await eventually(async () => (await rows()).some((r) => r.docker === own!.Id && r.state !== "running"), 20_000, 200);
  expect(await rows()).toEqual([expect.objectContaining({ name: `${STACK}-app-1`, state: "stopped", docker: own!.Id, detail: "exited with code 137" })]);
  // the reconcile leaves a wanted container alone, exited or not
  await new Promise((r) => setTimeout(r, GRACE_MS + 1_000));
  expect(await exists(`${STACK}-app-1`)).toBe(true);

  const start = await corral(server, ["start", STACK]);
  expect(start.stderr).toBe("");
  expect(start.code).toBe(0);
  await eventually(async () => (await rows()).some((r) => r.state === "running"), 20_000, 200);
  expect(await rows()).toEqual([expect.objectContaining({ name: `${STACK}-app-1`, state: "running", docker: own!.Id, detail: "" })]);
});

it("a stop by corral is not reported as an exit", async () => {
  const stop = await corral(server, ["stop", STACK]);
  expect(stop.code).toBe(0);
  await new Promise((r) => setTimeout(r, 1_500));
  expect(await rows()).toEqual([expect.objectContaining({ name: `${STACK}-app-1`, state: "stopped", detail: "" })]);
  expect((await corral(server, ["rm", STACK])).code).toBe(0);
  expect(await stackContainers(STACK).then((l) => l.filter((c) => c.Names[0] !== `/${foreign}`))).toEqual([]);
});
