import { randomBytes } from "node:crypto";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import type { Claim, IdempotencyStore, StoredResponse } from "@corral/store";
import type { Principal } from "./auth.js";
import { idempotency } from "./idempotency.js";

/** The store's contract in memory: what it was given is all it holds. */
function memoryStore() {
  const items = new Map<string, { fingerprint: string; response?: StoredResponse; withheld?: number }>();
  const store = {
    items,
    async claim(scope: string, key: string, fingerprint: string): Promise<Claim | { kind: "mismatch" }> {
      const item = items.get(`${scope}/${key}`);
      if (!item) {
        items.set(`${scope}/${key}`, { fingerprint });
        return { kind: "claimed" };
      }
      if (item.fingerprint !== fingerprint) return { kind: "mismatch" };
      if (item.withheld !== undefined) return { kind: "withheld", status: item.withheld };
      return item.response ? { kind: "done", response: item.response } : { kind: "pending", retryAfterMs: 5_000 };
    },
    async complete(scope: string, key: string, response: StoredResponse) {
      items.get(`${scope}/${key}`)!.response = response;
    },
    async completeWithheld(scope: string, key: string, status: number) {
      items.get(`${scope}/${key}`)!.withheld = status;
    },
    async release(scope: string, key: string) {
      items.delete(`${scope}/${key}`);
    },
  };
  return store;
}

function appWith(store: ReturnType<typeof memoryStore>) {
  const app = new Hono<{ Variables: { principal: Principal } }>();
  app.use("*", async (c, next) => {
    c.set("principal", { name: "ci", admin: false, groups: [], scope: "ci" });
    await next();
  });
  app.use("*", idempotency({ store: store as unknown as IdempotencyStore, key: randomBytes(32) }));
  let issued = 0;
  app.post("/plain", (c) => c.json({ n: ++issued }, 201));
  // a route that did not say its answer holds a credential: the key names give it away
  app.post("/register", (c) => c.json({ queueUrl: "q", hostToken: `host.h1.${++issued}` }));
  app.post("/nested", (c) => c.json({ agent: { joinToken: `j${++issued}` } }));
  return app;
}

describe("idempotency middleware", () => {
  const post = (app: ReturnType<typeof appWith>, path: string, key: string) =>
    app.request(path, { method: "POST", headers: { "idempotency-key": key, "content-type": "application/json" }, body: "{}" });

  it("replays a plain answer", async () => {
    const app = appWith(memoryStore());
    const first = await (await post(app, "/plain", "k")).json();
    const again = await post(app, "/plain", "k");
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(await again.json()).toEqual(first);
  });

  it.each(["/register", "/nested"])("keeps no answer whose keys name a token (%s): a repeat is 409 not_replayable and runs nothing", async (path) => {
    const store = memoryStore();
    const app = appWith(store);
    const first = await (await post(app, path, "k")).text();
    expect(first).toMatch(/Token/);
    const again = await post(app, path, "k");
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ error: "not_replayable" });
    expect(JSON.stringify([...store.items.values()])).not.toMatch(/host\.h1|"j\d/);
  });
});
