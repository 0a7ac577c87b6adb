import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registryResolver } from "./ops/digests.js";

// The registry client that pins digests, against real HTTP servers on loopback speaking the registry's protocol.
const digest = `sha256:${"c".repeat(64)}`;
const login = { username: "ann", password: "pw" };
const basic = `Basic ${Buffer.from("ann:pw").toString("base64")}`;
const seen: Array<{ method?: string; url?: string; accept?: string; auth?: string }> = [];

function serve(handler: (req: IncomingMessage, res: ServerResponse, origin: string) => void): Promise<{ server: Server; at: string }> {
  const server = createServer((req, res) => {
    seen.push({ method: req.method, url: req.url, accept: req.headers.accept, auth: req.headers.authorization });
    handler(req, res, `127.0.0.1:${(server.address() as AddressInfo).port}`);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, at: `127.0.0.1:${(server.address() as AddressInfo).port}` })));
}

let basicReg: Awaited<ReturnType<typeof serve>>;
let bearerReg: Awaited<ReturnType<typeof serve>>;
beforeAll(async () => {
  basicReg = await serve((req, res) => {
    if (req.url?.startsWith("/v2/moved/")) return res.writeHead(307, { location: "http://169.254.169.254/latest" }).end();
    if (req.headers.authorization !== basic) return res.writeHead(401, { "www-authenticate": 'Basic realm="test"' }).end();
    if (req.url === "/v2/team/app/manifests/1") return res.writeHead(200, { "docker-content-digest": digest }).end();
    res.writeHead(404).end();
  });
  bearerReg = await serve((req, res, origin) => {
    if (req.url?.startsWith("/token")) {
      const url = new URL(req.url, "http://x");
      if (req.headers.authorization !== basic || url.searchParams.get("scope") !== "repository:library/web:pull") return res.writeHead(401).end();
      return res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token: "t0k" }));
    }
    if (req.url?.startsWith("/v2/evil/")) return res.writeHead(401, { "www-authenticate": 'Bearer realm="http://169.254.169.254/token"' }).end();
    if (req.headers.authorization !== "Bearer t0k") return res.writeHead(401, { "www-authenticate": `Bearer realm="http://${origin}/token",service="reg"` }).end();
    res.writeHead(200, { "docker-content-digest": digest }).end();
  });
});
afterAll(() => {
  basicReg.server.close();
  bearerReg.server.close();
});

describe("asking a registry what a tag names now", () => {
  it("a HEAD of the manifest with the stack's login (Basic), accepting manifest lists and OCI indexes: the content digest", async () => {
    const resolve = registryResolver({ insecure: [basicReg.at] });
    seen.length = 0;
    expect(await resolve(`${basicReg.at}/team/app:1`, async () => login)).toEqual({ digest });
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual(["HEAD /v2/team/app/manifests/1", "HEAD /v2/team/app/manifests/1"]);
    expect(seen[0]!.accept).toContain("application/vnd.docker.distribution.manifest.list.v2+json");
    expect(seen[0]!.accept).toContain("application/vnd.oci.image.index.v1+json");
    expect(await resolve(`${basicReg.at}/team/app:1`)).toEqual({ unchecked: `registry ${basicReg.at} refused to answer without a login ('corral registry add') (401)` });
    expect(await resolve(`${basicReg.at}/team/app:2`, async () => login)).toEqual({ unchecked: `registry ${basicReg.at} has no team/app:2` });
  });

  it("a Bearer challenge: a token from the realm, for pull of that repository, with the login", async () => {
    const resolve = registryResolver({ insecure: [bearerReg.at] });
    expect(await resolve(`${bearerReg.at}/library/web`, async () => login)).toEqual({ digest });
    expect(seen.some((s) => s.url?.startsWith("/token?service=reg&scope=repository%3Alibrary%2Fweb%3Apull"))).toBe(true);
  });

  it("never a private address the site did not list, over HTTP, through a redirect or as a token realm", async () => {
    seen.length = 0;
    const strict = registryResolver();
    const privateAddress = (a: string) => ({ unchecked: `${a} is a private address the control plane does not ask (a site lists such a registry in insecureRegistries)` });
    expect(await strict(`${basicReg.at}/team/app:1`, async () => login)).toEqual(privateAddress("127.0.0.1"));
    expect(await strict("10.1.2.3:5000/app:1")).toEqual(privateAddress("10.1.2.3"));
    expect(await strict("169.254.169.254/latest/meta-data:x")).toEqual({ unchecked: expect.stringContaining("is a private address") as unknown });
    expect(await registryResolver({ insecure: ["reg.example.org"] })("[::1]:5000/app:1")).toEqual(privateAddress("[::1]"));
    expect(seen).toEqual([]); // nothing was asked
    const listed = registryResolver({ insecure: [basicReg.at, bearerReg.at] });
    expect(await listed(`${basicReg.at}/moved/app:1`)).toEqual({ unchecked: `registry ${basicReg.at} answered 307` });
    expect(await listed(`${bearerReg.at}/evil/app:1`, async () => login)).toEqual({
      unchecked: `registry ${bearerReg.at}: its login realm: 169.254.169.254 is not an insecure registry of this site: asked over HTTPS only`,
    });
    expect(seen.some((s) => s.url?.includes("169.254"))).toBe(false);
  });

  it("looks the login up only when the registry asks for one: none for a registry that answers without, or cannot be reached", async () => {
    let lookups = 0;
    const lookup = async () => {
      lookups++;
      return login;
    };
    const open = await serve((_req, res) => void res.writeHead(200, { "docker-content-digest": digest }).end());
    try {
      expect(await registryResolver({ insecure: [open.at] })(`${open.at}/team/app:1`, lookup)).toEqual({ digest });
      expect(lookups).toBe(0);
      const failing: typeof fetch = () => Promise.reject(Object.assign(new TypeError("fetch failed"), { cause: { code: "ENOTFOUND" } }));
      expect(await registryResolver({ fetch: failing })("nginx:1", lookup)).toEqual({ unchecked: "registry docker.io could not be reached (ENOTFOUND)" });
      expect(lookups).toBe(0);
      expect(await registryResolver({ insecure: [basicReg.at] })(`${basicReg.at}/team/app:1`, lookup)).toEqual({ digest });
      expect(lookups).toBe(1);
      // a lookup that fails is no login (the registry then says it wants one), not an unreachable registry
      const broken = async () => Promise.reject(new Error("store down"));
      expect(await registryResolver({ insecure: [basicReg.at] })(`${basicReg.at}/team/app:1`, broken)).toEqual({
        unchecked: `registry ${basicReg.at} refused to answer without a login ('corral registry add') (401)`,
      });
    } finally {
      open.server.close();
    }
  });

  it("a registry that cannot be reached is not asked again for a while: up is not held up by it each time", async () => {
    let now = 0;
    let asked = 0;
    const failing: typeof fetch = () => {
      asked++;
      return Promise.reject(Object.assign(new TypeError("fetch failed"), { cause: { code: "ENOTFOUND" } }));
    };
    const resolve = registryResolver({ fetch: failing, clock: () => now, downForMs: 30_000 });
    expect(await resolve("corral-busybox:latest")).toEqual({ unchecked: "registry docker.io could not be reached (ENOTFOUND)" });
    expect(await resolve("nginx:1")).toEqual({ unchecked: "registry docker.io could not be reached (ENOTFOUND)" });
    expect(asked).toBe(1);
    now = 30_001;
    await resolve("nginx:1");
    expect(asked).toBe(2);
  });
});
