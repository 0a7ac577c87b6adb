import { chmodSync, mkdirSync, mkdtempSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { adminToken, startServer } from "./server.js";

const scratch = () => mkdtempSync(join(tmpdir(), "corral-server-"));

describe("corral server trusts only its own data dir, token and master key", () => {
  it("refuses a data dir open to others, before starting anything", async () => {
    const data = join(scratch(), "data");
    mkdirSync(data, { mode: 0o755 });
    chmodSync(data, 0o755);
    await expect(startServer({ dataDir: data, agent: false, port: 0 })).rejects.toThrow(`${data}: refusing to use this folder: its mode 0755`);
  });

  it("refuses an existing DATA/token another user could read or write", async () => {
    const data = scratch();
    writeFileSync(join(data, "token"), "a-token-of-some-length\n");
    chmodSync(join(data, "token"), 0o644);
    await expect(startServer({ dataDir: data, agent: false, port: 0 })).rejects.toThrow(`chmod 600 ${join(data, "token")}`);
    chmodSync(join(data, "token"), 0o600);
    expect(adminToken(data)).toBe("a-token-of-some-length");
  });

  it("refuses an existing DATA/master.key another user could read", async () => {
    const data = scratch();
    writeFileSync(join(data, "master.key"), Buffer.alloc(32));
    chmodSync(join(data, "master.key"), 0o640);
    await expect(startServer({ dataDir: data, agent: false, port: 0 })).rejects.toThrow(`${join(data, "master.key")}: refusing to use this file: its mode 0640`);
  });

  it("makes a missing data dir 0700, its token and master key 0600, and starts", async () => {
    const data = join(scratch(), "fresh");
    const server = await startServer({ dataDir: data, agent: false, port: 0 });
    try {
      expect(statSync(data).mode & 0o777).toBe(0o700);
      expect(statSync(join(data, "token")).mode & 0o777).toBe(0o600);
      expect(statSync(join(data, "master.key")).mode & 0o777).toBe(0o600);
      expect((await fetch(`${server.url}/v1/stacks`, { headers: { authorization: `Bearer ${server.token}` } })).status).toBe(200);
    } finally {
      await server.stop();
    }
  });
});

describe("corral server's listener", () => {
  it("binds loopback by default, and the address --listen gives otherwise (not the others)", async () => {
    const server = await startServer({ dataDir: scratch(), agent: false, port: 0 });
    const port = new URL(server.url).port;
    try {
      expect(new URL(server.url).hostname).toBe("127.0.0.1");
      await expect(fetch(`http://127.0.0.2:${port}/healthz`)).rejects.toThrow();
    } finally {
      await server.stop();
    }
    const other = await startServer({ dataDir: scratch(), agent: false, port: 0, listen: "127.0.0.2" });
    try {
      expect(new URL(other.url).hostname).toBe("127.0.0.2");
      expect((await fetch(`${other.url}/healthz`)).status).toBe(200);
      await expect(fetch(`http://127.0.0.1:${new URL(other.url).port}/healthz`)).rejects.toThrow();
    } finally {
      await other.stop();
    }
    await expect(startServer({ dataDir: scratch(), agent: false, port: 0, listen: "192.0.2.77" })).rejects.toThrow("--listen 192.0.2.77: not an address of this machine");
  });
});

describe("stderrLogger", () => {
  it("drops lines below its level: info (the default) leaves debug out, debug shows all", async () => {
    const { stderrLogger } = await import("./server.js");
    const seen: string[] = [];
    const info = stderrLogger("info", (l) => seen.push(l));
    info.debug?.("heartbeat");
    info.info("api listening", { url: "http://127.0.0.1:1" });
    expect(seen).toEqual([expect.stringMatching(/^\S+ info api listening url=http:\/\/127\.0\.0\.1:1\n$/)]);
    const debug = stderrLogger("debug", (l) => seen.push(l));
    debug.debug?.("POST /v1/hosts/h/heartbeat 200 1ms");
    expect(seen.at(-1)).toMatch(/ debug POST \/v1\/hosts\/h\/heartbeat 200 1ms\n$/);
  });
});
