import { describe, expect, it } from "vitest";
import { containerEvents, Demuxer, watchEngineEvents } from "./docker-stream.js";
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

describe("the engine's event stream, watched", () => {
  it("is opened again once it ends or breaks, from a second before, and what comes on the new one is heard; not after the watch is stopped", async () => {
    const { PassThrough } = await import("node:stream");
    const opened: Array<{ options: { since?: number }; stream: InstanceType<typeof PassThrough> }> = [];
    const heard: string[] = [];
    const stop = watchEngineEvents(
      (options) => {
        const stream = new PassThrough();
        opened.push({ options: options as { since?: number }, stream });
        return Promise.resolve(stream);
      },
      (e) => heard.push(`${e.action} ${e.name}`),
    );
    const event = (action: string, name: string) => `${JSON.stringify({ Type: "container", Action: action, Actor: { ID: "a".repeat(64), Attributes: { name } } })}\n`;
    await new Promise((r) => setTimeout(r, 10));
    expect(opened[0]!.options.since).toBeUndefined();
    opened[0]!.stream.write(event("start", "one"));
    const before = Math.floor(Date.now() / 1000);
    opened[0]!.stream.destroy(new Error("socket hang up")); // the engine went away
    await new Promise((r) => setTimeout(r, 1200));
    expect(opened).toHaveLength(2);
    expect(opened[1]!.options.since).toBeGreaterThanOrEqual(before - 1);
    expect(opened[1]!.options.since).toBeLessThanOrEqual(before);
    opened[1]!.stream.write(event("die", "two"));
    await new Promise((r) => setTimeout(r, 10));
    expect(heard).toEqual(["start one", "die two"]);
    stop();
    await new Promise((r) => setTimeout(r, 1200));
    expect(opened).toHaveLength(2);
  });
});
