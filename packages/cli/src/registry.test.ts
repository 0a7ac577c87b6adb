import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "./main.js";

// `corral registry add` against a stand-in API that records what reaches it: the password from stdin only, bounded
const received: Array<{ method: string; url: string; body: string }> = [];
let api: Server;

beforeAll(async () => {
  api = createServer((req: IncomingMessage, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      received.push({ method: req.method ?? "", url: req.url ?? "", body });
      res.writeHead(req.method === "POST" ? 201 : 200, { "content-type": "application/json" });
      const created = { kind: "created", server: "reg.example.org", owner: "ann" };
      const listed = [{ server: "reg.example.org", username: "ann", owner: "ann", group: "lab", created: "2025-01-01T00:00:00.000Z", updated: "x" }];
      res.end(JSON.stringify(req.method === "POST" ? created : req.method === "GET" ? listed : {}));
    });
  });
  await new Promise<void>((r) => api.listen(0, "127.0.0.1", () => r()));
  process.env.CORRAL_URL = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
  process.env.CORRAL_TOKEN = "user.ann.test";
});
afterAll(async () => {
  await new Promise((r) => api.close(r));
});

async function run(args: string[], stdin?: string) {
  const out: string[] = [];
  const err: string[] = [];
  const feed = (limit: number) => {
    const b = Buffer.from(stdin ?? "");
    if (b.length > limit) throw new Error(`standard input holds more than ${limit} bytes: a password is at most that`);
    return b;
  };
  const code = await main(["node", "corral", ...args], { out: (l) => out.push(l), err: (l) => err.push(l), stdin: feed });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("corral registry", () => {
  it("add sends the password read from stdin (its trailing newline dropped), and prints no password", async () => {
    received.length = 0;
    const r = await run(["registry", "add", "reg.example.org", "--username", "ann", "--password-stdin"], "pa ss\n");
    expect(r).toEqual({ code: 0, out: "Added the login of ann for reg.example.org", err: "" });
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ method: "POST", url: "/v1/registries" });
    expect(JSON.parse(received[0]!.body)).toEqual({ server: "reg.example.org", username: "ann", password: "pa ss" });
  });

  it.each([
    [["registry", "add", "reg.example.org", "--username", "ann", "--password", "hunter2"], /unknown option '--password'/],
    [["registry", "add", "reg.example.org", "--username", "ann", "-p", "hunter2"], /unknown option '-p'/],
    [["registry", "add", "reg.example.org", "--username", "ann"], /standard input only: pipe it in and give --password-stdin/],
    [["registry", "add", "reg.example.org", "--password-stdin"], /required option '-u, --username <username>'/],
    [["registry", "add", "reg.example.org", "hunter2", "--username", "ann", "--password-stdin"], /too many arguments/],
  ])("refuses %j before sending anything, never echoing a password", async (args, why) => {
    received.length = 0;
    const r = await run(args, "hunter2");
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(why);
    expect(r.err).not.toContain("hunter2");
    expect(received).toEqual([]);
  });

  it("refuses an empty or oversized password on stdin, sending nothing", async () => {
    received.length = 0;
    for (const input of ["", "\n", "x".repeat(16 * 1024 + 3)]) {
      const r = await run(["registry", "add", "reg.example.org", "-u", "ann", "--password-stdin"], input);
      expect(r.code).not.toBe(0);
      expect(r.err).toMatch(/no password|more than 16386 bytes/);
    }
    expect(received).toEqual([]);
  });

  it("ls prints SERVER USERNAME OWNER GROUP CREATED, as a table or JSON with those keys", async () => {
    const table = await run(["registry", "ls"]);
    expect(table.out.split("\n")[0]).toMatch(/^SERVER\s+USERNAME\s+OWNER\s+GROUP\s+CREATED$/);
    const rows = JSON.parse((await run(["registry", "ls", "--format", "json"])).out) as Array<Record<string, string>>;
    expect(Object.keys(rows[0]!)).toEqual(["server", "username", "owner", "group", "created"]);
  });

  it("rm names the server, and --owner asks for a group member's", async () => {
    received.length = 0;
    expect((await run(["registry", "rm", "reg.example.org:5000", "--owner", "ben"])).code).toBe(0);
    expect(received[0]).toMatchObject({ method: "DELETE", url: "/v1/registries/reg.example.org%3A5000?owner=ben" });
  });
});
