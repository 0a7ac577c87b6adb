import { describe, expect, it } from "vitest";
import { containerEvents, Demuxer } from "./docker-stream.js";
import type { ContainerEvent } from "./runtime.js";

describe("Docker's multiplexed output", () => {
  it("splits frames into stdout and stderr, across chunk boundaries", () => {
    const frame = (type: number, text: string) => {
      const body = Buffer.from(text);
      const head = Buffer.alloc(8);
      head[0] = type;
      head.writeUInt32BE(body.length, 4);
      return Buffer.concat([head, body]);
    };
    const seen: string[] = [];
    const d = new Demuxer((stream, data) => seen.push(`${stream}:${data.toString()}`));
    const all = Buffer.concat([frame(1, "out\n"), frame(2, "err\n"), frame(1, "more")]);
    d.write(all.subarray(0, 5));
    d.write(all.subarray(5, 15));
    d.write(all.subarray(15));
    expect(seen).toEqual(["stdout:out\n", "stderr:err\n", "stdout:more"]);
  });
});

describe("Docker's event stream", () => {
  it("gives each container event once its line is whole, and skips a line that is not an event", () => {
    const seen: ContainerEvent[] = [];
    const write = containerEvents((e) => seen.push(e));
    const line = (id: string, action: string) => JSON.stringify({ id, Action: action, Actor: { Attributes: { name: `c-${id}`, "io.corral.stack": "demo" } } });
    const all = `${line("a1", "start")}\nnot json\n${line("b2", "health_status: healthy")}\n`;
    write(Buffer.from(all.slice(0, 20)));
    expect(seen).toEqual([]);
    write(Buffer.from(all.slice(20, -5)));
    write(Buffer.from(all.slice(-5)));
    expect(seen).toEqual([
      { id: "a1", name: "c-a1", action: "start", labels: { name: "c-a1", "io.corral.stack": "demo" } },
      { id: "b2", name: "c-b2", action: "health_status: healthy", labels: { name: "c-b2", "io.corral.stack": "demo" } },
    ]);
  });
});
