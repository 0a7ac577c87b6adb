/**
 * `npm run bench` (up and rm): the same compose file brought up (`up -d`) and
 * removed through corral, through the Docker Engine API directly (dockerode,
 * same images and options, every container at once: the floor, the engine's
 * own work), through Swarm (`docker stack deploy` of the same file, until
 * every task runs) and through docker compose (Debian's `docker-compose up
 * -d`), interleaved runs.
 *
 * corral is measured through its CLI code (`main`) called in this process, so
 * Node's start-up is not counted (the "CLI start" rows measure it); the server
 * (API, DynamoDB and SQS stand-ins, controller, agent) runs here too, as with
 * `npm start`. Swarm and compose are measured through their own CLIs, as their
 * users type them; the "CLI start" rows give what starting each costs.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "@corral/cli";
import { row, Timings } from "./report.js";
import { benchSetup, composeDown, composeProblem, docker, IMAGE, runsFor, silent, time, tool, until, removeNetwork, RUN, stackRm, type BenchOptions, type BenchPart } from "./support.js";

const PORT_BASE = 60020;

function composeFor(dir: string, n: number): string {
  const services = Array.from({ length: n }, (_, i) => `  s${i}:\n    image: ${IMAGE}\n    ports: ["${PORT_BASE + i}:80"]\n    cap_drop: [ALL]\n    cap_add: [NET_BIND_SERVICE]\n`).join("");
  const file = join(dir, `up-${n}.yml`);
  writeFileSync(file, `services:\n${services}`);
  return file;
}

async function corral(...args: string[]) {
  const code = await main(["node", "corral", ...args], silent);
  if (code !== 0) throw new Error(`corral ${args.join(" ")} failed (${code})`);
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
        HostConfig: { PortBindings: { "80/tcp": [{ HostIp: "", HostPort: String(PORT_BASE + i) }] }, NetworkMode: network, CapDrop: ["ALL"], CapAdd: ["NET_BIND_SERVICE"] },
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
  await removeNetwork(docker, `direct-${stack}`);
}

/** Swarm as its users deploy a compose file: `docker stack deploy`, then its tasks polled until each runs (Swarm has no call that waits). */
async function swarmUp(file: string, n: number, stack: string) {
  await tool("docker", ["stack", "deploy", "-c", file, stack]);
  await until(async () => {
    const tasks = await docker.listTasks({ filters: { label: [`com.docker.stack.namespace=${stack}`] } as never });
    const failed = tasks.find((t) => t.Status?.State === "failed" || t.Status?.State === "rejected");
    if (failed) throw new Error(`swarm task ${failed.Status?.State}: ${failed.Status?.Err ?? ""}`);
    return tasks.filter((t) => t.Status?.State === "running").length >= n;
  }, `every task of ${stack} to run`, 120_000, 20);
}

export async function upBench(o: BenchOptions): Promise<BenchPart> {
  const runs = runsFor(o, 2, 7);
  const sizes = (process.env.BENCH_SIZES ?? (o.quick ? "10" : "2,10,30")).split(",").map(Number);
  const { server, swarm } = await benchSetup("up");
  const noCompose = await composeProblem();
  const dir = mkdtempSync(join(tmpdir(), "corral-bench-up-"));
  const t = new Timings();
  try {
    for (const n of sizes) {
      const file = composeFor(dir, n);
      await corral("up", "-d", "-f", file, "-s", `warm${n}`); // the first run warms caches (modules, JIT, engine)
      await corral("rm", "--type", "stack", `warm${n}`);
      for (let r = 0; r < runs; r++) {
        const stack = `b${RUN}${n}r${r}`;
        t.add(`up ${n}`, "corral", await time(() => corral("up", "-d", "-f", file, "-s", `${stack}c`)));
        t.add(`rm ${n}`, "corral", await time(() => corral("rm", "--type", "stack", `${stack}c`)));
        t.add(`up ${n}`, "direct", await time(() => directUp(n, `${stack}d`)));
        t.add(`rm ${n}`, "direct", await time(() => directRm(`${stack}d`)));
        if (!swarm.problem) {
          t.add(`up ${n}`, "swarm", await time(() => swarmUp(file, n, `${stack}s`)));
          t.add(`rm ${n}`, "swarm", await time(() => stackRm(`${stack}s`)));
        }
        if (!noCompose) {
          t.add(`up ${n}`, "compose", await time(() => tool("docker-compose", ["-p", `${stack}p`, "-f", file, "up", "-d"])));
          t.add(`rm ${n}`, "compose", await time(() => composeDown(`${stack}p`, file)));
        }
      }
    }
  } finally {
    await server.stop();
    await swarm.leave();
    rmSync(dir, { recursive: true, force: true });
  }
  const notes: string[] = [];
  if (swarm.problem) notes.push(`Swarm: not measured (${swarm.problem})`);
  if (noCompose) notes.push(`compose: not measured (${noCompose})`);
  return {
    rows: sizes.flatMap((n) => [
      row("up -d", `${n} services`, "every container running (Swarm: every task running)", t.get(`up ${n}`)),
      row("rm", `${n} services`, "every container and the network gone", t.get(`rm ${n}`)),
    ]),
    notes,
  };
}
