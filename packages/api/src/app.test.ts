import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDynamo, startQueues, type StandIn } from "@corral/local";
import { controlQueueName, ensureFifoQueue, hostQueueName, QueueSender, sqsClient } from "@corral/queue";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChangeFeed, dynamoClient, ensureTable, EventStore, HostStore, IdempotencyStore, KeyFileMasterKey, SecretStore, SessionStore, UserStore, VolumeStore } from "@corral/store";
import { sitePolicySchema } from "@corral/core";
import { createApp } from "./app.js";

// The HTTP surface through app.request: real routing, real DynamoDB and SQS stand-ins, no port.
let dynamo: StandIn;
let queues: StandIn;
let app: ReturnType<typeof createApp>;
let deps: Parameters<typeof createApp>[0];
let store: EventStore;
const token = "test-admin-token";

beforeAll(async () => {
  [dynamo, queues] = await Promise.all([startDynamo(), startQueues()]);
  const db = dynamoClient({ endpoint: dynamo.endpoint, table: "corral" });
  await ensureTable(db, "corral");
  const sqs = sqsClient({ endpoint: queues.endpoint });
  const controlQueueUrl = await ensureFifoQueue(sqs, controlQueueName("api-test"));
  store = new EventStore(db, { table: "corral" });
  deps = {
    store,
    hosts: new HostStore(db, "corral"),
    idempotency: new IdempotencyStore(db, "corral"),
    users: new UserStore(db, "corral"),
    volumes: new VolumeStore(db, "corral"),
    sessions: new SessionStore(db, "corral"),
    secrets: new SecretStore(db, "corral", new KeyFileMasterKey(join(mkdtempSync(join(tmpdir(), "corral-key-")), "master.key"))),
    feed: new ChangeFeed(),
    sender: new QueueSender(sqs),
    controlQueueUrl,
    hostQueue: (id) => ensureFifoQueue(sqs, hostQueueName("api-test", id)),
    sqs: { endpoint: queues.endpoint, region: "us-east-1" },
    visibilitySeconds: 30,
    adminToken: token,
  };
  app = createApp(deps);
});
afterAll(async () => {
  await Promise.all([dynamo?.stop(), queues?.stop()]);
});

const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };
const upBody = (yamlDoc: unknown) => JSON.stringify({ files: [{ name: "docker-compose.yml", document: yamlDoc }] });

describe("API", () => {
  it("answers /healthz without a token, and 401 on every other route without one", async () => {
    expect((await app.request("/healthz")).status).toBe(200);
    for (const [method, path] of [["GET", "/v1/stacks"], ["POST", "/v1/stacks/x/up"], ["DELETE", "/v1/stacks/x"], ["GET", "/v1/services"]] as const) {
      const res = await app.request(path, { method });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: "unauthorized" });
    }
    expect((await app.request("/v1/stacks", { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
  });

  it("refuses a bad compose document with 400 naming file, service and key, and writes nothing", async () => {
    const res = await app.request("/v1/stacks/bad/up", { method: "POST", headers: auth, body: upBody({ services: { web: { image: "x", devices: ["/dev/sda"] } } }) });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "invalid_compose", message: "docker-compose.yml: services.web.devices: not supported", path: "services.web.devices" });
    expect(await store.commits("bad")).toEqual([]);
  });

  it("reports every policy violation at once, and writes nothing", async () => {
    const doc = { services: { web: { image: "x", privileged: true, cap_add: ["SYS_ADMIN"], ports: ["8080:80"], build: "." } } };
    const res = await app.request("/v1/stacks/bad/up", { method: "POST", headers: auth, body: upBody(doc) });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { issues: Array<{ path: string; reason: string }> };
    expect(body.issues.map((i) => i.path).sort()).toEqual(["services.web.build", "services.web.cap_add", "services.web.cap_drop", "services.web.ports.0", "services.web.privileged"]);
    expect(body.issues.find((i) => i.path === "services.web.cap_add")?.reason).toBe(
      "SYS_ADMIN is not allowed (allowed: CHOWN, SETGID, SETUID, DAC_OVERRIDE, NET_BIND_SERVICE, FOWNER, KILL, SETPCAP)",
    );
    expect(await store.commits("bad")).toEqual([]);
  });

  it("renders what it understood with the violations, and writes nothing", async () => {
    const res = await app.request("/v1/stacks/rendered/render", { method: "POST", headers: auth, body: upBody({ services: { web: { image: "x", ports: [80] } } }) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { files: Record<string, string>; issues: Array<{ path: string }> };
    expect(body.files["docker-compose.yml"]).toContain("60000:80/tcp");
    expect(body.issues.map((i) => i.path)).toEqual(["services.web.cap_drop"]);
    expect(await store.commits("rendered")).toEqual([]);
  });

  it("refuses a malformed body and a bad stack name with 400", async () => {
    const res = await app.request("/v1/stacks/ok/up", { method: "POST", headers: auth, body: JSON.stringify({ files: [] }) });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ path: "files", message: "files: at least one compose file is required" });
    const bad = await app.request("/v1/stacks/Bad_Name/up", { method: "POST", headers: auth, body: upBody({ services: { web: { image: "x" } } }) });
    expect(bad.status).toBe(400);
  });

  it("gives the first answer again for a repeated Idempotency-Key, and acts once", async () => {
    const headers = { ...auth, "idempotency-key": "deploy-42" };
    const body = upBody({ services: { web: { image: "corral-hello:latest", cap_drop: ["ALL"] } } });
    const first = await app.request("/v1/stacks/idem/up", { method: "POST", headers, body });
    expect(first.status).toBe(202);
    const second = await app.request("/v1/stacks/idem/up", { method: "POST", headers, body });
    expect(second.status).toBe(202);
    expect(second.headers.get("idempotent-replayed")).toBe("true");
    expect(await second.json()).toEqual(await first.json());
    expect(await store.commits("idem")).toHaveLength(1);
    const other = await app.request("/v1/stacks/idem/up", { method: "POST", headers, body: upBody({ services: { web: { image: "other", cap_drop: ["ALL"] } } }) });
    expect(other.status).toBe(422);
  });

  it("answers 409 with the way out when an up is already in progress", async () => {
    const body = upBody({ services: { web: { image: "corral-hello:latest", cap_drop: ["ALL"] } } });
    expect((await app.request("/v1/stacks/busy/up", { method: "POST", headers: auth, body })).status).toBe(202);
    const res = await app.request("/v1/stacks/busy/up", { method: "POST", headers: auth, body });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { message: string }).message).toMatch(/coming up .*'corral rm --type stack busy'/);
  });

  it("answers 404 for a stack that does not exist", async () => {
    expect((await app.request("/v1/stacks/nothing", { headers: auth })).status).toBe(404);
    expect((await app.request("/v1/stacks/nothing", { method: "DELETE", headers: auth })).status).toBe(404);
  });

  it("long-polls events: an append wakes the reader", async () => {
    const body = upBody({ services: { web: { image: "corral-hello:latest", cap_drop: ["ALL"] } } });
    await app.request("/v1/stacks/feed/up", { method: "POST", headers: auth, body });
    const page = (await (await app.request("/v1/stacks/feed/events?after=0", { headers: auth })).json()) as { version: number; events: Array<{ type: string }> };
    expect(page.events.map((e) => e.type)).toEqual(["StackCreated", "RevisionCommitted", "OperationStarted"]);
    const t0 = Date.now();
    const waiting = app.request(`/v1/stacks/feed/events?after=${page.version}&wait=1`, { headers: auth });
    const res = (await (await waiting).json()) as { events: unknown[] };
    expect(res.events).toEqual([]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
  });

  describe("users and groups", () => {
    const as = (token: string) => ({ authorization: `Bearer ${token}`, "content-type": "application/json" });
    const mk = async (name: string, groups: string[]) => {
      const res = await app.request("/v1/users", { method: "POST", headers: auth, body: JSON.stringify({ name, groups }) });
      expect(res.status).toBe(201);
      return ((await res.json()) as { token: string }).token;
    };
    let alice = "";
    let bob = "";
    let carol = "";

    it("the admin creates users; tokens work; users cannot manage users", async () => {
      alice = await mk("alice", ["science"]);
      bob = await mk("bob", ["web"]);
      carol = await mk("carol", ["science", "other"]);
      expect((await app.request("/v1/stacks", { headers: as(alice) })).status).toBe(200);
      expect((await app.request("/v1/users", { headers: as(alice) })).status).toBe(403);
      expect((await app.request("/v1/users", { method: "POST", headers: auth, body: JSON.stringify({ name: "alice" }) })).status).toBe(409);
      const listed = (await (await app.request("/v1/users", { headers: auth })).json()) as Array<{ name: string; token?: string }>;
      expect(listed.map((u) => u.name).sort()).toEqual(["alice", "bob", "carol"]);
      expect(JSON.stringify(listed)).not.toContain(alice); // tokens are shown once, stored hashed
    });

    it("authorization matrix: owner and group members see a stack and its secret; others get 404; the admin sees all", async () => {
      const body = upBody({ services: { web: { image: "corral-hello:latest", cap_drop: ["ALL"] } } });
      expect((await app.request("/v1/stacks/labs/up", { method: "POST", headers: as(alice), body })).status).toBe(202);
      expect((await app.request("/v1/secrets/web.labs.pw", { method: "POST", headers: as(alice), body: JSON.stringify({ value: Buffer.from("pw").toString("base64") }) })).status).toBe(201);
      expect((await app.request("/v1/volumes", { method: "POST", headers: as(alice), body: JSON.stringify({ name: "db.labs" }) })).status).toBe(201);
      const routes: Array<[string, string, string?]> = [
        ["GET", "/v1/stacks/labs"],
        ["GET", "/v1/stacks/labs/history"],
        ["GET", "/v1/stacks/labs/export"],
        ["GET", "/v1/stacks/labs/events?after=0"],
        ["POST", "/v1/stacks/labs/up", body],
        ["DELETE", "/v1/secrets/web.labs.pw"],
        ["POST", "/v1/secrets/web.labs.pw", JSON.stringify({ value: Buffer.from("other").toString("base64") })],
        ["DELETE", "/v1/volumes/db.labs"],
        ["GET", "/v1/inspect?target=labs"],
        ["GET", "/v1/inspect?target=labs/web"],
        ["POST", "/v1/stacks/labs/scale", JSON.stringify({ scales: { web: 2 } })],
        ["POST", "/v1/stacks/labs/stop", "{}"],
        ["POST", "/v1/stacks/labs/restart", "{}"],
        ["POST", "/v1/sessions", JSON.stringify({ type: "logs", target: "labs/web" })],
        ["POST", "/v1/sessions", JSON.stringify({ type: "exec", target: "labs/web", cmd: ["id"] })],
        ["DELETE", "/v1/stacks/labs"],
      ];
      for (const [method, path, payload] of routes) {
        const res = await app.request(path, { method, headers: as(bob), ...(payload ? { body: payload } : {}) });
        expect([method, path, res.status]).toEqual([method, path, 404]);
        expect((await app.request(path, { method, ...(payload ? { body: payload } : {}) })).status).toBe(401);
      }
      for (const token of [alice, carol, "test-admin-token"]) {
        expect((await app.request("/v1/stacks/labs", { headers: as(token) })).status).toBe(200);
        expect((await app.request("/v1/stacks/labs/history", { headers: as(token) })).status).toBe(200);
      }
      const names = async (token: string, path: string) => ((await (await app.request(path, { headers: as(token) })).json()) as Array<{ name: string }>).map((x) => x.name);
      expect(await names(bob, "/v1/stacks")).not.toContain("labs");
      expect(await names(bob, "/v1/services")).not.toContain("labs/web");
      expect(await names(bob, "/v1/secrets")).not.toContain("web.labs.pw");
      expect(await names(carol, "/v1/secrets")).toContain("web.labs.pw");
      expect(await names(bob, "/v1/volumes")).not.toContain("db.labs");
      expect(await names(carol, "/v1/volumes")).toContain("db.labs");
      expect(await names("test-admin-token", "/v1/volumes")).toContain("db.labs");
      expect(await names("test-admin-token", "/v1/stacks")).toContain("labs");
    });

    it("a stack cannot mount another group's secret: it answers as if the secret did not exist", async () => {
      const doc = { services: { web: { image: "x", cap_drop: ["ALL"], secrets: ["web.bobs.pw"] } }, secrets: { "web.bobs.pw": { external: true } } };
      expect((await app.request("/v1/secrets/web.bobs.pw", { method: "POST", headers: as(alice), body: JSON.stringify({ value: Buffer.from("a").toString("base64") }) })).status).toBe(201);
      const res = await app.request("/v1/stacks/bobs/up", { method: "POST", headers: as(bob), body: upBody(doc) });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { message: string }).message).toContain("secret web.bobs.pw does not exist");
    });

    it("a new token replaces the old one; a removed user's token stops working", async () => {
      const res = await app.request("/v1/users/bob/token", { method: "POST", headers: auth });
      const fresh = ((await res.json()) as { token: string }).token;
      expect((await app.request("/v1/stacks", { headers: as(bob) })).status).toBe(401);
      expect((await app.request("/v1/stacks", { headers: as(fresh) })).status).toBe(200);
      expect((await app.request("/v1/users/bob", { method: "DELETE", headers: auth })).status).toBe(200);
      expect((await app.request("/v1/stacks", { headers: as(fresh) })).status).toBe(401);
    });
  });

  describe("the site policy at the API", () => {
    const volumes = async (a = app) => ((await (await a.request("/v1/volumes", { headers: auth })).json()) as Array<{ name: string }>).map((v) => v.name);
    const post = (a: typeof app, path: string, body: unknown, headers: Record<string, string> = auth) => a.request(path, { method: "POST", headers, body: JSON.stringify(body) });

    it("volume create: local takes no options (no bind of /, no raw disk); nfs only to a server the site names; 400, nothing created", async () => {
      const nfs = createApp({ ...deps, policy: sitePolicySchema.parse({ nfsServers: ["10.0.0.1"] }) });
      const refusals: Array<[unknown, string, string]> = [
        [{ name: "root.pol", opts: { type: "none", o: "bind", device: "/" } }, "opts.type", "volume root.pol: opts.type: none is not allowed: the local driver takes no options but an NFS mount (type: nfs, o: addr=SERVER, device: :/PATH)"],
        [{ name: "disk.pol", driver: "local", opts: { type: "ext4", device: "/dev/sda1" } }, "opts.type", "volume disk.pol: opts.type: ext4 is not allowed: the local driver takes no options but an NFS mount (type: nfs, o: addr=SERVER, device: :/PATH)"],
        [{ name: "far.pol", driver: "nfs", opts: { addr: "10.9.9.9", device: ":/x" } }, "opts.o", "volume far.pol: opts.o: NFS server 10.9.9.9 is not allowed (allowed: 10.0.0.1)"],
        [{ name: "bind.pol", driver: "nfs", opts: { addr: "10.0.0.1", device: ":/x", o: "bind" } }, "opts.o", expect.stringMatching(/^volume bind\.pol: opts\.o: bind is not an allowed NFS option/)],
        [{ name: "plug.pol", driver: "rexray", opts: {} }, "driver", expect.stringContaining("driver")],
      ];
      for (const [body, path, message] of refusals) {
        const res = await post(nfs, "/v1/volumes", body);
        expect(res.status).toBe(400);
        expect(await res.json()).toMatchObject({ path, message });
      }
      expect((await volumes()).filter((n) => n.endsWith(".pol"))).toEqual([]);
      expect((await post(nfs, "/v1/volumes", { name: "files.pol", driver: "nfs", opts: { addr: "10.0.0.1", device: ":/exports/site", o: "vers=4" } })).status).toBe(201);
      // the default policy names no NFS server
      const res = await post(app, "/v1/volumes", { name: "files.pol2", driver: "nfs", opts: { addr: "10.0.0.1", device: ":/x" } });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { message: string }).message).toBe("volume files.pol2: opts.o: NFS server 10.0.0.1 is not allowed (allowed: none)");
    });

    it("an up names the file, volume and key of a volume driver the site refuses, and writes nothing", async () => {
      const doc = { services: { db: { image: "x", cap_drop: ["ALL"], volumes: ["db.polup:/d"] } }, volumes: { "db.polup": { driver_opts: { type: "none", o: "bind", device: "/" } } } };
      const res = await post(app, "/v1/stacks/polup/up", JSON.parse(upBody(doc)));
      expect(res.status).toBe(400);
      expect(((await res.json()) as { issues: unknown[] }).issues).toEqual([
        { file: "docker-compose.yml", path: "volumes.db.polup.driver_opts.type", reason: "none is not allowed: the local driver takes no options but an NFS mount (type: nfs, o: addr=SERVER, device: :/PATH)" },
      ]);
      expect(await store.commits("polup")).toEqual([]);
    });

    it("scale: the API and compose are bounded by the policy's maxScale, 400 naming the service, nothing written", async () => {
      const small = createApp({ ...deps, policy: sitePolicySchema.parse({ maxScale: 5 }) });
      const res = await post(small, "/v1/stacks/polscale/scale", { scales: { web: 6 } });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ path: "scales.web", message: "scales.web: 6 containers is above the site's limit of 5 per service" });
      const up = await post(small, "/v1/stacks/polscale/up", JSON.parse(upBody({ services: { web: { image: "x", cap_drop: ["ALL"], deploy: { replicas: 6 } } } })));
      expect(up.status).toBe(400);
      expect(((await up.json()) as { issues: unknown[] }).issues).toEqual([{ file: "docker-compose.yml", path: "services.web.deploy.replicas", reason: "6 containers is above the site's limit of 5 per service" }]);
      expect(await store.commits("polscale")).toEqual([]);
      expect((await post(app, "/v1/stacks/polscale/scale", { scales: { web: 101 } })).status).toBe(400); // the default: 100
    });

    it("binds: the caller's own uid range applies (the admit path knows who asks)", async () => {
      const policy = sitePolicySchema.parse({ bindRoots: ["/srv/data"], bindIds: { users: { dora: "5000-5999" } } });
      const a = createApp({ ...deps, policy });
      const dora = ((await (await post(app, "/v1/users", { name: "dora", groups: ["dora"] })).json()) as { token: string }).token;
      const doc = (user: string) => JSON.parse(upBody({ services: { web: { image: "x", cap_drop: ["ALL"], user, volumes: ["/srv/data/dora:/d"] } } }));
      const issues = async (token: string, user: string) =>
        ((await (await post(a, "/v1/stacks/polbind/render", doc(user), { authorization: `Bearer ${token}`, "content-type": "application/json" })).json()) as { issues: Array<{ reason: string }> }).issues.map((i) => i.reason);
      expect(await issues(dora, "5001:5001")).toEqual([]);
      expect(await issues(dora, "1000:1000")).toEqual(["uid 1000 is not allowed for user dora with bind mounts (allowed: 5000-5999)", "gid 1000 is not allowed for user dora with bind mounts (allowed: 5000-5999)"]);
      expect(await issues(token, "1000:1000")).toEqual([]); // the admin: the default range
      expect(await issues(token, "0:0")).toHaveLength(2);
    });

    it("the site's defaults bound what a service leaves unset: logs and pids, in what corral renders", async () => {
      const res = await post(app, "/v1/stacks/poldefaults/render", JSON.parse(upBody({ services: { web: { image: "x", cap_drop: ["ALL"] } } })));
      const files = ((await res.json()) as { files: Record<string, string> }).files;
      expect(files["docker-compose.yml"]).toContain("max-size: 10m");
      expect(files["docker-compose.yml"]).toContain("pids: 1024");
    });

    it("x-corral-source is one of the known sources, never free text for the history (a terminal escape): 400, nothing written", async () => {
      for (const bad of ["\x1b[2J\x1b[31mpwned", "cli\u009b", "x".repeat(5000), "webhooks"]) {
        const res = await app.request("/v1/stacks/polsource/up", { method: "POST", headers: { ...auth, "x-corral-source": bad }, body: upBody({ services: { web: { image: "x", cap_drop: ["ALL"] } } }) });
        expect(res.status).toBe(400);
        expect(await res.json()).toMatchObject({ path: "x-corral-source", message: "x-corral-source: must be one of cli, api, webhook, chatops" });
      }
      expect(await store.commits("polsource")).toEqual([]);
      const ok = await app.request("/v1/stacks/polsource/up", { method: "POST", headers: { ...auth, "x-corral-source": "cli" }, body: upBody({ services: { web: { image: "x", cap_drop: ["ALL"] } } }) });
      expect(ok.status).toBe(202);
    });
  });
});
