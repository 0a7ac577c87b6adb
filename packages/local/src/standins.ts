import { mkdirSync } from "node:fs";
import { createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import dynalite from "dynalite";
import { buildApp } from "fauxqs";

export interface StandIn {
  endpoint: string;
  stop(): Promise<void>;
}

/** DynamoDB on LevelDB under `path` (in memory when unset), on loopback. */
export async function startDynamo(path?: string, port = 0): Promise<StandIn> {
  if (path) mkdirSync(path, { recursive: true });
  const server = dynalite({ ...(path ? { path } : {}), createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${bound}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  };
}

/** Sees every request and response body on the wire to the SQS stand-in. */
export type WireTap = (direction: "request" | "response", body: string) => void;

/**
 * SQS (fauxqs, in memory) on loopback. With `tap`, a recording proxy stands
 * in front of it, so a test sees every message as it crossed the wire.
 */
export async function startQueues(port = 0, tap?: WireTap): Promise<StandIn> {
  // fauxqs's own startFauxqs listens on every interface whatever its `host` option says; its app, listened on
  // loopback here, is the same server without that hole
  const app = buildApp({ logger: false });
  await app.listen({ port: tap ? 0 : port, host: "127.0.0.1" });
  const server = { port: (app.server.address() as AddressInfo).port, stop: () => app.close() };
  if (!tap) return { endpoint: `http://127.0.0.1:${server.port}`, stop: () => server.stop() };
  const proxy = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      tap("request", body.toString());
      const upstream = httpRequest({ host: "127.0.0.1", port: server.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
        const back: Buffer[] = [];
        up.on("data", (c: Buffer) => back.push(c));
        up.on("end", () => {
          const answer = Buffer.concat(back);
          tap("response", answer.toString());
          res.writeHead(up.statusCode ?? 502, up.headers);
          res.end(answer);
        });
      });
      upstream.on("error", (e) => res.writeHead(502).end(String(e)));
      upstream.end(body);
    });
  });
  await new Promise<void>((resolve) => proxy.listen(port, "127.0.0.1", () => resolve()));
  return {
    endpoint: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    stop: async () => {
      proxy.closeAllConnections();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      await server.stop();
    },
  };
}
