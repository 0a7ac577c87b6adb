/**
 * `npm run bench` (second part): upgrade then confirm, and upgrade then
 * rollback, of a 3-service stack and of a 10-replica service, through corral
 * and through the Docker Engine API directly (the same stops, renames,
 * creates, starts and removes, all slots at once), and the upgrade through
 * Docker Swarm (`service update`, same parallelism, stop-first, and `service
 * rollback`; Swarm has no confirm) when the engine
 * can be a single-node swarm, and docker compose's `up -d` of the changed file.
 * Interleaved runs.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "@corral/cli";
import { row, Timings, type Tool } from "./report.js";
import { benchSetup, composeDown, composeProblem, docker, IMAGE, runsFor, silent, time, tool, removeNetwork, RUN, type BenchOptions, type BenchPart } from "./support.js";


interface Shape {
  name: string;
  /** service → replicas */
  services: Record<string, number>;
}
const shapes: Shape[] = [
  { name: "3 services", services: { a: 1, b: 1, c: 1 } },
  { name: "10 replicas", services: { web: 10 } },
];

function composeFor(shape: Shape, version: string): string {
  const dir = mkdtempSync(join(tmpdir(), "corral-bench-up-"));
  const file = join(dir, "docker-compose.yml");
  const services = Object.entries(shape.services)
    .map(([n, scale]) => `  ${n}:\n    image: ${IMAGE}\n    scale: ${scale}\n    environment: {VERSION: "${version}"}\n    cap_drop: [ALL]\n    cap_add: [NET_BIND_SERVICE]\n`)
    .join("");
  writeFileSync(file, `services:\n${services}`);
  return file;
}

async function cli(args: string[]) {
  const code = await main(["node", "corral", ...args], silent);
  if (code !== 0) throw new Error(`corral ${args.join(" ")} failed (${code})`);
}

const slots = (shape: Shape) => Object.entries(shape.services).flatMap(([n, scale]) => Array.from({ length: scale }, (_, i) => ({ service: n, slot: i + 1 })));

/** The direct path: what corral asks of the engine, straight through dockerode, every slot at once. */
async function directCreate(stack: string, service: string, slot: number, version: string) {
  const c = await docker.createContainer({
    name: `${stack}-${service}-${slot}`,
    Image: IMAGE,
    Env: [`VERSION=${version}`],
    Labels: { "bench.stack": stack },
    HostConfig: { NetworkMode: `direct-${stack}`, CapDrop: ["ALL"], CapAdd: ["NET_BIND_SERVICE"] },
    NetworkingConfig: { EndpointsConfig: { [`direct-${stack}`]: { Aliases: [service] } } },
  });
  await c.start();
}
async function directUp(shape: Shape, stack: string) {
  await docker.createNetwork({ Name: `direct-${stack}`, Driver: "bridge", CheckDuplicate: true });
  await Promise.all(slots(shape).map(({ service, slot }) => directCreate(stack, service, slot, "1")));
}
async function directUpgrade(shape: Shape, stack: string, version: string) {
  await Promise.all(
    slots(shape).map(async ({ service, slot }) => {
      const old = docker.getContainer(`${stack}-${service}-${slot}`);
      await old.stop();
      await old.rename({ name: `${stack}-${service}-${slot}-r1` });
      await directCreate(stack, service, slot, version);
    }),
  );
}
async function directConfirm(shape: Shape, stack: string) {
  await Promise.all(slots(shape).map(({ service, slot }) => docker.getContainer(`${stack}-${service}-${slot}-r1`).remove({ force: true })));
}
async function directRollback(shape: Shape, stack: string) {
  await Promise.all(
    slots(shape).map(async ({ service, slot }) => {
      const name = `${stack}-${service}-${slot}`;
      await docker.getContainer(name).stop();
      await docker.getContainer(name).remove({ force: true });
      await docker.getContainer(`${name}-r1`).rename({ name });
      await docker.getContainer(name).start(); // the handle follows the name
    }),
  );
}
async function directRm(stack: string) {
  const list = await docker.listContainers({ all: true, filters: { label: [`bench.stack=${stack}`] } });
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true })));
  await removeNetwork(docker, `direct-${stack}`);
}

/** Swarm: the same services, updated with the same parallelism, stop-first; settled when every task runs the new spec. */
async function swarmUp(shape: Shape, stack: string) {
  await Promise.all(
    Object.entries(shape.services).map(([n, scale]) =>
      docker.createService({
        Name: `${stack}-${n}`,
        Labels: { "bench.stack": stack },
        TaskTemplate: { ContainerSpec: { Image: IMAGE, Env: ["VERSION=1"] }, RestartPolicy: { Condition: "none" } },
        Mode: { Replicated: { Replicas: scale } },
        UpdateConfig: { Parallelism: scale, Order: "stop-first", Delay: 0, Monitor: 0, FailureAction: "pause" },
        RollbackConfig: { Parallelism: scale, Order: "stop-first", Delay: 0, Monitor: 0, FailureAction: "pause" },
      }),
    ),
  );
  await swarmSettled(stack, "1");
}
async function swarmUpgrade(shape: Shape, stack: string, version: string) {
  await Promise.all(
    Object.keys(shape.services).map(async (n) => {
      const service = docker.getService(`${stack}-${n}`);
      const info = await service.inspect();
      const spec = info.Spec;
      spec.TaskTemplate.ContainerSpec.Env = [`VERSION=${version}`];
      await service.update({ ...spec, version: info.Version.Index });
    }),
  );
  await swarmSettled(stack, version);
}
/** `docker service rollback`: every service back to its previous spec, with the same parallelism. */
async function swarmRollback(shape: Shape, stack: string) {
  await Promise.all(
    Object.keys(shape.services).map(async (n) => {
      const service = docker.getService(`${stack}-${n}`);
      const info = await service.inspect();
      await new Promise((resolve, reject) =>
        docker.modem.dial(
          { path: `/services/${info.ID}/update?`, method: "POST", options: { _query: { version: info.Version.Index, rollback: "previous" }, _body: info.Spec }, statusCodes: { 200: true, 400: "bad parameter", 404: "no such service", 500: "server error", 503: "node is not part of a swarm" } },
          (err: unknown, data: unknown) => (err ? reject(err) : resolve(data)),
        ),
      );
    }),
  );
  await swarmSettled(stack, "1");
}
async function swarmSettled(stack: string, version: string) {
  for (;;) {
    const services = await docker.listServices({ filters: { label: [`bench.stack=${stack}`] } });
    const tasks = await docker.listTasks({ filters: { label: [`bench.stack=${stack}`] } as never });
    const want = services.reduce((n, s) => n + (s.Spec?.Mode?.Replicated?.Replicas ?? 0), 0);
    const running = tasks.filter((t) => t.Status?.State === "running" && t.Spec?.ContainerSpec?.Env?.includes(`VERSION=${version}`));
    if (running.length >= want) return;
    await new Promise((r) => setTimeout(r, 20)); // Swarm has no wait call: poll it, as its users do
  }
}
async function swarmRm(stack: string) {
  const services = await docker.listServices({ filters: { label: [`bench.stack=${stack}`] } });
  await Promise.all(services.map((s) => docker.getService(s.ID).remove()));
  for (;;) {
    const left = await docker.listContainers({ all: true, filters: { label: ["com.docker.swarm.service.name"] } });
    if (!left.some((c) => c.Labels["com.docker.swarm.service.name"]?.startsWith(stack))) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}


export async function upgradeBench(o: BenchOptions): Promise<BenchPart> {
  const runs = runsFor(o, 1, 5);
  const { server, swarm } = await benchSetup("upgrade");
  const noCompose = await composeProblem();
  const t = new Timings();
  try {
    for (const shape of o.quick ? shapes.slice(1) : shapes) {
      const batch = String(Math.max(...Object.values(shape.services)));
      const [v1, v2] = [composeFor(shape, "1"), composeFor(shape, "2")];
      for (let r = -1; r < runs; r++) {
        const warm = r < 0; // the first round warms up
        const add = (what: string, tool: Tool, ms: number) => warm || t.add(`${shape.name} ${what}`, tool, ms);
        const stack = `u${RUN}${shape.name.replace(/\D/g, "")}r${r + 1}`;
        // corral: upgrade + confirm, then upgrade + rollback
        await cli(["up", "-d", "-f", v1, "-s", `${stack}c`]);
        add("upgrade", "corral", await time(() => cli(["up", "-d", "--upgrade", "--batch-size", batch, "-f", v2, "-s", `${stack}c`])));
        add("confirm", "corral", await time(() => cli(["up", "-d", "--confirm-upgrade", "-s", `${stack}c`])));
        await cli(["up", "-d", "--upgrade", "--batch-size", batch, "-f", v1, "-s", `${stack}c`]);
        add("rollback", "corral", await time(() => cli(["up", "-d", "--rollback", "-s", `${stack}c`])));
        await cli(["rm", `${stack}c`]);
        // direct
        await directUp(shape, `${stack}d`);
        add("upgrade", "direct", await time(() => directUpgrade(shape, `${stack}d`, "2")));
        add("confirm", "direct", await time(() => directConfirm(shape, `${stack}d`)));
        await directUpgrade(shape, `${stack}d`, "3");
        add("rollback", "direct", await time(() => directRollback(shape, `${stack}d`)));
        await directRm(`${stack}d`);
        // the warm-up round warms corral's process (modules, JIT) and the engine: the other tools' runs are all measured
        if (!swarm.problem && !warm) {
          await swarmUp(shape, `${stack}s`);
          add("upgrade", "swarm", await time(() => swarmUpgrade(shape, `${stack}s`, "2")));
          add("rollback", "swarm", await time(() => swarmRollback(shape, `${stack}s`)));
          await swarmRm(`${stack}s`);
        }
        if (!noCompose && !warm) {
          // compose has no confirm or rollback: `up -d` of the changed file recreates every container of it, stop-first
          await tool("docker-compose", ["-p", `${stack}p`, "-f", v1, "up", "-d"]);
          add("upgrade", "compose", await time(() => tool("docker-compose", ["-p", `${stack}p`, "-f", v2, "up", "-d"])));
          await composeDown(`${stack}p`, v2);
        }
      }
    }
  } finally {
    await server.stop();
    await swarm.leave();
  }
  const notes: string[] = [];
  if (swarm.problem) notes.push(`Swarm: not measured (${swarm.problem})`);
  if (noCompose) notes.push(`compose: not measured (${noCompose})`);
  const waits: Record<string, string> = {
    upgrade: "every slot replaced (stop-first, all at once) and running the new spec; the old kept for rollback",
    confirm: "the old containers removed (Swarm and compose have no confirm)",
    rollback: "the old containers running again, the new removed (Swarm: service rollback, until every task runs the old spec)",
  };
  return { rows: (o.quick ? shapes.slice(1) : shapes).flatMap((shape) => ["upgrade", "confirm", "rollback"].map((what) => row(what, shape.name, waits[what]!, t.get(`${shape.name} ${what}`)))), notes };
}
