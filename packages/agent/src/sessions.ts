import type { Logger, SessionChunk, SessionMessage } from "@corral/core";
import { engineMessage } from "./engine-errors.js";
import type { ContainerRuntime } from "./runtime.js";

export interface SessionEndBody {
  exitCode?: number;
  error?: string;
}

/** Posts a session's chunks to the API under the host's token; the answer says whether anyone still listens. */
export type SessionPost = (sessionId: string, body: { chunks: SessionChunk[]; end?: SessionEndBody }) => Promise<{ cancelled: boolean }>;

/** Long-polls the API for an interactive exec's input after `after` (the host's token). */
export type SessionInput = (sessionId: string, after: number) => Promise<{ input: Array<{ seq: number; data: string; eof: boolean }>; cancelled: boolean }>;

const MAX_CHUNK = 32 * 1024;

/** The API takes at most 8 MiB and 1000 chunks a post: a post carries at most 4 MiB of base64 and 500 chunks. */
const POST_BYTES = 4 * 1024 * 1024;
const POST_CHUNKS = 500;
function batches(chunks: SessionChunk[]): SessionChunk[][] {
  const out: SessionChunk[][] = [[]];
  let size = 0;
  for (const c of chunks) {
    const current = out.at(-1)!;
    if (current.length > 0 && (current.length >= POST_CHUNKS || size + c.data.length > POST_BYTES)) {
      out.push([c]);
      size = c.data.length;
    } else {
      current.push(c);
      size += c.data.length;
    }
  }
  return out;
}

/** A session's output on its way to the API: merged into chunks, numbered, posted one request at a time, retried with the same numbers. */
class Outbox {
  #queue: Array<{ container: string; stream: "stdout" | "stderr"; data: Buffer }> = [];
  #seq = 0;
  #timer: NodeJS.Timeout | undefined;
  #posting: Promise<void> = Promise.resolve();
  cancelled = false;

  constructor(
    private readonly id: string,
    private readonly post: SessionPost,
    private readonly onCancel: () => void,
    private readonly flushMs: number,
  ) {}

  add(container: string, stream: "stdout" | "stderr", data: Buffer): void {
    if (this.cancelled) return;
    const last = this.#queue.at(-1);
    if (last && last.container === container && last.stream === stream && last.data.length + data.length <= MAX_CHUNK) last.data = Buffer.concat([last.data, data]);
    else this.#queue.push({ container, stream, data });
    this.#timer ??= setTimeout(() => void this.flush(), this.flushMs);
  }

  /** Tell the API the session has arrived here, before any output. */
  hello(): Promise<void> {
    this.#posting = this.#posting.then(async () => this.#heard(await this.post(this.id, { chunks: [] }).catch(() => ({ cancelled: false }))));
    return this.#posting;
  }

  /** Nobody listens any more: stop what feeds this outbox. */
  #heard(answer: { cancelled: boolean }): void {
    if (!answer.cancelled) return;
    this.cancelled = true;
    this.onCancel();
  }

  flush(end?: SessionEndBody): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const chunks = this.#queue.splice(0).map((c) => ({ seq: this.#seq++, container: c.container, stream: c.stream, data: c.data.toString("base64") }));
    this.#posting = this.#posting.then(async () => {
      if (this.cancelled || (chunks.length === 0 && !end)) return;
      // a burst goes in several posts, each well inside the API's body limit; the end rides with the last
      const posts = batches(chunks);
      for (const [i, part] of posts.entries()) {
        const last = i === posts.length - 1;
        for (let attempt = 0; ; attempt++) {
          try {
            this.#heard(await this.post(this.id, { chunks: part, ...(end && last ? { end } : {}) }));
            break;
          } catch (e) {
            if (attempt >= 5) throw e;
            await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
          }
        }
        if (this.cancelled) return;
      }
    });
    return this.#posting;
  }
}

/**
 * Runs the sessions that arrive on the host's queue (logs, exec) beside the
 * steps, and streams their output back to the API. A message delivered twice
 * starts one session.
 */
export class SessionRunner {
  readonly #seen = new Set<string>();
  readonly #stops = new Map<string, () => void>();

  constructor(
    private readonly o: { runtime: ContainerRuntime; post: SessionPost; input?: SessionInput; log?: Logger; flushMs?: number },
  ) {}

  handle(message: SessionMessage): void {
    if (this.#seen.has(message.id)) return;
    this.#seen.add(message.id);
    if (this.#seen.size > 10_000) this.#seen.delete(this.#seen.values().next().value as string);
    void this.#run(message)
      .catch((e: unknown) => this.o.log?.error("session failed", { session: message.id, error: String(e) }))
      .finally(() => this.#stops.delete(message.id));
  }

  /** exec -i / -t: the command's stdin is fed from the input the user posts, its output goes back as chunks. */
  async #interactive(m: SessionMessage, stops: Array<() => void>, box: Outbox): Promise<void> {
    const container = m.containers[0]!;
    let proc;
    try {
      proc = await this.o.runtime.execInteractive(container, m.exec!.cmd, m.exec!.tty, (stream, data) => box.add(container, stream, data));
    } catch (e) {
      await box.flush({ error: `${container}: ${engineMessage(e)}` });
      return;
    }
    let finished = false;
    stops.push(() => proc.kill());
    // the input pump ends with the command (its last long-poll just runs out)
    void (async () => {
      let after = -1;
      while (!finished && !box.cancelled) {
        const got = await this.o.input!(m.id, after).catch(() => undefined);
        if (!got) {
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        if (got.cancelled) return proc.kill();
        for (const i of got.input) {
          after = i.seq;
          if (i.data) proc.write(Buffer.from(i.data, "base64"));
          if (i.eof) return proc.end();
        }
      }
    })();
    const exitCode = await proc.done;
    finished = true;
    await box.flush({ exitCode });
  }

  /** Stop following: the agent is going away. */
  stop(): void {
    for (const stop of this.#stops.values()) stop();
  }

  async #run(m: SessionMessage): Promise<void> {
    const stops: Array<() => void> = [];
    const stopAll = () => stops.forEach((s) => s());
    this.#stops.set(m.id, stopAll);
    // an interactive exec answers keystrokes: its output goes out sooner
    const interactive = m.type === "exec" && (m.exec?.interactive || m.exec?.tty) && this.o.input !== undefined;
    const box = new Outbox(m.id, this.o.post, stopAll, interactive ? 5 : (this.o.flushMs ?? 25));
    void box.hello();
    if (interactive) {
      await this.#interactive(m, stops, box);
      return;
    }
    if (m.type === "exec") {
      const container = m.containers[0]!;
      try {
        const exitCode = await this.o.runtime.exec(container, m.exec?.cmd ?? [], (stream, data) => box.add(container, stream, data));
        await box.flush({ exitCode });
      } catch (e) {
        await box.flush({ error: `${container}: ${engineMessage(e)}` });
      }
      return;
    }
    const errors: string[] = [];
    const options = m.logs ?? { follow: false, timestamps: false };
    const handles = await Promise.all(
      m.containers.map((name) =>
        this.o.runtime.logs(name, options, (stream, data) => box.add(name, stream, data)).catch((e: unknown) => {
          errors.push(`${name}: ${engineMessage(e)}`);
          return undefined;
        }),
      ),
    );
    for (const h of handles) if (h) stops.push(h.stop);
    if (box.cancelled) stopAll();
    await Promise.all(handles.map((h) => h?.done));
    await box.flush(errors.length ? { error: errors.join("; ") } : { exitCode: 0 });
  }
}
