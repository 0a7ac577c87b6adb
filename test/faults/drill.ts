import { randomUUID } from "node:crypto";
import { corral } from "../support.js";
import { engineContainers, type Api, type System } from "./system.js";

/**
 * The fault suite's workload and its invariants. A stack of three services
 * over two hosts (a web service pulled from the bench's registry, a worker,
 * and a health-checked one) goes through up, upgrade and confirm, upgrade
 * and rollback, scale and rm, each command sent as a CI pipeline would: to
 * the HTTP API with an Idempotency-Key, again with the same key when the
 * answer was lost (a server killed mid-request), never twice otherwise.
 * Every service asks to be restarted unless stopped (without that, what an
 * engine restart stopped stays stopped: Docker's rule, which corral keeps).
 */

export type Phase = "up" | "upgrade" | "confirm" | "rollback" | "scale" | "rm";
export const phases: Phase[] = ["up", "upgrade", "confirm", "rollback", "scale", "rm"];

const loop = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"];

export function stackDoc(image: string, version: string, web = 3) {
  return {
    services: {
      web: {
        image,
        environment: { V: version },
        cap_drop: ["ALL"],
        cap_add: ["NET_BIND_SERVICE"],
        deploy: { replicas: web, update_config: { parallelism: 1 } },
        restart: "unless-stopped",
      },
      worker: { image: "corral-busybox:latest", command: loop, environment: { V: version }, cap_drop: ["ALL"], deploy: { replicas: 2 }, restart: "unless-stopped" },
      checked: {
        image: "corral-busybox:latest",
        command: loop,
        restart: "unless-stopped",
        environment: { V: version },
        cap_drop: ["ALL"],
        healthcheck: { test: ["CMD", "true"], interval: "1s", retries: 3 },
      },
    },
  };
}

/** What each phase leaves, once converged: per service, how many containers run, and (after rm) none. */
export const wanted: Record<Phase, Record<string, number>> = {
  up: { web: 3, worker: 2, checked: 1 },
  upgrade: { web: 3, worker: 2, checked: 1 },
  confirm: { web: 3, worker: 2, checked: 1 },
  rollback: { web: 3, worker: 2, checked: 1 },
  scale: { web: 5, worker: 2, checked: 1 },
  rm: {},
};

interface Sent {
  status: number;
  body: { op?: string; error?: string; message?: string };
}

/** POST a command until it is answered (a dead server is waited for), the same Idempotency-Key each time. */
export async function send(api: Api, path: string, body: unknown, key: string, method = "POST", ms = 120_000): Promise<Sent> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const res = await fetch(`${api.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${api.token}`, "content-type": "application/json", "idempotency-key": key },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
      const answer = { status: res.status, body: (await res.json().catch(() => ({}))) as Sent["body"] };
      // the same key still held by a request its server never answered: ask again when it says
      const retryAfter = Number(res.headers.get("retry-after"));
      if (res.status === 409 && retryAfter > 0 && Date.now() + retryAfter * 1000 < deadline) {
        await new Promise((r) => setTimeout(r, Math.min(retryAfter, 30) * 1000));
        continue;
      }
      if (res.status < 500) return answer;
    } catch {
      // the server died or is not back yet: ask again, with the same key
    }
    if (Date.now() > deadline) throw new Error(`${method} ${path}: no answer in ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const files = (doc: unknown) => [{ name: "docker-compose.yml", document: doc }];

/** Send one phase's command; resolves with its operation id (once accepted). */
export async function command(sys: System, stack: string, phase: Phase, image: string): Promise<string> {
  const key = `faults-${stack}-${phase}-${randomUUID()}`;
  const bodies: Record<Phase, [string, unknown, string?]> = {
    up: [`/v1/stacks/${stack}/up`, { files: files(stackDoc(image, "1")) }],
    upgrade: [`/v1/stacks/${stack}/up`, { files: files(stackDoc(image, "2")), upgrade: true, batchSize: 1 }],
    confirm: [`/v1/stacks/${stack}/up`, { files: files(stackDoc(image, "2")), confirmUpgrade: true }],
    rollback: [`/v1/stacks/${stack}/up`, { files: files(stackDoc(image, "3")), upgrade: true, batchSize: 1 }],
    scale: [`/v1/stacks/${stack}/scale`, { scales: { web: 5 } }],
    rm: [`/v1/stacks/${stack}`, {}, "DELETE"],
  };
  if (phase === "rollback") {
    // an upgrade to 3, then its rollback: back on 2's containers
    const upgrade = await send(sys.api, bodies.rollback[0], bodies.rollback[1], key);
    if (upgrade.status !== 202 || !upgrade.body.op) throw new Error(`upgrade to 3: ${upgrade.status} ${JSON.stringify(upgrade.body)}`);
    await settled(sys.api, stack, upgrade.body.op);
    const back = await send(sys.api, bodies.rollback[0], { files: files(stackDoc(image, "3")), rollback: true }, `${key}-back`);
    if (back.status !== 202 || !back.body.op) throw new Error(`rollback: ${back.status} ${JSON.stringify(back.body)}`);
    return back.body.op;
  }
  const [path, body, method] = bodies[phase];
  const sent = await send(sys.api, path, body, key, method);
  if (sent.status !== 202 || !sent.body.op) throw new Error(`${phase}: ${sent.status} ${JSON.stringify(sent.body)}`);
  return sent.body.op;
}

interface EventLine {
  version: number;
  type: string;
  line: string | null;
  event: { op?: string; reason?: string };
}

/** Wait until operation `op` has ended (or the stack is gone, for rm); resolves with how it ended. */
export async function settled(api: Api, stack: string, op: string, ms = 180_000): Promise<{ ok: boolean; reason?: string }> {
  const deadline = Date.now() + ms;
  let after = 0;
  for (;;) {
    const res = await fetch(`${api.url}/v1/stacks/${stack}/events?after=${after}&wait=5`, { headers: { authorization: `Bearer ${api.token}` } }).catch(() => undefined);
    if (res?.status === 404) return { ok: true }; // removed: rm's end
    if (res?.ok) {
      const page = (await res.json()) as { version: number; events: EventLine[] };
      for (const e of page.events) {
        if (e.event.op !== op) continue;
        if (e.type === "OperationSucceeded" || e.type === "StackRemoved") return { ok: true };
        if (e.type === "OperationFailed") return { ok: false, ...(e.event.reason ? { reason: e.event.reason } : {}) };
      }
      after = page.version;
    } else {
      await new Promise((r) => setTimeout(r, 250));
    }
    if (Date.now() > deadline) throw new Error(`operation ${op} of ${stack} did not end in ${ms / 1000} s`);
  }
}

export interface Check {
  converged: boolean;
  orphans: number;
  duplicates: number;
  detail: string;
}

interface ContainerJson {
  name: string;
  state: string;
  docker: string;
}

/**
 * The invariants after a phase: every container on the engines is one
 * corral lists and the other way round (no orphan), no service slot has two
 * running containers (no duplicate), and each service runs what the phase
 * wants, at one revision.
 */
export async function check(sys: System, stack: string, phase: Phase): Promise<Check> {
  const onEngines = (await Promise.all(sys.hosts.map((h) => engineContainers(h.docker, stack)))).flat();
  const ps = await corral(sys.api, ["ps", "--all", "--containers", "--format", "json"]);
  const listed = ps.code === 0 ? (JSON.parse(ps.stdout) as ContainerJson[]).filter((c) => c.name.startsWith(`${stack}-`)) : [];
  const engineIds = new Set(onEngines.map((c) => c.id));
  const listedIds = new Set(listed.map((c) => c.docker).filter(Boolean));
  const orphans = onEngines.filter((c) => !listedIds.has(c.id)).length + [...listedIds].filter((id) => !engineIds.has(id)).length;
  const running = onEngines.filter((c) => c.state === "running");
  const slots = new Map<string, number>();
  for (const c of running) slots.set(`${c.service}/${c.slot}`, (slots.get(`${c.service}/${c.slot}`) ?? 0) + 1);
  const duplicates = [...slots.values()].filter((n) => n > 1).reduce((a, n) => a + n - 1, 0);
  const want = wanted[phase];
  const problems: string[] = [];
  for (const [service, n] of Object.entries(want)) {
    const mine = running.filter((c) => c.service === service);
    if (mine.length !== n) problems.push(`${service}: ${mine.length} of ${n} running`);
    if (new Set(mine.map((c) => c.revision)).size > 1) problems.push(`${service}: running at revisions ${[...new Set(mine.map((c) => c.revision))].join(", ")}`);
  }
  // after a confirm, a rollback, a scale and rm, nothing but what runs is left (the upgrade keeps its old containers, stopped)
  if (phase !== "upgrade" && onEngines.length !== running.length) problems.push(`${onEngines.length - running.length} stopped containers left`);
  if (phase === "rm" && onEngines.length > 0) problems.push(`${onEngines.length} containers left after rm`);
  const detail = [...problems, ...(orphans ? [`${orphans} orphans`] : []), ...(duplicates ? [`${duplicates} duplicates`] : [])].join("; ");
  return { converged: problems.length === 0, orphans, duplicates, detail };
}

/** Check until converged (a fault's effects take a while to undo), at most `ms`; resolves with the last check and how long it took. */
export async function converge(sys: System, stack: string, phase: Phase, ms = 120_000): Promise<Check & { seconds: number }> {
  const start = Date.now();
  for (;;) {
    const c = await check(sys, stack, phase);
    if ((c.converged && c.orphans === 0 && c.duplicates === 0) || Date.now() - start > ms) return { ...c, seconds: (Date.now() - start) / 1000 };
    await new Promise((r) => setTimeout(r, 500));
  }
}
