import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Hono } from "hono";
import { startDynamo, type StandIn } from "@corral/local";
import { evolveAll, hostState, initialState, stackBridge, type StackState } from "@corral/core";
import { dynamoClient, ensureTable, HostStore, SubnetStore } from "@corral/store";
import { onError } from "../errors.js";
import { overlayRoutes, stackOnHost } from "./overlay.js";

// The stack networks' routes on dynalite: a host gets a subnet for a stack it runs (no other), and the overlay's view.
let dynamo: StandIn;
let hosts: HostStore;
let app: Hono;
let db: ReturnType<typeof dynamoClient>;
const now = 1_000_000;
const states = new Map<string, StackState>();

/** A stack with one running container per host given, with addresses. */
function stack(name: string, on: string[]): StackState {
  const s = evolveAll(initialState(name), []);
  const containers = Object.fromEntries(
    on.map((host, i) => [`${name}-web-${i + 1}`, { name: `${name}-web-${i + 1}`, service: "web", slot: i + 1, revision: 1, host, image: "x", state: "running" as const, ip: `10.250.${i}.2` }]),
  );
  const services = { web: { spec: { image: "x", environment: {}, labels: {}, ports: [], cap_add: [], cap_drop: [], scale: on.length }, hash: "h" } };
  return { ...s, exists: true, services: services as unknown as StackState["services"], containers: containers as unknown as StackState["containers"] };
}

beforeAll(async () => {
  dynamo = await startDynamo();
  db = dynamoClient({ endpoint: dynamo.endpoint, table: "corral-ovl" });
  await ensureTable(db, "corral-ovl");
  hosts = new HostStore(db, "corral-ovl");
  for (const [id, address] of [
    ["h1", "198.18.2.2"],
    ["h2", "198.18.3.2"],
    ["h3", undefined],
  ] as const)
    await hosts.register({ id, queueUrl: `q-${id}`, lastSeen: now, engine: "27", containers: 0, ...(address ? { address } : {}) }, `hash-${id}`, "key");
  states.set("shop", stack("shop", ["h1", "h2"]));
  states.set("blog", stack("blog", ["h2"]));
  const subnets = new SubnetStore(db, "corral-ovl", Array.from({ length: 16 }, (_, i) => `10.201.${i}.0/24`));
  const vteps = new SubnetStore(db, "corral-ovl", Array.from({ length: 16 }, (_, i) => `10.199.0.${i + 1}`));
  app = new Hono();
  app.onError(onError());
  app.route(
    "/v1/hosts",
    overlayRoutes({
      hosts,
      liveHosts: async () => (await hosts.list()).map((h) => ({ id: h.id, name: h.name, state: hostState(h.state, h.lastSeen, now, 30_000), labels: h.labels })),
      subnets,
      vteps,
      stacks: async () => [...states.values()],
      load: async (n) => states.get(n) ?? initialState(n),
    }),
  );
});
afterAll(() => dynamo.stop());

const post = (path: string) => app.request(path, { method: "POST" });

describe("stack networks: subnets and the overlay's view", () => {
  it("a host gets the subnet of a stack it runs, the same each time; of a stack it does not run, none", async () => {
    const res = await post("/v1/hosts/h1/networks/shop");
    expect(res.status).toBe(200);
    const got = (await res.json()) as { subnet: string; bridge: string; gateway: string };
    expect(got).toEqual({ stack: "shop", subnet: expect.stringMatching(/^10\.201\.\d+\.0\/24$/), bridge: stackBridge("shop"), gateway: got.subnet.replace(/0\/24$/, "1") });
    expect(await (await post("/v1/hosts/h1/networks/shop")).json()).toEqual(got);
    const other = await post("/v1/hosts/h1/networks/blog");
    expect(other.status).toBe(404);
    expect(await other.text()).toMatch(/stack blog has nothing on host h1/);
    expect((await post("/v1/hosts/h1/networks/Bad..Name")).status).toBe(400);
    expect((await post("/v1/hosts/h%20x/networks/shop")).status).toBe(400);
  });

  it("the overlay's view: this host's VTEP, the hosts with addresses, the subnets on every host of the stacks it runs, and their names", async () => {
    const h2 = (await (await post("/v1/hosts/h2/networks/shop")).json()) as { subnet: string };
    const h1 = (await (await post("/v1/hosts/h1/networks/shop")).json()) as { subnet: string };
    const res = await app.request("/v1/hosts/h1/overlay");
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      view: { me: { id: string; underlay: string; vtep: string }; peers: Array<{ id: string }>; stacks: Array<{ stack: string; subnets: Record<string, string> }> };
      names: Record<string, Record<string, string[]>>;
    };
    expect(body.view.me).toEqual({ id: "h1", underlay: "198.18.2.2", vtep: expect.stringMatching(/^10\.199\.0\.\d+$/) });
    expect(body.view.peers.map((p) => p.id).sort()).toEqual(["h1", "h2"]); // h3 has no address: not a peer
    expect(body.view.stacks).toEqual([{ stack: "shop", subnets: { h1: h1.subnet, h2: h2.subnet } }]);
    expect(Object.keys(body.names)).toEqual(["shop"]);
    expect(body.names.shop!.web).toEqual(["10.250.0.2", "10.250.1.2"]);
    // VTEPs are the hosts' own, the same seen from either side
    const fromH2 = (await (await app.request("/v1/hosts/h2/overlay")).json()) as typeof body;
    expect(fromH2.view.peers.find((p) => p.id === "h1")).toEqual(body.view.me);
    expect((await app.request("/v1/hosts/h3/overlay")).status).toBe(400);
    expect((await app.request("/v1/hosts/nope/overlay")).status).toBe(404);
  });

  it("a spent pool takes back what stacks removed a while ago and hosts removed hold, then says so with a 503 naming stack and host", async () => {
    await ensureTable(db, "corral-ovl-small");
    const small = new SubnetStore(db, "corral-ovl-small", ["10.202.0.0/24", "10.202.1.0/24"]);
    let clock = now;
    const gone = new Map<string, StackState>([
      ["old", stack("old", ["h1"])],
      ["fresh", stack("fresh", ["h1"])],
      ["next", stack("next", ["h1"])],
    ]);
    const tight = new Hono();
    tight.onError(onError());
    tight.route(
      "/v1/hosts",
      overlayRoutes({
        hosts,
        liveHosts: async () => [],
        subnets: small,
        vteps: new SubnetStore(db, "corral-ovl-small", ["10.198.0.1/32"]),
        stacks: async () => [...gone.values()],
        load: async (n) => gone.get(n) ?? initialState(n),
        clock: () => clock,
      }),
    );
    const ask = async (stack: string) => {
      const res = await tight.request(`/v1/hosts/h1/networks/${stack}`, { method: "POST" });
      return { status: res.status, body: (await res.json()) as { subnet?: string; message?: string } };
    };
    const old = (await ask("old")).body.subnet!;
    await small.assign("a-host-removed", "h9"); // held for a host no longer registered
    expect((await ask("fresh")).status).toBe(200); // the pool was spent: the removed host's subnet, taken back
    expect(await small.holders()).not.toContainEqual({ stack: "a-host-removed", host: "h9" });
    // old is removed, not long ago: its subnet stays held (a host away at the time may still have its bridge)
    gone.set("old", { ...initialState("old"), removed: { at: clock } });
    const refused = await ask("next");
    expect(refused.status).toBe(503);
    expect(refused.body.message).toMatch(/no free subnet for stack next on host h1: all 2 of the pool are taken/);
    clock += 61_000;
    expect(await ask("next")).toEqual({ status: 200, body: expect.objectContaining({ subnet: old }) });
  });

  it("stackOnHost: containers, creates in flight, planned steps of the running operation", () => {
    expect(stackOnHost(stack("x", ["h1"]), "h1")).toBe(true);
    expect(stackOnHost(stack("x", ["h1"]), "h2")).toBe(false);
    expect(stackOnHost(initialState("x"), "h1")).toBe(false);
  });
});
