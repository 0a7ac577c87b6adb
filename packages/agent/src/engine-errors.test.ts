import { describe, expect, it } from "vitest";
import { engineSettling, engineUnreachable, staleTask } from "./engine-errors.js";

describe("an engine that cannot be reached", () => {
  const sys = (code: string, syscall: string, message = `${syscall} ${code}`) => Object.assign(new Error(message), { code, syscall });
  it("is a socket nobody listens on, one that is gone, a call cut off, or a dockerd on its way down", () => {
    expect(engineUnreachable(sys("ENOENT", "connect", "connect ENOENT /run/docker.sock"))).toBe(true);
    expect(engineUnreachable(sys("ECONNREFUSED", "connect"))).toBe(true);
    expect(engineUnreachable(sys("ECONNRESET", "read"))).toBe(true);
    expect(engineUnreachable(sys("EPIPE", "write"))).toBe(true);
    expect(engineUnreachable(new Error("socket hang up"))).toBe(true);
    // what dockerd answered in the drill while it stopped: its containerd connection closing under a call
    const closing = Object.assign(new Error("(HTTP code 500) server error - transport is closing: unavailable"), { statusCode: 500, json: { message: "transport is closing: unavailable" } });
    expect(engineUnreachable(closing)).toBe(true);
    expect(engineUnreachable(new Error("rpc error: code = Unavailable desc = connection error"))).toBe(true);
    expect(engineUnreachable(Object.assign(new Error("(HTTP code 500)"), { statusCode: 500, json: { message: "grpc: the client connection is closing: context canceled" } }))).toBe(true);
    const store = { message: "failed to update store for object type *libnetwork.endpoint: open : no such file or directory" };
    expect(engineUnreachable(Object.assign(new Error("(HTTP code 500)"), { statusCode: 500, json: store }))).toBe(true);
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

describe("an engine just back, still holding a container's files", () => {
  it("says so in its answer to a removal; other refusals are not that", () => {
    const answer = (message: string) => Object.assign(new Error(`(HTTP code 500) server error - ${message}`), { statusCode: 500, json: { message } });
    expect(engineSettling(answer('container a74a: driver "overlay2" failed to remove root filesystem: unlinkat /d/overlay2/96/merged: device or resource busy'))).toBe(true);
    expect(engineSettling(answer("No such container: demo-web-1"))).toBe(false);
    expect(engineSettling(answer("You cannot remove a running container"))).toBe(false);
  });
});
