import { generateKeyPairSync } from "node:crypto";
import { isIP } from "node:net";
import { networkInterfaces } from "node:os";
import { z } from "zod";
import { labels as L, type HealthReport, type Logger } from "@corral/core/host";
import { CONTROL, exportPublicKey, hostSender, importPublicKey, Opener, QueueSender, signer, sqsClient } from "@corral/queue";
import { queueReporter, runAgentLoop, StepRunner } from "./agent.js";
import { DockerRuntime } from "./docker-runtime.js";
import { defaultSecretsDir } from "./names.js";
import { PortRouter } from "./router.js";
import { reservePortRange } from "./reserved-ports.js";
import { httpCall } from "./http.js";
import { registryAuthFrom } from "./registry-auth.js";
import { SessionRunner, type SessionInput } from "./sessions.js";
import type { CredentialStore } from "./credentials.js";
import { StackNetworks, type NetworkAnswer } from "./networks.js";
import { localExec, type Exec } from "./overlay.js";
import { controlFingerprint, startReconcile, type RunningReconcile } from "./reconcile.js";
import type { ContainerRuntime } from "./runtime.js";

export interface AgentProcessOptions {
  hostId: string;
  apiUrl: string;
  token: string;
  dockerHost?: string;
  runtime?: ContainerRuntime;
  heartbeatMs?: number;
  /** How often to reconcile the host against what the control plane wants (default: the registration's, else 30 s), and how long an orphan container stays (default: the registration's, else 60 s). */
  reconcileMs?: number;
  orphanGraceMs?: number;
  /** Test switch: every message this agent sends goes out twice. */
  duplicateMessages?: boolean;
  /** Where secret files for containers are kept: a tmpfs (default /dev/shm/corral-secrets). */
  secretsDir?: string;
  /** The address users reach this host's published ports on (default: the Docker host's IP for a tcp:// engine, else this machine's first non-loopback IPv4 address). */
  address?: string;
  /** Where to reserve the site's port range (default /proc/sys/net/ipv4/ip_local_reserved_ports; a plain file in tests). */
  reservedPortsFile?: string;
  /**
   * Join the cross-host stack network: `true`, `false`, or `"auto"` (on
   * when this process can make it: root, iproute2 and iptables, and the
   * host's address one of this machine's own, where VXLAN packets are sent
   * from and come to). Default false.
   */
  overlay?: boolean | "auto";
  /** Where the host token is kept, to start again without a join token; and whether `token` came from it. */
  credentials?: CredentialStore;
  tokenIsSaved?: boolean;
  log?: Logger;
}

/**
 * Why this process cannot make the overlay here, or undefined when it can:
 * it needs root (VXLAN devices, routes, iptables), `ip` and `iptables`, and
 * the host's address on one of this network namespace's interfaces.
 */
export async function overlayUnavailable(address: string, exec: Exec = localExec): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return "not root";
  for (const tool of [["ip", "-V"], ["iptables", "-V"]]) {
    const missing = await exec(tool).then(
      () => false,
      () => true,
    );
    if (missing) return `${tool[0]} is not installed`;
  }
  const mine = Object.values(networkInterfaces()).some((list) => (list ?? []).some((a) => a.address === address));
  return mine ? undefined : `the host's address ${address} is not one of this machine's (VXLAN packets come to it)`;
}

/**
 * Where users reach the published ports of the engine at `dockerHost`: the
 * engine's own IP when it is reached over the network (tcp://IP:PORT, not a
 * loopback one), else this machine's first non-internal IPv4 address;
 * loopback when it has none.
 */
export function hostAddress(dockerHost?: string, interfaces = networkInterfaces()): string {
  const remote = /^(?:tcp|https?):\/\/\[?([^\]/]+?)\]?(?::\d+)?\/?$/.exec(dockerHost ?? "")?.[1];
  if (remote && isIP(remote) !== 0 && !/^127\.|^::1$/.test(remote)) return remote;
  for (const list of Object.values(interfaces)) for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  return "127.0.0.1";
}

export interface RunningAgent {
  hostId: string;
  /** Resolves, with the reason, when the agent stops by itself: the control plane no longer knows this host (it was removed). */
  ended: Promise<string>;
  stop(): Promise<void>;
}

/** An answer of the API other than 2xx. */
class ApiCallError extends Error {
  override name = "ApiCallError";
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

const networkAssignment = z.object({
  subnet: z.string().regex(/^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/),
  bridge: z.string().regex(/^cr-[0-9a-f]{12}$/),
  gateway: z.string().regex(/^(\d{1,3}\.){3}\d{1,3}$/),
});

const registration = z.object({
  queueUrl: z.string(),
  controlQueueUrl: z.string(),
  sqs: z.object({ endpoint: z.string().optional(), region: z.string(), socketPath: z.string().optional() }),
  visibilitySeconds: z.number(),
  hostToken: z.string(),
  /** The control plane's public key: every message on this host's queue must carry its signature. */
  controlKey: z.string(),
  bindRoots: z.array(z.string()).default([]),
  /** The site's port range, reserved here against the kernel's ephemeral ports. */
  portRange: z.tuple([z.number().int().min(1).max(65535), z.number().int().min(1).max(65535)]).optional(),
  /** How often the control plane wants to hear from this host (a third of its timeout). */
  heartbeatMs: z.number().int().min(100).max(600_000).optional(),
  /** How often the control plane wants this host reconciled, and how long an orphan container may stay. */
  reconcileMs: z.number().int().min(100).max(3_600_000).optional(),
  orphanGraceMs: z.number().int().min(0).max(86_400_000).optional(),
});

async function call(options: AgentProcessOptions, path: string, body?: unknown, token = options.token): Promise<unknown> {
  const res = await httpCall(`${options.apiUrl}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (res.status < 200 || res.status > 299) throw new ApiCallError(`${path}: ${res.status} ${res.text.slice(0, 2000)}`, res.status);
  return JSON.parse(res.text) as unknown;
}

type Registration = z.infer<typeof registration>;

/** The engine's version, or why it cannot be reached, saying how to point the agent at it. */
async function engineVersion(runtime: ContainerRuntime, options: AgentProcessOptions): Promise<string> {
  try {
    return await runtime.engineVersion();
  } catch (e) {
    const where = options.dockerHost ?? process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock";
    throw new Error(`cannot reach the Docker engine at ${where} (${(e as Error).message}); set DOCKER_HOST, or pass --docker-host (agent) or --no-agent (server)`);
  }
}

/**
 * Register this host with the API, which answers with its queue, the
 * control plane's key and the site's settings; a refused saved token says
 * what to do. The host token changes at every registration: the new one is
 * kept, to start again without a join token.
 */
async function register(options: AgentProcessOptions, body: { engine: string; address: string; publicKey: string }): Promise<Registration> {
  let answer: unknown;
  try {
    answer = await call(options, `/v1/hosts/${options.hostId}/register`, body);
  } catch (e) {
    if (options.tokenIsSaved && e instanceof ApiCallError && (e.status === 401 || e.status === 403)) {
      const where = `saved for host ${options.hostId} in ${options.credentials?.dir ?? "the state directory"} (${e.status})`;
      throw new Error(
        `the control plane at ${options.apiUrl} refuses the credentials ${where}: was the host removed, or joined again elsewhere? ` +
          `'corral host add ${options.hostId}' makes a join token: corral agent --join ${options.apiUrl} --token T`,
      );
    }
    throw e;
  }
  const reg = registration.parse(answer);
  await options.credentials?.save({ url: options.apiUrl, hostId: options.hostId, hostToken: reg.hostToken });
  return reg;
}

/** The cross-host stack network (VXLAN, routes, filters, name servers), when asked for and started: it needs root and iptables. */
async function startStackNetworks(options: AgentProcessOptions, address: string, reg: Registration): Promise<StackNetworks | undefined> {
  const overlayOff = options.overlay === "auto" ? await overlayUnavailable(address) : options.overlay ? undefined : "not asked for";
  if (options.overlay === "auto" && overlayOff) options.log?.info("stack networks stay on this host (no overlay)", { reason: overlayOff });
  const networks = !overlayOff
    ? new StackNetworks({
        fetch: async () => (await call(options, `/v1/hosts/${options.hostId}/overlay`, undefined, reg.hostToken)) as NetworkAnswer,
        ...(options.log ? { log: options.log } : {}),
      })
    : undefined;
  networks?.start();
  return networks;
}

const secretValue = z.object({ value: z.string() });

/** The runner of this host's steps, asking the API (with the host token) for networks, secrets and registry logins. */
function stepRunner(
  options: AgentProcessOptions,
  reg: Registration,
  parts: { runtime: ContainerRuntime; router: PortRouter; networks: StackNetworks | undefined; sender: QueueSender; controlId: string; secretsDir: string },
): StepRunner {
  const { runtime, router, networks, sender, controlId, secretsDir } = parts;
  return new StepRunner({
    hostId: options.hostId,
    controlId,
    ...(networks
      ? {
          stackNetwork: async (stack: string) => ({
            ...networkAssignment.parse(await call(options, `/v1/hosts/${options.hostId}/networks/${encodeURIComponent(stack)}`, {}, reg.hostToken)),
            mtu: networks.mtu(),
          }),
          networkMade: () => networks.sync(),
        }
      : {}),
    runtime,
    router,
    report: queueReporter(sender, reg.controlQueueUrl),
    secretsDir,
    bindRoots: reg.bindRoots,
    // how long a step waits for an engine that is away (a dockerd restart) before it fails saying so
    ...(process.env.CORRAL_ENGINE_WAIT_MS ? { engineWait: { waitMs: Number(process.env.CORRAL_ENGINE_WAIT_MS), retryMs: 1000 } } : {}),
    fetchSecret: async (step, name, version) => {
      const q = new URLSearchParams({ stack: step.stack, step: step.id, version: String(version) });
      const got = secretValue.parse(await call(options, `/v1/hosts/${options.hostId}/secrets/${encodeURIComponent(name)}?${q}`, undefined, reg.hostToken));
      return Buffer.from(got.value, "base64");
    },
    registryAuth: registryAuthFrom(options.apiUrl, options.hostId, () => reg.hostToken),
    ...(options.log ? { log: options.log } : {}),
  });
}

/** Health verdicts that change after a container started go to the controller, which keeps the service state; every event to the reconcile too. */
function watchHealth(options: AgentProcessOptions, runtime: ContainerRuntime, reconcile: RunningReconcile, sender: QueueSender, reg: Registration): () => void {
  return runtime.watchContainers((e) => {
    reconcile.reconciler.onContainerEvent(e);
    const stack = e.labels[L.stack];
    const health = e.action === "health_status: healthy" ? "healthy" : e.action === "health_status: unhealthy" ? "unhealthy" : undefined;
    if (!stack || !health) return;
    const body: HealthReport = { kind: "health", stack, host: options.hostId, container: e.name, dockerId: e.id, health, at: Date.now() };
    sender
      .send(reg.controlQueueUrl, [{ body, group: stack, dedupId: `health.${e.id}.${health}.${body.at}`, to: CONTROL }])
      .catch((err: unknown) => options.log?.error("health report", { container: e.name, error: String(err) }));
  });
}

/**
 * Heartbeat the API. Once it refuses this host's token, the control plane
 * no longer knows the host (it was removed, 'corral host rm'): the agent
 * stops asking for work (`work` aborted), and `ended` says why.
 */
function startHeartbeat(options: AgentProcessOptions, engine: string, reg: Registration, work: AbortController): { ended: Promise<string>; stop(): void } {
  let endAgent!: (reason: string) => void;
  const ended = new Promise<string>((resolve) => (endAgent = resolve));
  const heartbeat = setInterval(() => {
    call(options, `/v1/hosts/${options.hostId}/heartbeat`, { engine }, reg.hostToken).catch((e: unknown) => {
      options.log?.error("heartbeat failed", { error: String(e) });
      if (!(e instanceof ApiCallError && e.status === 401)) return; // the network, a restart of the control plane: the next beat tries again
      // the control plane no longer takes this host's token: it was removed ('corral host rm'); stop asking for work
      clearInterval(heartbeat);
      work.abort();
      void options.credentials?.forget(options.apiUrl, options.hostId).catch(() => {});
      endAgent(`host ${options.hostId} is no longer registered with the control plane (its token is refused): the agent stopped; 'corral host add ${options.hostId}' makes a token to join it again`);
    });
  }, options.heartbeatMs ?? reg.heartbeatMs ?? 10_000);
  return { ended, stop: () => clearInterval(heartbeat) };
}

/**
 * A host agent: registers with the API (which tells it its queue), then
 * heartbeats and long-polls its queue. It accepts no inbound connection.
 */
export async function startAgent(options: AgentProcessOptions): Promise<RunningAgent> {
  const runtime = options.runtime ?? new DockerRuntime(options.dockerHost);
  const engine = await engineVersion(runtime, options);
  const address = options.address ?? hostAddress(options.dockerHost ?? process.env.DOCKER_HOST);
  if (isIP(address) === 0) throw new Error(`address "${address}": not an IP address (the address users reach this host's published ports on)`);
  // this host's own signing key, made anew at each start; only its public half leaves the process
  const keys = generateKeyPairSync("ed25519");
  const reg = await register(options, { engine, address, publicKey: exportPublicKey(keys.publicKey) });
  const controlKey = importPublicKey(reg.controlKey);
  // published ports come from the site's range: no outgoing connection of this host may take one as its source port
  if (reg.portRange) await reservePortRange(reg.portRange, { ...(options.reservedPortsFile ? { file: options.reservedPortsFile } : {}), ...(options.log ? { log: options.log } : {}) });
  const sqs = sqsClient(reg.sqs);
  const sender = new QueueSender(sqs, { duplicate: options.duplicateMessages ?? false, signer: signer(hostSender(options.hostId), keys.privateKey) });
  const opener = new Opener({ me: options.hostId, keyOf: (by) => (by === CONTROL ? controlKey : undefined) });
  const router = new PortRouter(runtime, options.log);
  await router.start();
  const controlId = controlFingerprint(reg.controlKey);
  const secretsDir = options.secretsDir ?? defaultSecretsDir();
  const networks = await startStackNetworks(options, address, reg);
  const runner = stepRunner(options, reg, { runtime, router, networks, sender, controlId, secretsDir });
  // orphans removed, exits reported: see reconcile.ts
  const reconcile = startReconcile({
    hostId: options.hostId,
    controlId,
    runtime,
    acting: (key) => runner.acting(key),
    wanted: () => call(options, `/v1/hosts/${options.hostId}/wanted`, undefined, reg.hostToken),
    reportExit: (body) => sender.send(reg.controlQueueUrl, [{ body, group: body.stack, dedupId: `exited.${body.dockerId}.${body.at}`, to: CONTROL }]),
    secretsDir,
    intervalMs: options.reconcileMs ?? reg.reconcileMs ?? 30_000,
    graceMs: options.orphanGraceMs ?? reg.orphanGraceMs ?? 60_000,
    ...(options.log ? { log: options.log } : {}),
  });
  const unwatch = watchHealth(options, runtime, reconcile, sender, reg);
  const controller = new AbortController();
  const heartbeat = startHeartbeat(options, engine, reg, controller);
  const sessions = new SessionRunner({
    runtime,
    post: async (id, body) => (await call(options, `/v1/hosts/${options.hostId}/sessions/${id}/chunks`, body, reg.hostToken)) as { cancelled: boolean },
    input: async (id, after) =>
      (await call(options, `/v1/hosts/${options.hostId}/sessions/${id}/input?after=${after}&wait=20`, undefined, reg.hostToken)) as Awaited<ReturnType<SessionInput>>,
    ...(options.log ? { log: options.log } : {}),
  });
  const loop = runAgentLoop({
    runner,
    sessions,
    sqs,
    queueUrl: reg.queueUrl,
    hostId: options.hostId,
    opener,
    signal: controller.signal,
    visibilitySeconds: reg.visibilitySeconds,
    ...(options.log ? { log: options.log } : {}),
  });
  options.log?.info("agent started", { host: options.hostId, engine });
  return {
    hostId: options.hostId,
    ended: heartbeat.ended,
    async stop() {
      heartbeat.stop();
      controller.abort();
      await loop;
      await reconcile.stop();
      await networks?.stop();
      unwatch();
      sessions.stop();
      await router.stop();
      sqs.destroy();
    },
  };
}
