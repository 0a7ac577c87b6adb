/**
 * `npm run bench`: bring the same stack up and remove it through corral, the
 * Docker Engine API directly (dockerode, same images, same parallelism), and
 * Docker Swarm (when the engine can be a single-node swarm), several runs each,
 * interleaved; prints the median of each and the ratios to the direct path.
 *
 * corral is measured through its CLI code (`up -d`, `rm`) called in this
 * process, so Node's and tsx's start-up are not counted; the server (API,
 * DynamoDB and SQS stand-ins, controller, agent) runs here too, as with
 * `npm start`.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { benchSetup, docker, IMAGE, median, silent, time } from "./support.js";
import { main } from "@corral/cli";

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const SIZES = (process.env.BENCH_SIZES ?? "2,10").split(",").map(Number);


function composeFor(n: number): string {
  const services = Array.from({ length: n }, (_, i) => `  s${i}:\n    image: ${IMAGE}\n    ports: ["${60020 + i}:80"]\n    cap_drop: [ALL]\n    cap_add: [NET_BIND_SERVICE]\n`).join("");
  const dir = mkdtempSync(join(tmpdir(), "corral-bench-"));
  const file = join(dir, "docker-compose.yml");
  writeFileSync(file, `services:\n${services}`);
  return file;
}

async function corralUp(file: string, stack: string) {
  const code = await main(["node", "corral", "up", "-d", "-f", file, "-s", stack], silent);
  if (code !== 0) throw new Error(`corral up failed (${code})`);
}
async function corralRm(stack: string) {
  const code = await main(["node", "corral", "rm", "--type", "stack", stack], silent);
  if (code !== 0) throw new Error(`corral rm failed (${code})`);
}

/** The direct path: what corral asks of the engine, straight through dockerode, all services in parallel. */
async function directUp(n: number, stack: string) {
  const network = `direct-${stack}`;
  await docker.createNetwork({ Name: network, Driver: "bridge" });
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      await docker.getImage(IMAGE).inspect();
      const c = await docker.createContainer({
        name: `${stack}-s${i}-1`,
        Image: IMAGE,
        Labels: { "bench.stack": stack },
        ExposedPorts: { "80/tcp": {} },
        HostConfig: { PortBindings: { "80/tcp": [{ HostIp: "", HostPort: String(60020 + i) }] }, NetworkMode: network, CapDrop: ["ALL"], CapAdd: ["NET_BIND_SERVICE"] },
        NetworkingConfig: { EndpointsConfig: { [network]: { Aliases: [`s${i}`] } } },
      });
      await c.start();
      await c.inspect();
    }),
  );
}
async function directRm(stack: string) {
  const list = await docker.listContainers({ all: true, filters: { label: [`bench.stack=${stack}`] } });
  await Promise.all(
    list.map(async (c) => {
      const container = docker.getContainer(c.Id);
      await container.stop({ t: 10 }).catch(() => {});
      await container.remove({ force: true, v: true });
    }),
  );
  await docker.getNetwork(`direct-${stack}`).remove();
}

/** Swarm: services with the same image and ports; settled when every task runs. */
async function swarmUp(n: number, stack: string) {
  const ids = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const s = await docker.createService({
        Name: `${stack}-s${i}`,
        Labels: { "bench.stack": stack },
        TaskTemplate: { ContainerSpec: { Image: IMAGE }, RestartPolicy: { Condition: "none" } },
        Mode: { Replicated: { Replicas: 1 } },
        EndpointSpec: { Ports: [{ Protocol: "tcp", TargetPort: 80, PublishedPort: 60020 + i, PublishMode: "host" }] },
      });
      return (s as { id?: string; ID?: string }).id ?? (s as { ID: string }).ID;
    }),
  );
  // Swarm has no "wait until running" call: poll its tasks, as `docker stack deploy` users do
  for (;;) {
    const tasks = await docker.listTasks({ filters: { label: [`bench.stack=${stack}`] } as never });
    const running = ids.filter((id) => tasks.some((t) => t.ServiceID === id && t.Status?.State === "running"));
    const failed = tasks.find((t) => t.Status?.State === "failed" || t.Status?.State === "rejected");
    if (failed) throw new Error(`swarm task ${failed.Status?.State}: ${failed.Status?.Err ?? ""}`);
    if (running.length === ids.length) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}
async function swarmRm(stack: string) {
  const services = await docker.listServices({ filters: { label: [`bench.stack=${stack}`] } });
  await Promise.all(services.map((s) => docker.getService(s.ID).remove()));
  for (;;) {
    const left = await docker.listContainers({ all: true, filters: { label: [`com.docker.swarm.service.name`] } });
    if (!left.some((c) => c.Labels["com.docker.swarm.service.name"]?.startsWith(stack))) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function run() {
  const { server, swarm } = await benchSetup("up");
  const swarmProblem = swarm.problem;

  const rows: string[] = [];
  try {
    for (const n of SIZES) {
      const file = composeFor(n);
      const t: Record<string, number[]> = { corralUp: [], corralRm: [], directUp: [], directRm: [], swarmUp: [], swarmRm: [] };
      await corralUp(file, `warm${n}`); // first run warms caches (modules, JIT, engine)
      await corralRm(`warm${n}`);
      for (let r = 0; r < RUNS; r++) {
        const stack = `b${n}r${r}`;
        t.corralUp!.push(await time(() => corralUp(file, `${stack}c`)));
        t.corralRm!.push(await time(() => corralRm(`${stack}c`)));
        t.directUp!.push(await time(() => directUp(n, `${stack}d`)));
        t.directRm!.push(await time(() => directRm(`${stack}d`)));
        if (!swarmProblem) {
          t.swarmUp!.push(await time(() => swarmUp(n, `${stack}s`)));
          t.swarmRm!.push(await time(() => swarmRm(`${stack}s`)));
        }
      }
      const m = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.length ? median(v) : NaN]));
      const fmt = (ms: number) => (Number.isNaN(ms) ? "   n/a" : `${ms.toFixed(0).padStart(6)}`);
      const ratio = (a: number, b: number) => (Number.isNaN(a) ? "  n/a" : `${(a / b).toFixed(2)}x`);
      rows.push(
        `${String(n).padStart(2)} services  up: corral ${fmt(m.corralUp!)} ms  direct ${fmt(m.directUp!)} ms  swarm ${fmt(m.swarmUp!)} ms  corral/direct ${ratio(m.corralUp!, m.directUp!)}  swarm/direct ${ratio(m.swarmUp!, m.directUp!)}`,
        `            rm: corral ${fmt(m.corralRm!)} ms  direct ${fmt(m.directRm!)} ms  swarm ${fmt(m.swarmRm!)} ms  corral/direct ${ratio(m.corralRm!, m.directRm!)}  swarm/direct ${ratio(m.swarmRm!, m.directRm!)}`,
      );
    }
  } finally {
    await server.stop();
    await swarm.leave();
  }
  console.log(`\ncorral bench: medians of ${RUNS} interleaved runs (Docker ${(await docker.version()).Version})`);
  if (swarmProblem) console.log(`swarm: not measured (${swarmProblem})`);
  for (const r of rows) console.log(r);
}

run().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
