import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { KMSClient } from "@aws-sdk/client-kms";
import { startAgent, type RunningAgent } from "@corral/agent";
import { startControlLoop } from "@corral/control";
import { lineLogger, type Logger, type LogLevel, type SitePolicy } from "@corral/core";
import { controlQueueName, ensureFifoQueue, hostQueueName, sqsClient, standInOptions, type SqsConfig } from "@corral/queue";
import { ChangeFeed, dynamoClient, type DynamoConfig, ensureTable, HostStore, KeyFileMasterKey, KmsMasterKey, privateFile, privateFolder } from "@corral/store";
import { controlKeys } from "./keys.js";
import { buildPlane } from "./plane.js";
import { lockDataFolder } from "./lock.js";
import { portHolder } from "./port-holder.js";
import { prepareSockets, removeSockets, socketFolder } from "./sockets.js";
import { startStandInsThread, type WireTap } from "./standins.js";

export interface ServerOptions {
  port?: number;
  /** The address the API listens on (default 127.0.0.1: this machine only; agents on other machines need one they reach). */
  listen?: string;
  dataDir: string;
  /** Run a local agent on this machine's Docker engine. */
  agent?: boolean;
  hostId?: string;
  dockerHost?: string;
  /** Host queue visibility timeout: how long a step taken by a dead agent waits. */
  visibilitySeconds?: number;
  /** Re-send a step not reported within this. */
  resendAfterMs?: number;
  /** How often the reconcile tick reads every stack, not only those that may need it (default 60 s). */
  fullSweepMs?: number;
  tickMs?: number;
  /** A host not heard from for this long is disconnected: nothing new is placed on it (default 30 s; agents heartbeat a third as often). */
  hostTimeoutMs?: number;
  /** Test switch: every queue message is sent twice. */
  duplicateMessages?: boolean;
  /** Each token's mutating requests allowed per minute (default 300; 429 past it). */
  mutationsPerMinute?: number;
  policy?: SitePolicy;
  /** Where the local agent keeps secret files for containers (a tmpfs; default /dev/shm/corral-secrets). */
  secretsDir?: string;
  /** How often agents reconcile their host, and how long an orphan container stays before removal (defaults 30 s, 60 s): told to every agent at registration; short in tests. */
  reconcileMs?: number;
  orphanGraceMs?: number;
  /** Where the local agent reserves the policy's port range (default /proc/sys/net/ipv4/ip_local_reserved_ports). */
  reservedPortsFile?: string;
  log?: Logger;
  /** Seal secrets under this AWS KMS key (default credentials and region) instead of DATA/master.key. */
  kmsKeyId?: string;
  /** Test switch: sees every body that crosses the wire to the queue stand-in. */
  queueTap?: WireTap;
  /** Test switch: sees every body that crosses the wire to the table's stand-in (a bench counts an idle server's requests). */
  storeTap?: WireTap;
}

export interface RunningServer {
  url: string;
  token: string;
  /** Where the embedded stand-ins listen (Unix sockets) and the control queue: for tests that play an attacker who got that far. */
  endpoints: { dynamo: DynamoConfig; sqs: SqsConfig; controlQueueUrl: string };
  /** Settles, with why, only if the server stopped by itself (its stores' thread ended): everything is stopped by then. */
  failed: Promise<string>;
  stop(): Promise<void>;
}

/** `corral server` could not start (its port or data folder is taken): a message for one line, nothing started. */
export class ServerStartError extends Error {
  override name = "ServerStartError";
}

const TABLE = "corral";

const PREFIX = "corral";

/**
 * The admin token: made on first start, kept in DATA/token (mode 0600). An
 * existing file is trusted only if it is this user's alone (see privateFile).
 */
export function adminToken(dataDir: string): string {
  const token = privateFile(join(dataDir, "token"), () => `${randomBytes(24).toString("base64url")}\n`).toString("utf8").trim();
  if (token.length < 16) throw new Error(`${join(dataDir, "token")}: an admin token is at least 16 characters, this one has ${token.length}; remove the file and corral makes a new one`);
  return token;
}

/** corral's line logger (core's lineLogger) on stderr. */
export const stderrLogger = (level: LogLevel = "info", write: (line: string) => void = (l) => void process.stderr.write(l)): Logger => lineLogger(level, write);

/**
 * `corral server`: DynamoDB and SQS stand-ins in this process (dynalite on
 * LevelDB under DATA/dynamo, fauxqs in memory), the API, the controller with
 * its reconcile tick, and a local agent.
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const log = options.log;
  // the data dir holds the admin token, the master key and the tables: ours alone (0700), or corral does not start
  privateFolder(options.dataDir);
  // one server per data folder, and the API's port: both taken before anything starts, so that a second
  // server stops at once with the reason (and dynalite never meets another's LevelDB lock)
  const lock = lockDataFolder(options.dataDir);
  // what runs so far, stopped in reverse if a later part fails: a refused start leaves nothing behind
  const started: Array<() => Promise<void> | void> = [() => lock.release()];
  const unwind = async () => {
    for (const stop of started.splice(0).reverse()) await Promise.resolve(stop()).catch(() => {});
  };
  try {
    return await startParts(options, log, started);
  } catch (e) {
    await unwind();
    throw e;
  }
}

/** Listen the API's port now, answering 503 until `handler` is set; a port in use is a one-line error naming it. */
async function listenApi(port: number, handler: () => ((request: Request, env: unknown) => Promise<Response>) | undefined, hostname = "127.0.0.1") {
  const fetch = (request: Request, env: unknown) => handler()?.(request, env) ?? Promise.resolve(Response.json({ ok: false, reason: "starting" }, { status: 503 }));
  const server = serve({ fetch, port, hostname });
  await new Promise<void>((resolve, reject) => {
    server.once("listening", () => resolve());
    server.once("error", (e: NodeJS.ErrnoException) => {
      server.close();
      if (e.code === "EADDRINUSE") {
        const pid = portHolder(port);
        reject(new ServerStartError(`port ${port} on ${hostname} is in use${pid ? ` by another process (pid ${pid})` : ""}; stop it, or choose another --port`));
      } else if (e.code === "EACCES") reject(new ServerStartError(`port ${port} on ${hostname}: permission denied; choose another --port`));
      else if (e.code === "EADDRNOTAVAIL") reject(new ServerStartError(`--listen ${hostname}: not an address of this machine`));
      else reject(e);
    });
  });
  return server;
}

/** Where requests go once the app is made: the port is listened on before, answering 503 until then. */
type ApiHandler = { fetch?: (request: Request, env: unknown) => Promise<Response> };

/** The API's port, taken now (see listenApi), its URL, and how to close it (once). */
async function openApi(options: ServerOptions, api: ApiHandler, started: Array<() => Promise<void> | void>) {
  const listen = options.listen ?? "127.0.0.1";
  const server = await listenApi(options.port ?? 8080, () => api.fetch, listen);
  let closing: Promise<void> | undefined;
  const closeServer = () =>
    (closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
    }));
  started.push(closeServer);
  const shown = listen === "0.0.0.0" || listen === "::" ? "127.0.0.1" : listen;
  const url = `http://${shown.includes(":") ? `[${shown}]` : shown}:${(server.address() as AddressInfo).port}`;
  return { url, closeServer };
}

/**
 * The stand-ins (dynalite, fauxqs) on their sockets, the table, and the
 * control queue; the registered hosts' queues made again.
 */
async function startStandIns(options: ServerOptions, log: Logger | undefined, started: Array<() => Promise<void> | void>, lost: (reason: string) => void) {
  // the stand-ins listen on Unix sockets in a folder only this user may enter: other local users cannot reach them.
  // The same folder at every start: an agent that outlives a restart of this server finds its queue where it was.
  const sockets = socketFolder(options.dataDir);
  const socketPaths = prepareSockets(sockets);
  started.push(() => removeSockets(sockets));
  // in a thread of their own, as AWS runs them elsewhere: their work does not hold up the API's answers
  const thread = await startStandInsThread({
    dynamoPath: join(options.dataDir, "dynamo"),
    dynamo: { socket: socketPaths.dynamo },
    queues: { socket: socketPaths.sqs },
    ...(options.storeTap ? { storeTap: options.storeTap } : {}),
    ...(options.queueTap ? { queueTap: options.queueTap } : {}),
    lost,
  });
  started.push(() => thread.stop());
  const { dynamo, queues } = thread;
  const sqsConfig = { endpoint: queues.endpoint, region: "us-east-1", ...(queues.socketPath ? { socketPath: queues.socketPath } : {}) };
  const db = dynamoClient({ table: TABLE, sdk: standInOptions(dynamo) });
  started.push(() => db.destroy());
  await ensureTable(db, TABLE);
  const sqs = sqsClient(sqsConfig);
  started.push(() => sqs.destroy());
  const visibilitySeconds = options.visibilitySeconds ?? 30;
  const controlQueueUrl = await ensureFifoQueue(sqs, controlQueueName(PREFIX), { visibilityTimeoutSeconds: 30, maxReceiveCount: 10 });
  const hostQueue = (id: string) => ensureFifoQueue(sqs, hostQueueName(PREFIX, id), { visibilityTimeoutSeconds: visibilitySeconds });
  const hosts = new HostStore(db, TABLE);
  // the queue stand-in keeps its queues in memory: after a restart, the registered hosts' queues are made again
  // (at the same URLs), so that steps can go to them and their agents, still running, read them again
  for (const host of await hosts.list()) {
    const url = await hostQueue(host.id);
    if (url !== host.queueUrl) log?.warn?.("a host's queue moved: its agent must register again", { host: host.id, was: host.queueUrl, now: url });
  }
  return { dynamo, sqsConfig, db, sqs, visibilitySeconds, controlQueueUrl };
}

/** The local agent, on this machine's Docker engine; if it cannot start, everything else stops. */
function startLocalAgent(options: ServerOptions, url: string, token: string, stopAll: () => Promise<void>): Promise<RunningAgent> {
  return startAgent({
    hostId: options.hostId ?? hostname().replace(/[^a-zA-Z0-9_-]/g, "-").slice(0, 60),
    apiUrl: url,
    token,
    ...(options.dockerHost ? { dockerHost: options.dockerHost } : {}),
    ...(options.secretsDir ? { secretsDir: options.secretsDir } : {}),
    ...(options.reservedPortsFile ? { reservedPortsFile: options.reservedPortsFile } : {}),
    duplicateMessages: options.duplicateMessages ?? false,
    overlay: process.env.CORRAL_OVERLAY === "1" || process.env.CORRAL_OVERLAY === "on",
    ...(options.log ? { log: options.log } : {}),
  }).catch(async (e: unknown) => {
    await stopAll();
    throw e;
  });
}

async function startParts(options: ServerOptions, log: Logger | undefined, started: Array<() => Promise<void> | void>): Promise<RunningServer> {
  // the port is ours from here on; requests get the app once it is made
  const api: ApiHandler = {};
  const { url, closeServer } = await openApi(options, api, started);
  const token = adminToken(options.dataDir);
  const keys = controlKeys(options.dataDir);
  // checked (or made) before anything starts: a refused key file leaves nothing running
  const keyFile = options.kmsKeyId ? undefined : new KeyFileMasterKey(join(options.dataDir, "master.key"));
  // the stand-ins' thread ending by itself leaves the API and the controller with no store: the server stops,
  // and says so (failed); `corral server` then exits 1, for a service manager to start it again (the table is on disk)
  const afterLoss: { stop?: () => Promise<void> } = {};
  let failedWith: (reason: string) => void = () => {};
  const failed = new Promise<string>((resolve) => (failedWith = resolve));
  const lost = (reason: string) => {
    log?.error("the stores stopped: corral server stops", { reason });
    void Promise.resolve(afterLoss.stop?.()).then(() => failedWith(reason));
  };
  const { dynamo, sqsConfig, db, sqs, visibilitySeconds, controlQueueUrl } = await startStandIns(options, log, started, lost);
  const feed = new ChangeFeed();
  const masterKey = keyFile ?? (await KmsMasterKey.open(new KMSClient({}), options.kmsKeyId!, db, TABLE));
  let ready = false;
  // no heartbeat reached a server that was not running: hosts get their timeout from this start to beat again
  const startedAt = Date.now();
  const { app, controller, opener } = await buildPlane({
    db,
    table: TABLE,
    sqs,
    sqsConfig,
    controlQueueUrl,
    queuePrefix: PREFIX,
    keys,
    masterKey,
    adminToken: token,
    feed,
    // the table is this server's alone: its data folder is locked, and dynalite listens on a socket inside it
    soleWriter: true,
    visibilitySeconds,
    heardSince: startedAt,
    ready: () => ready,
    ...(options.hostTimeoutMs ? { hostTimeoutMs: options.hostTimeoutMs } : {}),
    ...(options.resendAfterMs ? { resendAfterMs: options.resendAfterMs } : {}),
    ...(options.fullSweepMs ? { fullSweepMs: options.fullSweepMs } : {}),
    ...(options.reconcileMs !== undefined ? { reconcileMs: options.reconcileMs } : {}),
    ...(options.orphanGraceMs !== undefined ? { orphanGraceMs: options.orphanGraceMs } : {}),
    ...(options.duplicateMessages ? { duplicateMessages: true } : {}),
    ...(options.mutationsPerMinute ? { mutationsPerMinute: options.mutationsPerMinute } : {}),
    ...(process.env.CORRAL_OVERLAY_POOL ? { overlayPool: process.env.CORRAL_OVERLAY_POOL } : {}),
    ...(process.env.CORRAL_VTEP_POOL ? { vtepPool: process.env.CORRAL_VTEP_POOL } : {}),
    ...(options.policy ? { policy: options.policy } : {}),
    ...(log ? { log } : {}),
  });
  const abort = new AbortController();
  const feedClosed = () => {
    abort.abort();
    feed.close();
  };
  // the queue stand-in starts empty: steps a previous run of this server sent, and reports its agents sent, are gone
  const loop = startControlLoop({ controller, sqs, controlQueueUrl, opener, signal: abort.signal, tickMs: options.tickMs ?? 5000, queuesLost: true, ...(log ? { log } : {}) });
  started.push(async () => {
    feedClosed();
    await loop;
  });
  // requests in flight are let finish before the stores close under them
  let inflight = 0;
  let drained: (() => void) | undefined;
  const fetch = async (request: Request, env: unknown) => {
    inflight++;
    try {
      return await app.fetch(request, env as never);
    } finally {
      if (--inflight === 0) drained?.();
    }
  };
  api.fetch = fetch;
  log?.info("api listening", { url, data: options.dataDir });

  const stopAll = async () => {
    abort.abort();
    feed.close();
    await loop;
    await closeServer();
    if (inflight > 0) {
      await new Promise<void>((resolve) => {
        drained = resolve;
        setTimeout(resolve, 5000).unref();
      });
    }
    // the rest in reverse order of start: clients, stand-ins, the socket folder, and last the data folder's lock
    for (const stop of started.splice(0).reverse()) await Promise.resolve(stop()).catch(() => {});
  };

  const agent = options.agent !== false ? await startLocalAgent(options, url, token, stopAll) : undefined;
  const stopServer = async () => {
    await agent?.stop();
    await stopAll();
  };
  afterLoss.stop = stopServer;

  ready = true;
  return {
    url,
    token,
    endpoints: { dynamo: { table: TABLE, sdk: standInOptions(dynamo) }, sqs: sqsConfig, controlQueueUrl },
    failed,
    stop: stopServer,
  };
}
