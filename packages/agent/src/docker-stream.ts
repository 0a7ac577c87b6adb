/** Reading what Docker streams back: multiplexed output, events, and the exit code once an exec is done. */

import type { ContainerEvent, OutputSink } from "./runtime.js";

/** Docker's multiplexed output (8-byte frame headers: stream, size), parsed as it arrives. */
export class Demuxer {
  #pending: Buffer = Buffer.alloc(0);
  constructor(private readonly sink: OutputSink) {}

  write(chunk: Buffer): void {
    this.#pending = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    while (this.#pending.length >= 8) {
      const size = this.#pending.readUInt32BE(4);
      if (this.#pending.length < 8 + size) break;
      const type = this.#pending[0];
      const data = this.#pending.subarray(8, 8 + size);
      this.#pending = this.#pending.subarray(8 + size);
      if (type === 1 || type === 2) this.sink(type === 2 ? "stderr" : "stdout", Buffer.from(data));
    }
  }
}

/** An exec's exit code, once Docker has seen its output end and the process go (it may lag a little). */
export async function waitExit(inspect: () => Promise<{ Running?: boolean; ExitCode?: number | null } | undefined>, gone: number): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const state = await inspect();
    if (!state?.Running) return state?.ExitCode ?? gone;
    await new Promise((r) => setTimeout(r, 20));
  }
  return (await inspect())?.ExitCode ?? gone;
}

/** Docker's event stream (a JSON object a line), parsed as it arrives: each container event to `listener`. */
export function containerEvents(listener: (event: ContainerEvent) => void): (chunk: Buffer) => void {
  let buffered = "";
  return (chunk) => {
    buffered += chunk.toString();
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const line of lines.filter((l) => l.trim())) {
      try {
        const e = JSON.parse(line) as { id?: string; Action?: string; Actor?: { Attributes?: Record<string, string> } };
        const attrs = e.Actor?.Attributes ?? {};
        listener({ id: e.id ?? "", name: attrs.name ?? "", action: e.Action ?? "", labels: attrs });
      } catch {
        // a partial or foreign line: the next event brings the state anyway
      }
    }
  };
}

/**
 * Docker's container events to `listener` (start, die, stop, health, destroy,
 * rename), until the returned function is called. Once the stream ends or
 * breaks (the engine restarting), it is opened again a second later, from a
 * second before it ended: Docker replays what happened meanwhile (the
 * starts of its restart policies, as the engine came back).
 */
export function watchEngineEvents(getEvents: (options: object) => Promise<NodeJS.ReadableStream>, listener: (event: ContainerEvent) => void): () => void {
  let stream: (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
  let stopped = false;
  let heard: number | undefined;
  const open = () => {
    getEvents({ ...(heard !== undefined ? { since: heard } : {}), filters: { type: ["container"], event: ["start", "die", "stop", "health_status", "destroy", "rename"] } })
      .then((s) => {
        stream = s as typeof stream;
        if (stopped) return stream?.destroy?.();
        s.on("data", containerEvents(listener));
        // an engine going away ends the stream, or breaks it (an error, then close): either way it is opened again, once
        let again = false;
        const reopen = () => {
          if (again) return;
          again = true;
          heard = Math.floor(Date.now() / 1000) - 1;
          if (!stopped) setTimeout(open, 1000).unref();
        };
        s.on("error", reopen);
        s.on("end", reopen);
        s.on("close", reopen);
      })
      .catch(() => !stopped && setTimeout(open, 1000).unref());
  };
  open();
  return () => {
    stopped = true;
    stream?.destroy?.();
  };
}
