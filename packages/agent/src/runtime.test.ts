import { describe, expect, it } from "vitest";
import { Demuxer, engineUnreachable, staleTask, subnetPool } from "./runtime.js";

describe("stack subnets", () => {
  it("cuts a pool into /24s", () => {
    const pool = subnetPool("10.200.0.0/14");
    expect(pool).toHaveLength(1024);
    expect(pool[0]).toBe("10.200.0.0/24");
    expect(pool[1]).toBe("10.200.1.0/24");
    expect(pool.at(-1)).toBe("10.203.255.0/24");
    expect(subnetPool("192.168.5.0/24")).toEqual(["192.168.5.0/24"]);
    expect(() => subnetPool("10.0.0.0/25")).toThrow("expected an IPv4 network of /24 or larger");
  });
});

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

describe("an engine that cannot be reached", () => {
  const sys = (code: string, syscall: string, message = `${syscall} ${code}`) => Object.assign(new Error(message), { code, syscall });
  it("is a socket nobody listens on, one that is gone, a call cut off, or a dockerd on its way down", () => {
    expect(engineUnreachable(sys("ENOENT", "connect", "connect ENOENT /run/docker.sock"))).toBe(true);
    expect(engineUnreachable(sys("ECONNREFUSED", "connect"))).toBe(true);
    expect(engineUnreachable(sys("ECONNRESET", "read"))).toBe(true);
    expect(engineUnreachable(sys("EPIPE", "write"))).toBe(true);
    expect(engineUnreachable(new Error("socket hang up"))).toBe(true);
    // what dockerd answered in the drill while it stopped: its containerd connection closing under a call
    expect(engineUnreachable(Object.assign(new Error("(HTTP code 500) server error - transport is closing: unavailable"), { statusCode: 500, json: { message: "transport is closing: unavailable" } }))).toBe(true);
    expect(engineUnreachable(new Error("rpc error: code = Unavailable desc = connection error"))).toBe(true);
    expect(engineUnreachable(Object.assign(new Error("(HTTP code 500)"), { statusCode: 500, json: { message: "grpc: the client connection is closing: context canceled" } }))).toBe(true);
    expect(engineUnreachable(Object.assign(new Error("(HTTP code 500)"), { statusCode: 500, json: { message: "failed to update store for object type *libnetwork.endpoint: open : no such file or directory" } }))).toBe(true);
  });

  it("is not a missing file elsewhere, nor anything the engine answered about the step", () => {
    expect(engineUnreachable(sys("ENOENT", "open", "open ENOENT /srv/data"))).toBe(false);
    expect(engineUnreachable(sys("EACCES", "mkdir"))).toBe(false);
    expect(engineUnreachable(Object.assign(new Error("No such container: x"), { statusCode: 404 }))).toBe(false);
    expect(engineUnreachable(Object.assign(new Error("conflict"), { statusCode: 409, json: { message: 'Conflict. The container name "/x" is already in use' } }))).toBe(false);
    expect(engineUnreachable(new Error("pull access denied for nope"))).toBe(false);
    expect(engineUnreachable(undefined)).toBe(false);
  });
});

describe("a task left by a start a dockerd restart cut short", () => {
  it("is containerd's 'task ID: already exists', not an unreachable engine", () => {
    const e = Object.assign(new Error("(HTTP code 500)"), { statusCode: 500, json: { message: "task a35fff0635fc898a0c09faf8bff45797199af03f94d71a7f78474b2d547a221f: already exists" } });
    expect(staleTask(e)).toBe(true);
    expect(engineUnreachable(e)).toBe(false);
    expect(staleTask(new Error('Conflict. The container name "/x" is already in use'))).toBe(false);
  });
});
