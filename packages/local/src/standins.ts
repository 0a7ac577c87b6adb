import { mkdirSync } from "node:fs";
import { createServer, request as httpRequest, type RequestOptions } from "node:http";
import type { AddressInfo, Server } from "node:net";
import { dynalite } from "./dynalite-safe.js";
import { buildApp } from "fauxqs";

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
const endpointOf = (server: Server, where: Listen): Pick<StandIn, "endpoint" | "socketPath"> =>
  typeof where === "number" ? { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}` } : { endpoint: "http://localhost", socketPath: where.socket };

/** Sees every request and response body on the wire to a stand-in. */
export type WireTap = (direction: "request" | "response", body: string) => void;

/** Where a stand-in behind a tap listens itself: a port of its own, or a socket beside the tapped one. */
const innerOf = (where: Listen, tap?: WireTap): Listen => (tap ? (typeof where === "number" ? 0 : { socket: `${where.socket}.upstream` }) : where);
const upstreamOf = (server: Server, inner: Listen): RequestOptions =>
  typeof inner === "number" ? { host: "127.0.0.1", port: (server.address() as AddressInfo).port } : { socketPath: inner.socket };

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
