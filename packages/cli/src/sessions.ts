import { displayName, parseDuration } from "@corral/core/light";
import { CliError, once, type ApiBody, type ApiClient, type ApiInput, type ApiOutput } from "./client.js";

/** Where session output goes: raw bytes, stdout and stderr kept apart. */
export type RawOut = (stream: "stdout" | "stderr", text: string) => void;

export const processRawOut: RawOut = (stream, text) => void (stream === "stderr" ? process.stderr : process.stdout).write(text);

/** A page of a session's output; `silent`: the hosts that have not answered yet. */
type Page = ApiOutput<"/v1/sessions/:id", "$get">;

/** How long a host may take to pick a session up before the CLI gives up on it. */
const ANSWER_MS = Number(process.env.CORRAL_SESSION_ANSWER_MS ?? 30_000);

/** exec -i: what the user types (or pipes) goes to the command's stdin, in order, then its end. */
function pumpInput(api: ApiClient, id: string, input: NodeJS.ReadableStream): void {
  let seq = 0;
  let chain: Promise<unknown> = Promise.resolve();
  const send = (data: Buffer, eof: boolean) => {
    const body = { seq: seq++, data: data.toString("base64"), eof };
    chain = chain.then(() => api.post("/v1/sessions/:id/input", { param: { id }, json: body }).catch(() => {}));
  };
  input.on("data", (d: Buffer) => send(d, false));
  input.on("end", () => send(Buffer.alloc(0), true));
}

/** `--since`: unix seconds, a duration back from now (10m, 1h30m), or a date. */
export function sinceSeconds(value: string, now = Date.now()): number {
  if (/^\d+$/.test(value)) return Number(value);
  const ms = parseDuration(value);
  if (ms !== undefined) return Math.floor((now - ms) / 1000);
  const at = Date.parse(value);
  if (!Number.isNaN(at)) return Math.floor(at / 1000);
  throw new CliError(`--since ${value}: expected a duration (10m, 2h), a date (2026-11-22T10:00:00Z) or unix seconds`);
}

/**
 * Open a session (logs or exec), print what the hosts send back until it
 * ends, and answer its exit code. With several containers, or a stack, each
 * line gets the container's name as a prefix. Ctrl-C cancels the session.
 */
export async function runSession(api: ApiClient, body: ApiBody<"/v1/sessions", "$post">, out: RawOut, signal?: AbortSignal, input?: NodeJS.ReadableStream): Promise<number> {
  const opened = await api.post("/v1/sessions", { json: body }, once());
  if (input) pumpInput(api, opened.id, input);
  // a stack's lines always say which container wrote them (as compose's do), a service's when it has several
  const prefix = opened.containers.length > 1 || opened.of === "stack";
  const partial = new Map<string, string>();
  const width = Math.max(...opened.containers.map((c) => displayName(c).length));
  const emit = (container: string, stream: "stdout" | "stderr", text: string, final = false) => {
    if (!prefix) return out(stream, text);
    const key = `${container}\u0000${stream}`;
    const lines = ((partial.get(key) ?? "") + text).split("\n");
    const rest = lines.pop() ?? "";
    const shown = displayName(container); // the engine's name may differ from the one users know
    for (const line of lines) out(stream, `${shown.padEnd(width)} | ${line}\n`);
    if (final && rest) out(stream, `${shown.padEnd(width)} | ${rest}\n`);
    partial.set(key, final ? "" : rest);
  };
  let cancelled: Promise<unknown> | undefined;
  const polling = new AbortController();
  const cancel = () => {
    cancelled = api.delete("/v1/sessions/:id", { param: { id: opened.id } }).catch(() => {});
    polling.abort();
  };
  signal?.addEventListener("abort", cancel, { once: true });
  let cursor: Record<string, number> = {};
  const openedAt = Date.now();
  try {
    for (;;) {
      const page = await api
        .poll("/v1/sessions/:id", { param: { id: opened.id }, query: { cursor: JSON.stringify(cursor), wait: "5" } }, polling.signal)
        .catch((e: unknown) => {
          if (cancelled) return { chunks: [], cursor, done: true, errors: [], silent: [] } satisfies Page;
          throw e;
        });
      for (const c of page.chunks) emit(c.container, c.stream, Buffer.from(c.data, "base64").toString());
      cursor = page.cursor;
      if (!page.done && !cancelled && (page.silent?.length ?? 0) > 0 && Date.now() - openedAt > ANSWER_MS) {
        await api.delete("/v1/sessions/:id", { param: { id: opened.id } }).catch(() => {});
        throw new CliError(`host ${page.silent!.join(", ")} did not answer in ${Math.round(ANSWER_MS / 1000)} s: is its agent running? ('corral host ls')`);
      }
      if (page.done || cancelled) {
        for (const key of partial.keys()) {
          const [container, stream] = key.split("\u0000") as [string, "stdout" | "stderr"];
          emit(container, stream, "", true);
        }
        for (const e of page.errors ?? []) out("stderr", `error: ${e}\n`);
        if (cancelled) {
          await cancelled;
          return 0;
        }
        await api.delete("/v1/sessions/:id", { param: { id: opened.id } }).catch(() => {}); // read to the end: the API may forget it
        return "exitCode" in page ? page.exitCode : 0;
      }
    }
  } finally {
    signal?.removeEventListener("abort", cancel);
  }
}

export interface StreamedEvent {
  at: string;
  stack: string;
  version: number;
  type: string;
  line: string | null;
}

/** Read a server-sent event stream (eventsource-parser) until it ends or `signal` aborts. */
export async function streamEvents(api: ApiClient, query: ApiInput<"/v1/events", "$get">["query"], onEvent: (e: StreamedEvent) => void, signal?: AbortSignal): Promise<void> {
  const res = await api.stream("/v1/events", { query }, signal);
  const { createParser } = await import("eventsource-parser");
  const parser = createParser({ onEvent: (m) => onEvent(JSON.parse(m.data) as StreamedEvent) });
  const decoder = new TextDecoder();
  try {
    for await (const chunk of res) parser.feed(decoder.decode(chunk as Uint8Array, { stream: true }));
  } catch (e) {
    if (!signal?.aborted) throw e;
  }
}
