import { createServer } from "node:net";
import { existsSync, mkdtempSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { prepareSockets, socketFolder } from "./sockets.js";

// The stand-ins' sockets stay where they were across a restart of `corral server`: an agent that outlived it
// reaches its queues again at the same place.
describe("socketFolder", () => {
  it("is DATA/run, the same at every start", () => {
    expect(socketFolder("/home/u/.corral")).toBe("/home/u/.corral/run");
    expect(socketFolder("/home/u/.corral")).toBe(socketFolder("/home/u/.corral"));
  });

  it("is a folder in the temporary directory, named after the data folder and the user, when DATA/run is too long for a socket", () => {
    const long = `/data/${"x".repeat(120)}`;
    const folder = socketFolder(long, 1000, "/tmp");
    expect(folder).toMatch(/^\/tmp\/corral-1000-[0-9a-f]{16}$/);
    expect(socketFolder(long, 1000, "/tmp")).toBe(folder);
    expect(socketFolder(`${long}y`, 1000, "/tmp")).not.toBe(folder);
  });
});

describe("prepareSockets", () => {
  it("makes the folder 0700 and clears the sockets a killed server left", async () => {
    const folder = join(mkdtempSync(join(tmpdir(), "corral-sockets-")), "run");
    const first = prepareSockets(folder);
    expect((statSync(folder).mode & 0o777).toString(8)).toBe("700");
    // a server killed by SIGKILL leaves its socket file behind (node removes it only on close): listening there again would fail
    const kept = createServer();
    await new Promise<void>((r) => kept.listen(first.sqs, () => r()));
    expect(existsSync(first.sqs)).toBe(true);
    expect(prepareSockets(folder)).toEqual(first);
    expect(existsSync(first.sqs)).toBe(false);
    kept.close();
  });

  it("refuses a file that is not a socket where one goes", () => {
    const folder = join(mkdtempSync(join(tmpdir(), "corral-sockets-")), "run");
    prepareSockets(folder);
    writeFileSync(join(folder, "dynamo.sock"), "not a socket");
    expect(() => prepareSockets(folder)).toThrow(/dynamo\.sock: not a socket/);
  });
});
