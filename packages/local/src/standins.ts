import { mkdirSync } from "node:fs";
import type { AddressInfo } from "node:net";
import dynalite from "dynalite";
import { startFauxqs } from "fauxqs";

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

/** SQS (fauxqs, in memory) on loopback. */
export async function startQueues(port = 0): Promise<StandIn> {
  const server = await startFauxqs({ port, host: "127.0.0.1", logger: false });
  return { endpoint: `http://127.0.0.1:${server.port}`, stop: () => server.stop() };
}
