import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import type { ApiRoutes } from "@corral/api";
import type { ExtractSchema } from "hono/types";
import type { SuccessStatusCode } from "hono/utils/http-status";
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

// The API's routes as types only (nothing of @corral/api or hono runs in the CLI): each call below is checked against
// the route it names, its path parameters, query and JSON body as the route's validators take them, and answers
// the route's JSON as its handlers write it; a route that changes so that a call no longer fits fails the typecheck.
type Routes = ExtractSchema<ApiRoutes>;
export type ApiPath = keyof Routes & string;
export type Verb = "$get" | "$post" | "$put" | "$delete";
/** The paths that answer `verb`. */
export type PathOf<V extends Verb> = { [P in ApiPath]: V extends keyof Routes[P] ? P : never }[ApiPath];
type Endpoint<P extends ApiPath, V extends Verb> = Routes[P][V & keyof Routes[P]];
/** An object with nothing required in it (`Empty extends T`: T may be given as `{}`). */
type Empty = Record<never, never>;
/** What a route takes; a part with nothing required in it (a body of options, an optional query) may be left out. */
type Loose<I> = { [K in keyof I as Empty extends I[K] ? K : never]?: I[K] } & { [K in keyof I as Empty extends I[K] ? never : K]: I[K] };
export type ApiInput<P extends ApiPath, V extends Verb> = Loose<Endpoint<P, V> extends { input: infer I } ? I : never>;
/** A route's JSON body. */
export type ApiBody<P extends ApiPath, V extends Verb> = NonNullable<ApiInput<P, V> extends { json?: infer J } ? J : never>;
/** What a route answers with a 2xx, as JSON (its errors are CliErrors). */
export type ApiOutput<P extends ApiPath, V extends Verb> =
  Endpoint<P, V> extends infer E ? (E extends { output: infer O; outputFormat: "json"; status: infer S } ? ([Extract<S, SuccessStatusCode>] extends [never] ? never : O) : never) : never;
export interface CallOptions {
  headers?: Record<string, string>;
  signal?: AbortSignal;
}
/** A change sent once: its idempotency key makes a repeat (a lost answer, a retry) answer as the first did. */
export const once = (): CallOptions => ({ headers: { "idempotency-key": crypto.randomUUID() } });
/** A call's input and options, the input optional when nothing in it is required. */
type Args<P extends ApiPath, V extends Verb> = Empty extends ApiInput<P, V> ? [input?: ApiInput<P, V>, options?: CallOptions] : [input: ApiInput<P, V>, options?: CallOptions];

/** A call's input, as the transport reads it. */
interface Given {
  param?: Record<string, string>;
  query?: Record<string, string | undefined>;
  json?: unknown;
}

/** A route's path with its parameters filled in (each one segment: a '/' or '?' in what a user typed never makes another route), and its query. */
export function routeUrl(path: string, input: Given = {}): string {
  const filled = path.replace(/:([A-Za-z0-9_]+)/g, (_, name: string) => {
    const value = input.param?.[name];
    if (value === undefined) throw new Error(`${path}: no value for :${name}`);
    return encodeURIComponent(value);
  });
  const query = Object.entries(input.query ?? {}).flatMap(([k, v]) => (v === undefined ? [] : [`${encodeURIComponent(k)}=${encodeURIComponent(v)}`]));
  return query.length ? `${filled}?${query.join("&")}` : filled;
}

const ok = (a: Answer) => a.status >= 200 && a.status < 300;
/** Why a request got no answer: the socket's error code, as a user reads it. */
const unreachable = (e: unknown) => (e as { code?: string }).code ?? (e as { cause?: { code?: string } }).cause?.code ?? String(e);

export class ApiClient {
  constructor(private readonly config: ClientConfig) {}

  /** A streamed answer (server-sent events): its body, once the status says it is one. */
  async stream<P extends PathOf<"$get">>(path: P, input: ApiInput<P, "$get">, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    let res: Answer;
    try {
      res = await call(`${this.config.url}${routeUrl(path, input as Given)}`, "GET", { authorization: `Bearer ${this.config.token}`, accept: "text/event-stream" }, undefined, signal);
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
  async poll<P extends PathOf<"$get">>(path: P, input: ApiInput<P, "$get">, signal?: AbortSignal): Promise<ApiOutput<P, "$get">> {
    for (;;) {
      try {
        return (await this.request("GET", routeUrl(path, input as Given), undefined, {}, signal)) as ApiOutput<P, "$get">;
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

  /** A call to a route, checked against it: `call("$post", "/v1/stacks/:stack/up", { param: { stack }, json })` answers what the route answers. */
  call<V extends Verb, P extends PathOf<V>>(verb: V, path: P, ...[input, options]: Args<P, V>): Promise<ApiOutput<P, V>> {
    const given = (input ?? {}) as Given;
    return this.request(verb.slice(1).toUpperCase(), routeUrl(path, given), given.json, options?.headers, options?.signal) as Promise<ApiOutput<P, V>>;
  }

  get<P extends PathOf<"$get">>(path: P, ...args: Args<P, "$get">) {
    return this.call("$get", path, ...args);
  }

  post<P extends PathOf<"$post">>(path: P, ...args: Args<P, "$post">) {
    return this.call("$post", path, ...args);
  }

  put<P extends PathOf<"$put">>(path: P, ...args: Args<P, "$put">) {
    return this.call("$put", path, ...args);
  }

  delete<P extends PathOf<"$delete">>(path: P, ...args: Args<P, "$delete">) {
    return this.call("$delete", path, ...args);
  }

  private async request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<unknown> {
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
    return parsed;
  }
}
