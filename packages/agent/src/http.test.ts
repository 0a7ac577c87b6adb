import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { httpCall } from "./http.js";

// A real HTTP server on loopback, answering as the API would, and as no API should.
let server: Server;
let url = "";
beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      if (req.url === "/echo") return void res.writeHead(201, { "content-type": "application/json" }).end(JSON.stringify({ method: req.method, auth: req.headers.authorization, body }));
      if (req.url === "/big") return void res.writeHead(200).end("x".repeat(100_000));
      if (req.url === "/silent") return; // never answers
      res.writeHead(404).end("no such route");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))));

describe("an agent's call to the API", () => {
  it("sends the method, headers and body, and gives the status and the text", async () => {
    const got = await httpCall(`${url}/echo`, { method: "POST", headers: { authorization: "Bearer t" }, body: '{"a":1}' });
    expect(got.status).toBe(201);
    expect(JSON.parse(got.text)).toEqual({ method: "POST", auth: "Bearer t", body: '{"a":1}' });
    expect(await httpCall(`${url}/nothing`)).toEqual({ status: 404, text: "no such route" });
  });

  it("an answer too big, a server that says nothing, or none at all: the call fails, saying which", async () => {
    await expect(httpCall(`${url}/big`, {}, 5_000, 10_000)).rejects.toThrow(/\/big: the answer is over 10000 bytes/);
    await expect(httpCall(`${url}/silent`, {}, 200)).rejects.toThrow(/\/silent: no answer within 0 s/);
    await expect(httpCall("http://127.0.0.1:9/x")).rejects.toThrow(/ECONNREFUSED/);
  });
});
