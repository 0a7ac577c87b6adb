import { execFileSync } from "node:child_process";
import { createHmac, randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dropImage, pushImage, registryUnavailable, startRegistry, type TestRegistry } from "./registry.js";
import { cleanupStack, composeFile, corral, docker, eventually, httpGet, stackContainers, testServer } from "./support.js";

// Deploys on push, end to end: a real registry's notifications (Debian's docker-registry) and GitHub's signed package
// events reach corral's webhook URLs, and the services they name are upgraded on the real engine.
const why = await registryUnavailable();
if (why) console.warn(`skipped: ${why}`);

/** corral-hook:TAG, a web server answering TAG. */
const build = (tag: string) => execFileSync("docker", ["build", "-q", "-t", `corral-hook:${tag}`, "-"], { input: `FROM corral-hello:latest\nRUN echo ${tag} > /www/index.html\n`, stdio: ["pipe", "ignore", "inherit"] });
const sign = (secret: string, body: string) => `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
const running = async (stack: string) =>
  (await stackContainers(stack))
    .filter((c) => c.State === "running")
    .map((c) => c.Image)
    .sort();
type Hook = { id: string; url: string; secret: string };

describe.skipIf(why !== undefined)("webhooks", () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  let registry: TestRegistry;
  const PASSWORD = "ann-Registry-pass-1";
  // the registry calls this URL; it hands each envelope, as it came, to the hook's URL once there is one
  let relay: Server;
  let relayTarget = "";
  const relayed: number[] = [];

  beforeAll(async () => {
    for (const t of ["v1", "v2", "v3", "v4", "v5"]) build(t);
    relay = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        if (!relayTarget) return res.end();
        void fetch(relayTarget, { method: "POST", headers: { "content-type": req.headers["content-type"] ?? "application/json" }, body: Buffer.concat(chunks) })
          .then((r) => {
            relayed.push(r.status);
            res.writeHead(r.status).end();
          })
          .catch(() => res.writeHead(502).end());
      });
    });
    await new Promise<void>((r) => relay.listen(0, "127.0.0.1", r));
    registry = await startRegistry("127.0.0.1", { ann: PASSWORD }, { notify: `http://127.0.0.1:${(relay.address() as AddressInfo).port}/notify` });
    server = await testServer({ tickMs: 300 });
    const login = await corral(server, ["registry", "add", registry.server, "-u", "ann", "--password-stdin"], undefined, PASSWORD);
    expect(login.code).toBe(0);
    // ghcr.io cannot be reached from here: its images are tagged on the engine, as if pulled before
    for (const t of ["v1", "v2", "v3", "v4", "v5"]) await docker.getImage(`corral-hook:${t}`).tag({ repo: "ghcr.io/team/app", tag: t });
  }, 180_000);

  afterAll(async () => {
    await server?.stop();
    await registry?.stop();
    await new Promise<void>((r) => relay?.close(() => r()));
    for (const s of ["pushed", "gh"]) await cleanupStack(s);
    for (const t of ["v1", "v2", "v3", "v4", "v5"]) await dropImage(docker, `ghcr.io/team/app:${t}`);
  }, 120_000);

  it("a push to the registry upgrades the service running that repository, to the pushed tag; a bad URL secret is refused", async () => {
    const image = (tag: string) => `${registry.server}/team/app:${tag}`;
    await pushImage(docker, "corral-hook:v1", image("v1"), { username: "ann", password: PASSWORD, serveraddress: registry.server });
    const up = await corral(server, ["up", "-d", "-s", "pushed", "-f", composeFile(`services:\n  web:\n    image: ${image("v1")}\n    ports: ["60031:80"]\n    cap_drop: [ALL]\n    cap_add: [NET_BIND_SERVICE]\n  other:\n    image: corral-hello:latest\n    cap_drop: [ALL]\n    cap_add: [NET_BIND_SERVICE]\n`)]);
    expect(up.stderr).toBe("");
    expect((await httpGet("http://127.0.0.1:60031/")).trim()).toBe("v1");
    const created = await corral(server, ["hook", "create", "pushed", "--kind", "registry", "--service", "web", "--confirm-after", "1s", "--format", "json"]);
    expect(created.stderr).toBe("");
    const hook = JSON.parse(created.stdout) as Hook;
    expect(hook.url).toBe(`${server.url}/hooks/${hook.id}/${hook.secret}`);
    // the listing never shows the secret
    expect((await corral(server, ["hook", "ls", "--format", "json"])).stdout).not.toContain(hook.secret);

    // a wrong secret, none, an unknown hook: 401, nothing written
    const history = (await corral(server, ["history", "pushed"])).stdout;
    const envelope = JSON.stringify({ events: [{ id: "x", action: "push", target: { repository: "team/app", tag: "v2" }, request: { host: registry.server } }] });
    for (const url of [`${server.url}/hooks/${hook.id}/${"A".repeat(43)}`, `${server.url}/hooks/${hook.id}`, `${server.url}/hooks/hAAAAAAAAAAAA/${hook.secret}`]) {
      expect((await fetch(url, { method: "POST", body: envelope })).status).toBe(401);
    }
    expect((await corral(server, ["history", "pushed"])).stdout).toBe(history);

    relayTarget = hook.url;
    const pushed = Date.now();
    await pushImage(docker, "corral-hook:v2", image("v2"), { username: "ann", password: PASSWORD, serveraddress: registry.server });
    await eventually(async () => JSON.stringify(await running("pushed")) === JSON.stringify([image("v2"), "corral-hello:latest"].sort()), 60_000, 200);
    console.log(`webhook: push to new container running ${Date.now() - pushed} ms`);
    expect((await httpGet("http://127.0.0.1:60031/")).trim()).toBe("v2");
    // confirmed by itself (--confirm-after 1s): the old container goes
    await eventually(async () => (await stackContainers("pushed")).length === 2, 30_000, 250);
    const deliveries = JSON.parse((await corral(server, ["hook", "deliveries", hook.id, "--format", "json"])).stdout) as Array<{ verdict: string; revision?: number; from: string }>;
    expect(deliveries.find((d) => d.verdict === "deployed")).toMatchObject({ revision: 2, from: "127.0.0.1" });
    expect((await corral(server, ["history", "pushed"])).stdout).toMatch(/2\s.*webhook/);
  }, 180_000);

  it("a GitHub package event, signed, upgrades the service; the same delivery twice makes one revision; bad signatures are refused", async () => {
    const up = await corral(server, ["up", "-d", "-s", "gh", "-f", composeFile(`services:\n  web:\n    image: ghcr.io/team/app:v1\n    ports: ["60032:80"]\n    cap_drop: [ALL]\n    cap_add: [NET_BIND_SERVICE]\n`)]);
    expect(up.code).toBe(0);
    const hook = JSON.parse((await corral(server, ["hook", "create", "gh", "--kind", "github", "--confirm-after", "1s", "--format", "json"])).stdout) as Hook;
    expect(hook.url).toBe(`${server.url}/hooks/${hook.id}`);
    const event = (tag: string) => JSON.stringify({ action: "published", package: { name: "app", namespace: "team", owner: { login: "team" }, package_type: "CONTAINER", package_version: { container_metadata: { tag: { name: tag, digest: "sha256:00" } } } } });
    const deliver = (body: string, headers: Record<string, string>) => fetch(hook.url, { method: "POST", headers: { "content-type": "application/json", "x-github-event": "package", ...headers }, body });
    const history = (await corral(server, ["history", "gh", "--format", "json"])).stdout;
    const body = event("v2");
    const id = randomUUID();
    for (const headers of [{} as Record<string, string>, { "x-hub-signature-256": "sha256=00" }, { "x-hub-signature-256": sign("not the secret", body) }, { "x-hub-signature-256": sign(hook.secret, event("v3")) }]) {
      expect((await deliver(body, { "x-github-delivery": id, ...headers })).status).toBe(401);
    }
    expect((await corral(server, ["history", "gh", "--format", "json"])).stdout).toBe(history);

    const first = await deliver(body, { "x-github-delivery": id, "x-hub-signature-256": sign(hook.secret, body) });
    expect(first.status).toBe(202);
    expect(await first.json()).toMatchObject({ verdict: "queued", deploys: [{ service: "web", image: "ghcr.io/team/app:v2" }] });
    const again = await deliver(body, { "x-github-delivery": id, "x-hub-signature-256": sign(hook.secret, body) });
    expect(await again.json()).toMatchObject({ duplicate: true });
    await eventually(async () => JSON.stringify(await running("gh")) === JSON.stringify(["ghcr.io/team/app:v2"]), 60_000, 200);
    expect((await httpGet("http://127.0.0.1:60032/")).trim()).toBe("v2");
    const revisions = (JSON.parse((await corral(server, ["history", "gh", "--format", "json"])).stdout) as Array<{ revision: number }>).map((r) => r.revision);
    expect(revisions.filter((r) => r === 2)).toHaveLength(1);
    expect(Math.max(...revisions)).toBe(2);
  }, 180_000);

  it("three pushes in a burst deploy one after another, in order, ending on the last tag", async () => {
    const hook = JSON.parse((await corral(server, ["hook", "create", "gh", "--kind", "generic", "--service", "web", "--confirm-after", "1s", "--format", "json"])).stdout) as Hook;
    const statuses: number[] = [];
    for (const tag of ["v3", "v4", "v5"]) {
      const body = JSON.stringify({ service: "web", image: `ghcr.io/team/app:${tag}` });
      statuses.push((await fetch(hook.url, { method: "POST", headers: { "x-hub-signature-256": sign(hook.secret, body) }, body })).status);
    }
    expect(statuses).toEqual([202, 202, 202]);
    await eventually(async () => JSON.stringify(await running("gh")) === JSON.stringify(["ghcr.io/team/app:v5"]), 90_000, 250);
    await eventually(async () => (JSON.parse((await corral(server, ["hook", "deliveries", hook.id, "--format", "json"])).stdout) as Array<{ verdict: string }>).every((d) => d.verdict === "deployed"), 30_000, 250);
    const deliveries = (JSON.parse((await corral(server, ["hook", "deliveries", hook.id, "--format", "json"])).stdout) as Array<{ detail: string; revision: number }>).reverse();
    expect(deliveries.map((d) => d.detail.replace(/ \(revision \d+\)$/, ""))).toEqual(["web → ghcr.io/team/app:v3", "web → ghcr.io/team/app:v4", "web → ghcr.io/team/app:v5"]);
    expect(deliveries.map((d) => d.revision)).toEqual([3, 4, 5]);
    expect((await httpGet("http://127.0.0.1:60032/")).trim()).toBe("v5");
  }, 180_000);

  it("without --confirm-after the upgrade waits for a person, and the next push waits behind it until then", async () => {
    const hook = JSON.parse((await corral(server, ["hook", "create", "gh", "--kind", "generic", "--format", "json"])).stdout) as Hook;
    const push = async (tag: string) => {
      const body = JSON.stringify({ service: "web", image: `ghcr.io/team/app:${tag}` });
      return (await fetch(hook.url, { method: "POST", headers: { "x-hub-signature-256": sign(hook.secret, body) }, body })).status;
    };
    const verdicts = async () => (JSON.parse((await corral(server, ["hook", "deliveries", hook.id, "--format", "json"])).stdout) as Array<{ verdict: string; detail: string }>).reverse().map((d) => `${d.verdict} ${d.detail.replace(/ \(revision \d+\)$/, "")}`);
    expect(await push("v3")).toBe(202);
    await eventually(async () => (await running("gh")).includes("ghcr.io/team/app:v3"), 60_000, 250);
    expect(await push("v4")).toBe(202);
    await new Promise((r) => setTimeout(r, 3000)); // several reconcile ticks: nothing confirms it, nothing moves on
    const ps = JSON.parse((await corral(server, ["ps", "gh", "--format", "json"])).stdout) as Array<{ state: string; scale: string }>;
    expect(ps[0]).toMatchObject({ state: "upgraded", scale: "2/1" });
    expect(await verdicts()).toEqual(["deployed web → ghcr.io/team/app:v3", "queued web → ghcr.io/team/app:v4"]);
    expect((await corral(server, ["up", "-d", "--confirm-upgrade", "-s", "gh"])).code).toBe(0);
    // confirmed: the waiting push goes next
    await eventually(async () => JSON.stringify(await running("gh")) === JSON.stringify(["ghcr.io/team/app:v4"]), 60_000, 250);
    expect(await verdicts()).toEqual(["deployed web → ghcr.io/team/app:v3", "deployed web → ghcr.io/team/app:v4"]);
  }, 180_000);
});
