import type { IncomingMessage } from "node:http";
import { createRequire } from "node:module";

const builtin = createRequire(import.meta.url);

export interface HttpAnswer {
  status: number;
  text: string;
}

/**
 * One request to the control plane's API, over Node's own http/https
 * client: an agent's few calls (registration, heartbeats, the overlay's
 * answer, a pull's login, a secret) do not need fetch, whose undici client
 * is ~13 MB of a resident agent against ~4 for node:http. Bounded: an
 * answer over `maxBytes` or a server silent for `timeoutMs` fails the call.
 */
export function httpCall(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}, timeoutMs = 30_000, maxBytes = 16 << 20): Promise<HttpAnswer> {
  const target = new URL(url);
  const { request } = (target.protocol === "https:" ? builtin("node:https") : builtin("node:http")) as typeof import("node:http");
  return new Promise((resolve, reject) => {
    const headers = { ...init.headers, ...(init.body !== undefined ? { "content-length": String(Buffer.byteLength(init.body)) } : {}) };
    const req = request(target, { method: init.method ?? "GET", headers }, (res: IncomingMessage) => {
      const parts: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) req.destroy(new Error(`${target.origin}${target.pathname}: the answer is over ${maxBytes} bytes`));
        else parts.push(chunk);
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString("utf8") }));
      res.on("error", reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${target.origin}${target.pathname}: no answer within ${Math.round(timeoutMs / 1000)} s`)));
    req.on("error", reject);
    req.end(init.body);
  });
}
