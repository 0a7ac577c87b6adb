/**
 * Simulated hosts for the control-plane bench (bench/scale.bench.ts), in a
 * process of their own so that their work is not counted as the server's:
 * N real agents (registration, signed queue messages, heartbeats, reconcile,
 * step reports: all of corral's agent) each on an engine in memory
 * (FakeRuntime) instead of Docker.
 *
 *   node --import tsx bench/fake-hosts.ts URL N   (CORRAL_TOKEN: the admin's)
 *
 * Forked with an IPC channel: it sends {ready} once every host is connected,
 * and answers {want: "containers"} with what every engine runs.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FakeRuntime, startAgent, type RunningAgent } from "@corral/agent";

export const FAKE_IMAGE = "corral-hello:latest";

/** What a simulated engine runs, as the bench checks it against what was asked for. */
export interface FakeRunning {
  host: string;
  name: string;
  running: boolean;
  labels: Record<string, string>;
  env: Record<string, string>;
}

const [url, count] = process.argv.slice(2);
const token = process.env.CORRAL_TOKEN ?? "";
const n = Number(count);
if (!url || !Number.isInteger(n) || n < 1 || n > 1000 || !token) {
  console.error("usage: node --import tsx bench/fake-hosts.ts URL N (1..1000), with CORRAL_TOKEN");
  process.exit(2);
}

const dir = mkdtempSync(join(tmpdir(), "corral-fake-hosts-"));
const engines = new Map<string, FakeRuntime>();
const agents: RunningAgent[] = [];

async function join1(i: number): Promise<void> {
  const id = `fake-${String(i).padStart(3, "0")}`;
  const res = await fetch(`${url}/v1/hosts/${id}/join`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: "{}" });
  if (!res.ok) throw new Error(`join ${id}: ${res.status} ${await res.text()}`);
  const { token: joinToken } = (await res.json()) as { token: string };
  const runtime = new FakeRuntime({ [FAKE_IMAGE]: {} });
  engines.set(id, runtime);
  const ports = join(dir, `${id}.ports`);
  writeFileSync(ports, "");
  agents.push(
    await startAgent({
      hostId: id,
      apiUrl: url!,
      token: joinToken,
      runtime,
      // a test address (198.18.0.0/15): a label for published ports, never sent to
      address: `198.19.${i >> 8}.${(i & 255) || 1}`,
      reservedPortsFile: ports,
      secretsDir: join(dir, `${id}.secrets`),
    }),
  );
}

const running = (): FakeRunning[] =>
  [...engines].flatMap(([host, rt]) => [...rt.containers.values()].map((c) => ({ host, name: c.name, running: c.running, labels: c.labels, env: c.spec.env })));

process.on("message", (m: { want?: string }) => {
  if (m.want === "containers") process.send?.({ containers: running() });
  if (m.want === "stop") void stop();
});
// the bench is gone (killed, crashed): so are its hosts
process.on("disconnect", () => void stop());

async function stop() {
  await Promise.all(agents.map((a) => a.stop().catch(() => {})));
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

// a few at a time: each registration makes a queue and writes the host record
for (let i = 0; i < n; i += 10) await Promise.all(Array.from({ length: Math.min(10, n - i) }, (_, k) => join1(i + k + 1)));
process.send?.({ ready: n });
