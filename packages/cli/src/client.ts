import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { join } from "node:path";

/** A refusal or failure to show the user (stderr, non-zero exit). */
export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    readonly status?: number,
    /** Every problem the API found in the compose files. */
    readonly issues?: Array<{ file: string; path: string; reason: string }>,
    /** Seconds the server asked to wait before trying again (429). */
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

export interface ClientConfig {
  url: string;
  token: string;
}

/** CORRAL_URL and CORRAL_TOKEN, falling back to the local server's token file. */
export function clientConfig(env = process.env): ClientConfig {
  const url = (env.CORRAL_URL ?? "http://127.0.0.1:8080").replace(/\/$/, "");
  let token = env.CORRAL_TOKEN;
  if (!token) {
    const file = join(env.CORRAL_DATA ?? join(homedir(), ".corral"), "token");
    try {
      token = readFileSync(file, "utf8").trim();
    } catch {
      throw new CliError(`no token: set CORRAL_TOKEN, or start 'corral server' (it writes ${file})`);
    }
  }
  return { url, token };
}

/** An answer, as far as the CLI reads one. */
interface Answer {
  status: number;
  statusText: string;
  header(name: string): string | undefined;
  text(): Promise<string>;
  body: AsyncIterable<Uint8Array>;
}

const builtin = createRequire(import.meta.url);

/**
 * One HTTP request through node:http (or https): not fetch, whose client
 * (undici) takes longer to load than a whole `corral ps` takes otherwise.
 */
async function call(url: string, method: string, headers: Record<string, string>, body: string | undefined, signal?: AbortSignal): Promise<Answer> {
  const target = new URL(url);
  // required, not imported: an import of node:http reads all its exports, and one of them (WebSocket) loads undici
  const { request } = (target.protocol === "https:" ? builtin("node:https") : builtin("node:http")) as typeof import("node:http");
  return new Promise<Answer>((resolve, reject) => {
    const sent = { ...headers, ...(body !== undefined ? { "content-length": String(Buffer.byteLength(body)) } : {}) };
    const req = request(target, { method, headers: sent, ...(signal ? { signal } : {}) }, (res: IncomingMessage) =>
      resolve({
        status: res.statusCode ?? 0,
        statusText: res.statusMessage ?? "",
        header: (name) => {
          const v = res.headers[name.toLowerCase()];
          return Array.isArray(v) ? v[0] : v;
        },
        text: async () => {
          const parts: Buffer[] = [];
          for await (const chunk of res) parts.push(chunk as Buffer);
          return Buffer.concat(parts).toString("utf8");
        },
        body: res,
      }),
    );
    req.on("error", reject);
    req.end(body);
  });
}

const ok = (a: Answer) => a.status >= 200 && a.status < 300;
/** Why a request got no answer: the socket's error code, as a user reads it. */
const unreachable = (e: unknown) => (e as { code?: string }).code ?? (e as { cause?: { code?: string } }).cause?.code ?? String(e);

export class ApiClient {
  constructor(private readonly config: ClientConfig) {}

  /** A streamed answer (server-sent events): its body, once the status says it is one. */
  async stream(path: string, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    let res: Answer;
    try {
      res = await call(`${this.config.url}${path}`, "GET", { authorization: `Bearer ${this.config.token}`, accept: "text/event-stream" }, undefined, signal);
    } catch (e) {
      if (signal?.aborted) return (async function* () {})();
      throw new CliError(`cannot reach corral at ${this.config.url} (${unreachable(e)}); is 'corral server' running?`);
    }
    if (!ok(res)) {
      const body = (await res.text().then((t) => JSON.parse(t) as unknown).catch(() => undefined)) as { error?: string; message?: string } | undefined;
      if (body?.error === "no_route") throw this.unknownRequest(res.status);
      throw new CliError(body?.message ?? `${res.status} ${res.statusText}`, res.status);
    }
    return res.body;
  }

  /**
   * A long-poll (GET with `wait=`). A 429 means this token holds as many
   * follows as the server allows at once: wait as its Retry-After says, and ask again.
   */
  async poll<T>(path: string, signal?: AbortSignal): Promise<T> {
    for (;;) {
      try {
        return await this.request<T>("GET", path, undefined, {}, signal);
      } catch (e) {
        if (!(e instanceof CliError) || e.status !== 429) throw e;
        const { setTimeout: sleep } = await import("node:timers/promises");
        await sleep(1000 * Math.min(Math.max(e.retryAfter ?? 1, 1), 10), undefined, signal ? { signal } : {});
      }
    }
  }

  private unknownRequest(status: number): CliError {
    return new CliError(`the corral server at ${this.config.url} does not know this command; is it an older version than this CLI (corral --version)?`, status);
  }

  async request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<T> {
    let res: Answer;
    let text: string;
    try {
      const sent = { authorization: `Bearer ${this.config.token}`, "x-corral-source": "cli", ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers };
      res = await call(`${this.config.url}${path}`, method, sent, body === undefined ? undefined : JSON.stringify(body), signal);
      text = await res.text();
    } catch (e) {
      if (signal?.aborted) throw e;
      throw new CliError(`cannot reach corral at ${this.config.url} (${unreachable(e)}); is 'corral server' running?`);
    }
    const parsed = text ? (JSON.parse(text) as unknown) : undefined;
    if (!ok(res)) {
      const body = parsed as { error?: string; message?: string; issues?: Array<{ file: string; path: string; reason: string }> } | undefined;
      // a request the server has no route for: this CLI asks what that server does not know (the CLI never builds
      // a route out of what a user typed); say so in a user's words, not the route's
      if (body?.error === "no_route") throw this.unknownRequest(res.status);
      const retryAfter = Number(res.header("retry-after") ?? Number.NaN);
      throw new CliError(body?.message ?? `${res.status} ${res.statusText}`, res.status, body?.issues, Number.isFinite(retryAfter) ? retryAfter : undefined);
    }
    return parsed as T;
  }
}
