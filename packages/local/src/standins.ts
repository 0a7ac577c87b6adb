import { mkdirSync } from "node:fs";
import { createServer, request as httpRequest, type RequestOptions } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo, Server } from "node:net";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { dynalite } from "./dynalite-safe.js";
import { buildApp } from "fauxqs";
import type { ThreadData, ThreadReply } from "./standins-thread.js";

export interface StandIn {
  /** The endpoint the SDK is given (`http://localhost` when it listens on a socket). */
  endpoint: string;
  /** Set when it listens on a Unix socket instead of a port. */
  socketPath?: string;
  stop(): Promise<void>;
}

/** Where a stand-in listens: a port on loopback (0: any free one), or a Unix socket. */
export type Listen = number | { socket: string };

const listenOn = (server: Server, where: Listen) =>
  new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    if (typeof where === "number") server.listen(where, "127.0.0.1", () => resolve());
    else server.listen(where.socket, () => resolve());
  });

/** Where a stand-in listens once it does: the port it got on loopback, or its socket. */
export type Listening = { port: number } | { socket: string };

const listeningOf = (server: Server, where: Listen): Listening => (typeof where === "number" ? { port: (server.address() as AddressInfo).port } : where);
const endpointAt = (l: Listening): Pick<StandIn, "endpoint" | "socketPath"> =>
  "socket" in l ? { endpoint: "http://localhost", socketPath: l.socket } : { endpoint: `http://127.0.0.1:${l.port}` };
const upstreamAt = (l: Listening): RequestOptions => ("socket" in l ? { socketPath: l.socket } : { host: "127.0.0.1", port: l.port });
const endpointOf = (server: Server, where: Listen) => endpointAt(listeningOf(server, where));

/** Sees every request and response body on the wire to a stand-in. */
export type WireTap = (direction: "request" | "response", body: string) => void;

/** Where a stand-in behind a tap listens itself: a port of its own, or a socket beside the tapped one. */
const innerOf = (where: Listen, tap?: WireTap): Listen => (tap ? (typeof where === "number" ? 0 : { socket: `${where.socket}.upstream` }) : where);
const upstreamOf = (server: Server, inner: Listen) => upstreamAt(listeningOf(server, inner));

/**
 * DynamoDB on LevelDB under `path` (in memory when unset), on loopback or a
 * Unix socket. With `tap`, a recording proxy stands in front of it (a bench
 * counts what an idle control plane asks of its store).
 */
export async function startDynamo(path?: string, where: Listen = 0, tap?: WireTap): Promise<StandIn> {
  if (path) mkdirSync(path, { recursive: true });
  const server = dynalite({ ...(path ? { path } : {}), createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 }) as unknown as Server & { closeAllConnections?: () => void };
  const inner = innerOf(where, tap);
  await listenOn(server, inner);
  const stop = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections?.();
    });
  if (!tap) return { ...endpointOf(server, where), stop };
  return tapped(upstreamOf(server, inner), where, tap, stop);
}

/**
 * SQS (fauxqs, in memory) on loopback or a Unix socket. With `tap`, a
 * recording proxy stands in front of it, so a test sees every message as it
 * crossed the wire.
 */
export async function startQueues(where: Listen = 0, tap?: WireTap): Promise<StandIn> {
  // fauxqs's own startFauxqs listens on every interface whatever its `host` option says; its app, listened on
  // here, is the same server without that hole
  const app = buildApp({ logger: false });
  const inner = innerOf(where, tap);
  if (typeof inner === "number") await app.listen({ port: inner, host: "127.0.0.1" });
  else await app.listen({ path: inner.socket });
  if (!tap) return { ...endpointOf(app.server, where), stop: () => app.close() };
  return tapped(upstreamOf(app.server, inner), where, tap, () => app.close());
}

/** A proxy on `where` in front of `upstream` that shows `tap` every body crossing it, whole. */
async function tapped(upstream: RequestOptions, where: Listen, tap: WireTap, stopUpstream: () => Promise<void>): Promise<StandIn> {
  const proxy = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      tap("request", body.toString());
      const up = httpRequest({ ...upstream, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        const back: Buffer[] = [];
        answer.on("data", (c: Buffer) => back.push(c));
        answer.on("end", () => {
          const text = Buffer.concat(back);
          tap("response", text.toString());
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          res.end(text);
        });
      });
      up.on("error", (e) => res.writeHead(502).end(String(e)));
      up.end(body);
    });
  });
  await listenOn(proxy, where);
  return {
    ...endpointOf(proxy, where),
    stop: async () => {
      proxy.closeAllConnections();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      await stopUpstream();
    },
  };
}

/** Both stand-ins of the embedded server, in a thread of their own (see standins-thread.ts). */
export interface StandInsThread {
  dynamo: StandIn;
  queues: StandIn;
  /** The thread itself: a test ends it as a crash would. */
  thread: Worker;
  /** Stops both, and the thread. */
  stop(): Promise<void>;
}

/**
 * The thread's module: beside this one as TypeScript in a checkout (loaded
 * through tsx, as the sources are), or as the build's chunks/standins-thread.js
 * beside the chunk this code was bundled into (scripts/build.mjs makes it).
 */
function threadModule(): { url: URL; execArgv: string[] } {
  if (!import.meta.url.endsWith(".ts")) return { url: new URL("./standins-thread.js", import.meta.url), execArgv: [] };
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
  return { url: new URL("./standins-thread.ts", import.meta.url), execArgv: ["--import", tsx] };
}

/**
 * DynamoDB on LevelDB under `dynamoPath` and SQS in memory, as startDynamo
 * and startQueues make them, in a worker thread: their work (parsing,
 * LevelDB, queue bookkeeping) runs on a core beside the caller's event loop.
 * With a tap, its recording proxy runs here, in front of the thread's
 * listener. `lost` is called if the thread ends without being told to.
 */
export async function startStandInsThread(options: {
  dynamoPath: string;
  dynamo: Listen;
  queues: Listen;
  storeTap?: WireTap;
  queueTap?: WireTap;
  lost?: (reason: string) => void;
}): Promise<StandInsThread> {
  const { url, execArgv } = threadModule();
  const workerData: ThreadData = { dynamoPath: options.dynamoPath, dynamo: innerOf(options.dynamo, options.storeTap), queues: innerOf(options.queues, options.queueTap) };
  const worker = new Worker(url, { workerData, execArgv });
  let stopping = false;
  const ended = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
  const answer = new Promise<ThreadReply>((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
    worker.once("exit", (code) => reject(new Error(`the stand-ins' thread ended (exit ${code}) before they listened`)));
  });
  const first = await answer.catch(async (e: unknown) => {
    await worker.terminate();
    throw e;
  });
  if ("failed" in first) {
    await ended;
    throw new Error(first.failed);
  }
  // told once: a thread that fails also exits, and the failure says more
  let told = false;
  const tell = (reason: string) => {
    if (stopping || told) return;
    told = true;
    options.lost?.(reason);
  };
  worker.on("error", (e) => tell(`the stand-ins' thread failed: ${e.message}`));
  worker.once("exit", (code) => tell(`the stand-ins' thread ended (exit ${code})`));
  const stopThread = async () => {
    if (stopping) return ended;
    stopping = true;
    worker.postMessage("stop");
    const timer = setTimeout(() => void worker.terminate(), 5000);
    await ended;
    clearTimeout(timer);
  };
  const noop = () => Promise.resolve();
  const front = async (l: Listening, where: Listen, tap?: WireTap): Promise<StandIn> =>
    tap ? tapped(upstreamAt(l), where, tap, noop) : { ...endpointAt(l), stop: noop };
  // a tap's proxy that cannot listen leaves neither the other proxy nor the thread behind
  const made: StandIn[] = [];
  try {
    made.push(await front(first.ready.dynamo, options.dynamo, options.storeTap));
    made.push(await front(first.ready.queues, options.queues, options.queueTap));
  } catch (e) {
    await Promise.all(made.map((m) => m.stop()));
    await stopThread();
    throw e;
  }
  const [dynamo, queues] = made as [StandIn, StandIn];
  return {
    dynamo,
    queues,
    thread: worker,
    async stop() {
      await Promise.all([dynamo.stop(), queues.stop()]);
      await stopThread();
    },
  };
}
