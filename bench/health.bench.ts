/**
 * `npm run bench` (health-gated rollouts): one service of 10 replicas with a
 * health check (interval 1 s, retries 3), upgraded one slot at a time,
 * stop-first (parallelism 1), through corral (`up -d --upgrade`), through
 * Swarm (`docker stack deploy` of the changed file: `service update` at the
 * same settings) and the direct path (a script on the Engine API doing the
 * same, slot after slot, waiting for the engine's health verdict); then an
 * upgrade whose health check fails, rolled back by each (failure_action
 * rollback), timed until the old containers run again. Per slot for the
 * rolling upgrade: the total divided by the replicas (3 with --quick).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "@corral/cli";
import { row, Timings } from "./report.js";
import { benchSetup, docker, IMAGE, runsFor, silent, time, tool, until, removeNetwork, RUN, stackRm, type BenchOptions, type BenchPart } from "./support.js";

/** 10 replicas; 3 for --quick (the per-slot figure is the same measure) */
let REPLICAS = 10;
const HEALTHY = `["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"]`;
const FAILING = `["CMD", "false"]`;

function composeFor(dir: string, version: string, test: string): string {
  const file = join(dir, `health-${version}.yml`);
  writeFileSync(
    file,
    `services:
  web:
    image: ${IMAGE}
    environment: {VERSION: "${version}"}
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
    healthcheck: {test: ${test}, interval: 1s, timeout: 1s, retries: 3}
    deploy:
      replicas: ${REPLICAS}
      update_config: {parallelism: 1, order: stop-first, delay: 0s, failure_action: rollback}
`,
  );
  return file;
}

async function corral(...args: string[]): Promise<number> {
  return main(["node", "corral", ...args], silent);
}
async function corralOk(...args: string[]) {
  const code = await corral(...args);
  if (code !== 0) throw new Error(`corral ${args.join(" ")} failed (${code})`);
}

/**
 * What Docker says of the stack's web containers: how many run with VERSION=version and not unhealthy (the
 * engine may still say starting for up to an interval: corral's own first probe found them healthy).
 */
async function runningOf(label: string, version: string): Promise<number> {
  const list = await docker.listContainers({ filters: { label: [label] } });
  const inspected = await Promise.all(list.map((c) => docker.getContainer(c.Id).inspect()));
  return inspected.filter((i) => i.State.Running && i.State.Health?.Status !== "unhealthy" && i.Config.Env.includes(`VERSION=${version}`)).length;
}

/** The direct path: each slot stopped, renamed, made anew, started and waited for until the engine calls it healthy. */
const healthcheck = (test: string[]) => ({ Test: test, Interval: 1e9, Timeout: 1e9, Retries: 3 });
async function directCreate(stack: string, slot: number, version: string, test: string[]) {
  const c = await docker.createContainer({
    name: `${stack}-web-${slot}`,
    Image: IMAGE,
    Env: [`VERSION=${version}`],
    Labels: { "bench.stack": stack },
    Healthcheck: healthcheck(test),
    HostConfig: { NetworkMode: `direct-${stack}`, CapDrop: ["ALL"], CapAdd: ["NET_BIND_SERVICE"] },
  });
  await c.start();
  await until(async () => (await c.inspect()).State.Health?.Status === "healthy", `${stack}-web-${slot} healthy`, 60_000, 20);
}
async function directUp(stack: string) {
  await docker.createNetwork({ Name: `direct-${stack}`, Driver: "bridge" });
  await Promise.all(Array.from({ length: REPLICAS }, (_, i) => directCreate(stack, i + 1, "1", JSON.parse(HEALTHY) as string[])));
}
async function directRolling(stack: string) {
  for (let slot = 1; slot <= REPLICAS; slot++) {
    const old = docker.getContainer(`${stack}-web-${slot}`);
    await old.stop();
    await old.rename({ name: `${stack}-web-${slot}-old` });
    await directCreate(stack, slot, "2", JSON.parse(HEALTHY) as string[]);
    await docker.getContainer(`${stack}-web-${slot}-old`).remove({ force: true });
  }
}
async function directRm(stack: string) {
  const list = await docker.listContainers({ all: true, filters: { label: [`bench.stack=${stack}`] } });
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true })));
  await removeNetwork(docker, `direct-${stack}`);
}

/** Swarm: `docker stack deploy` of the file, then its tasks polled until `want` run with VERSION=version (Swarm counts a task running once healthy). */
async function swarmDeploy(file: string, stack: string, version: string, until_: (svc: { UpdateStatus?: { State?: string } }) => boolean = () => true) {
  await tool("docker", ["stack", "deploy", "-c", file, stack]);
  await until(async () => {
    const [svc] = await docker.listServices({ filters: { label: [`com.docker.stack.namespace=${stack}`] } });
    if (!svc || !until_(svc as never)) return false;
    const tasks = await docker.listTasks({ filters: { label: [`com.docker.stack.namespace=${stack}`], "desired-state": ["running"] } as never });
    return tasks.filter((t) => t.Status?.State === "running" && t.Spec?.ContainerSpec?.Env?.includes(`VERSION=${version}`)).length >= REPLICAS;
  }, `every task of ${stack} running VERSION=${version}`, 180_000, 50);
}

export async function healthBench(o: BenchOptions): Promise<BenchPart> {
  const runs = runsFor(o, 1, 3);
  REPLICAS = o.quick ? 3 : 10;
  const { server, swarm } = await benchSetup("health");
  const dir = mkdtempSync(join(tmpdir(), "corral-bench-health-"));
  const [v1, v2, bad] = [composeFor(dir, "1", HEALTHY), composeFor(dir, "2", HEALTHY), composeFor(dir, "3", FAILING)];
  const t = new Timings();
  const perSlot = (ms: number) => ms / REPLICAS;
  try {
    for (let r = 0; r < runs; r++) {
      const stack = `h${RUN}${r}`;
      // corral: a rolling upgrade, then a failing one rolled back
      await corralOk("up", "-d", "-f", v1, "-s", `${stack}c`);
      t.add("rolling", "corral", perSlot(await time(() => corralOk("up", "-d", "--upgrade", "-f", v2, "-s", `${stack}c`))));
      await corralOk("up", "-d", "--confirm-upgrade", "-s", `${stack}c`);
      let code = 0;
      t.add("failing", "corral", await time(async () => (code = await corral("up", "-d", "--upgrade", "-f", bad, "-s", `${stack}c`))));
      if (code === 0) throw new Error("corral: the upgrade to a failing health check did not fail");
      if ((await runningOf(`io.corral.stack=${stack}c`, "2")) !== REPLICAS) throw new Error("corral: the old containers do not all run after the rollback");
      await corralOk("rm", "--type", "stack", `${stack}c`);
      // direct
      await directUp(`${stack}d`);
      t.add("rolling", "direct", perSlot(await time(() => directRolling(`${stack}d`))));
      await directRm(`${stack}d`);
      if (!swarm.problem) {
        await swarmDeploy(v1, `${stack}s`, "1");
        t.add("rolling", "swarm", perSlot(await time(() => swarmDeploy(v2, `${stack}s`, "2", (s) => s.UpdateStatus?.State === "completed"))));
        t.add("failing", "swarm", await time(() => swarmDeploy(bad, `${stack}s`, "2", (s) => s.UpdateStatus?.State === "rollback_completed")));
        await stackRm(`${stack}s`);
      }
    }
  } finally {
    await server.stop();
    await swarm.leave();
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    rows: [
      row("rolling upgrade, health-gated", `${REPLICAS} replicas, per slot`, "each slot's new container healthy (interval 1 s) before the next is stopped; parallelism 1, stop-first", t.get("rolling")),
      row("failed upgrade rolled back", `${REPLICAS} replicas`, "the first new container unhealthy (retries 3 × interval 1 s), the old one running healthy again (failure_action rollback)", t.get("failing")),
    ],
    notes: swarm.problem ? [`Swarm: not measured (${swarm.problem})`] : [],
  };
}
