import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registryAuthFrom } from "./registry-auth.js";

// The API's route itself (which answer when) is tested in packages/api/src/registries.test.ts; here, a real HTTP
// server answering as it does, to hold what the agent makes of each answer.
let server: Server;
let url = "";
const answers = new Map<string, [number, unknown]>();
const asked: Array<{ path: string; authorization: string | undefined }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    asked.push({ path: req.url ?? "", authorization: req.headers.authorization });
    const step = new URL(req.url ?? "/", "http://x").searchParams.get("step") ?? "";
    const [status, body] = answers.get(step) ?? [500, { error: "internal" }];
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  answers.set("login", [200, { server: "reg.test", username: "ann", password: "s3cret-pass" }]);
  answers.set("others", [200, { server: "reg.test", anonymous: true }]);
  answers.set("nobodys", [404, { error: "not_found", message: "stack web's owner has no login for registry reg.test" }]);
  answers.set("stale", [409, { error: "conflict", message: "no pull of an image from reg.test is planned on h1 for step stale" }]);
  answers.set("odd", [200, { server: "reg.test", username: "ann" }]);
  answers.set("done", [200, { server: "reg.test", reported: true }]);
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe("a pull's registry login, as the agent asks for it", () => {
  const ask = (step: string) => registryAuthFrom(url, "h1", () => "host-token")({ id: step, stack: "web" }, "reg.test");

  it("asks with the host's token for that step and server; a login is used, an 'anonymous' answer pulls without one", async () => {
    expect(await ask("login")).toEqual({ server: "reg.test", username: "ann", password: "s3cret-pass" });
    expect(asked.at(-1)).toEqual({ path: "/v1/hosts/h1/registry-auth?stack=web&step=login&server=reg.test", authorization: "Bearer host-token" });
    expect(await ask("others")).toBe("anonymous");
  });

  it("a pull this host has reported done (the message came again): 'reported', no login", async () => {
    expect(await ask("done")).toBe("reported");
  });

  it("404 (nobody has a login for the registry): the pull goes as a public image's", async () => {
    expect(await ask("nobodys")).toBeUndefined();
  });

  it("a pull no longer planned here (409), a server error, or an answer that is no login: the pull fails, saying why, never pulling without its login", async () => {
    await expect(ask("stale")).rejects.toThrow("the login for registry reg.test: 409 no pull of an image from reg.test is planned on h1 for step stale");
    await expect(ask("broken")).rejects.toThrow(/the login for registry reg.test: 500/);
    await expect(ask("odd")).rejects.toThrow();
  });
});

describe("steps of one stack pulling from one registry at once", () => {
  it("ask once, and get the same answer; another stack or registry asks for itself; a failure is not reused", async () => {
    const auth = registryAuthFrom(url, "h1", () => "host-token");
    const before = asked.length;
    const answers = await Promise.all(["login", "login", "login"].map(() => auth({ id: "login", stack: "web" }, "reg.test")));
    expect(answers).toEqual(Array(3).fill({ server: "reg.test", username: "ann", password: "s3cret-pass" }));
    expect(asked.length - before).toBe(1);
    expect(await auth({ id: "others", stack: "api" }, "reg.test")).toBe("anonymous");
    expect(asked.length - before).toBe(2);
    await expect(auth({ id: "stale", stack: "db" }, "reg.test")).rejects.toThrow(/409/);
    await expect(auth({ id: "stale", stack: "db" }, "reg.test")).rejects.toThrow(/409/);
    expect(asked.length - before).toBe(4);
  });

  it("'reported' is about that step alone: a step of the same stack asking at once asks for itself, and it is not kept", async () => {
    const auth = registryAuthFrom(url, "h1", () => "host-token");
    const before = asked.length;
    const [done, login] = await Promise.all([auth({ id: "done", stack: "web" }, "reg.test"), auth({ id: "login", stack: "web" }, "reg.test")]);
    expect(done).toBe("reported");
    expect(login).toEqual({ server: "reg.test", username: "ann", password: "s3cret-pass" });
    expect(asked.length - before).toBe(2);
    expect(await auth({ id: "done", stack: "api" }, "reg.test")).toBe("reported");
    expect(await auth({ id: "done", stack: "api" }, "reg.test")).toBe("reported");
    expect(asked.length - before).toBe(4);
  });

  it("nothing is reused after reuseMs", async () => {
    const auth = registryAuthFrom(url, "h1", () => "host-token", 0);
    const before = asked.length;
    await auth({ id: "login", stack: "web" }, "reg.test");
    await new Promise((r) => setTimeout(r, 5));
    await auth({ id: "login", stack: "web" }, "reg.test");
    expect(asked.length - before).toBe(2);
  });
});
