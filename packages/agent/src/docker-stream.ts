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
