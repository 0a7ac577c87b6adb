import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import { startServer, type RunningServer } from "@corral/local";
import { ApiClient, CliError, once, routeUrl, type ApiOutput } from "./client.js";

// The typed client through its node:http transport against a real `corral server` (its API, dynalite and fauxqs in
// this process) on loopback: what the types promise is what the routes answer.
let server: RunningServer;
let api: ApiClient;

beforeAll(async () => {
  server = await startServer({ dataDir: mkdtempSync(join(tmpdir(), "corral-client-")), agent: false, port: 0 });
  api = new ApiClient({ url: server.url, token: server.token });
});
afterAll(async () => {
  await server?.stop();
});

describe("routeUrl", () => {
  it("fills each parameter in as one segment and leaves out a query parameter given as undefined", () => {
    expect(routeUrl("/v1/stacks/:stack/services/:service/spec", { param: { stack: "a/b", service: "c?d" } })).toBe("/v1/stacks/a%2Fb/services/c%3Fd/spec");
    expect(routeUrl("/v1/sessions/:id", { param: { id: "s1" }, query: { cursor: '{"h":1}', wait: undefined } })).toBe("/v1/sessions/s1?cursor=%7B%22h%22%3A1%7D");
    expect(() => routeUrl("/v1/stacks/:stack", {})).toThrow("no value for :stack");
  });
});

describe("the typed client against corral server", () => {
  it("creates a stack and reads it back in the shapes the routes answer", async () => {
    const created = await api.post("/v1/stacks", { json: { name: "typed" } }, once());
    expect(created).toEqual({ stack: "typed", version: expect.any(Number) });
    const rows = await api.get("/v1/stacks");
    expect(rows.find((r) => r.name === "typed")).toMatchObject({ id: "typed", state: expect.any(String), services: 0, owner: "admin" });
    const one = await api.get("/v1/stacks/:stack", { param: { stack: "typed" } });
    expect(one).toMatchObject({ name: "typed", services: [], containers: [] });
    const history = await api.get("/v1/stacks/:stack/history", { param: { stack: "typed" }, query: { all: "1" } });
    expect(history.stack).toBe("typed");
    expect(Array.isArray(history.lives)).toBe(true);
  });

  it("long-polls a stack's events (poll) and answers its pages", async () => {
    const page = await api.poll("/v1/stacks/:stack/events", { param: { stack: "typed" }, query: { after: "0", wait: "0" } });
    expect(page.events.map((e) => e.event.type)).toContain("StackCreated");
    expect(page.version).toBeGreaterThan(0);
  });

  it("a dry run answers a plan, an up the operation it started", async () => {
    const files = [{ name: "docker-compose.yml", document: { services: { web: { image: "corral-busybox", cap_drop: ["ALL"], command: ["sleep", "60"] } } } }];
    const plan = await api.post("/v1/stacks/:stack/up", { param: { stack: "typed" }, json: { files, dryRun: true } });
    expect("dryRun" in plan && plan.create).toEqual(["web"]);
    const started = await api.post("/v1/stacks/:stack/up", { param: { stack: "typed" }, json: { files } }, once());
    expect(started).toMatchObject({ stack: "typed", op: expect.any(String), version: expect.any(Number) });
  });

  it("a name with '/' in it stays one segment: it names no other route", async () => {
    const err = await api.get("/v1/stacks/:stack", { param: { stack: "typed/services" } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).status).toBe(400);
  });

  it("an error the API answers is a CliError with its status and message; the query is checked by the route", async () => {
    const err = await api.get("/v1/stacks/:stack/history", { param: { stack: "typed" }, query: { all: "maybe" as "1" } }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 400, message: expect.stringContaining("query parameter all") });
  });
});

// Type-level checks, which `npm run typecheck` runs: a call that does not fit its route does not compile. Never called.
export function typeChecks(api: ApiClient) {
  // @ts-expect-error no such route
  void api.get("/v1/stack");
  // @ts-expect-error GET /v1/stacks/:stack/up: up is a POST
  void api.get("/v1/stacks/:stack/up", { param: { stack: "s" } });
  // @ts-expect-error the path's parameter is required
  void api.get("/v1/stacks/:stack");
  // @ts-expect-error a parameter the path does not have
  void api.delete("/v1/volumes/:name", { param: { volume: "v" } });
  // @ts-expect-error a body key the route does not take (its validator is strict)
  void api.post("/v1/stacks", { json: { name: "s", owner: "x" } });
  // @ts-expect-error a body value of the wrong type
  void api.post("/v1/stacks/:stack/scale", { param: { stack: "s" }, json: { scales: { web: "2" } } });
  // @ts-expect-error a query parameter the route does not take
  void api.get("/v1/stacks/:stack/export", { param: { stack: "s" }, query: { all: "1" } });
  // @ts-expect-error a flag is 1, true, 0 or false
  void api.get("/v1/stacks/:stack/history", { param: { stack: "s" }, query: { all: "yes" } });
  // @ts-expect-error an optional body may be left out, a required one not
  void api.post("/v1/users");
  void api.post("/v1/stacks/:stack/stop", { param: { stack: "s" } });

  expectTypeOf<ApiOutput<"/v1/services", "$get">>().items.toHaveProperty("endpoints").toEqualTypeOf<string>();
  expectTypeOf<ApiOutput<"/v1/stacks", "$post">>().toEqualTypeOf<{ stack: string; version: number }>();
  // an error's answer (the long-poll's 503, its 204 when the caller went away) is no output: only 2xx JSON is
  expectTypeOf<ApiOutput<"/v1/stacks/:stack/events", "$get">>().not.toHaveProperty("error");
  // up answers a plan or the operation it started: a caller tells them apart
  expectTypeOf<ApiOutput<"/v1/stacks/:stack/up", "$post">>().toMatchTypeOf<{ dryRun: boolean } | { op: string }>();
  // @ts-expect-error a user sees a host's id, name and state only: address is the admin's view, not every row's
  void api.get("/v1/hosts").then((rows) => rows[0]?.address);
  // @ts-expect-error what an rm of a stack answers may carry no operation
  void api.delete("/v1/stacks/:stack", { param: { stack: "s" } }).then((r): string => r.op);
}
