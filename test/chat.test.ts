import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanupStack, composeFile, corral, eventually, httpGet, stackContainers, testServer } from "./support.js";

// Chatops end to end: signed Slack slash commands to corral's /chat/slack, answered at once and followed up on a
// response_url (a server on loopback standing in for hooks.slack.com), acting on the real engine as the mapped user.
const SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
const build = (tag: string) => execFileSync("docker", ["build", "-q", "-t", `corral-chat:${tag}`, "-"], { input: `FROM corral-hello:latest\nRUN echo ${tag} > /www/index.html\n`, stdio: ["pipe", "ignore", "inherit"] });
const running = async (stack: string) =>
  (await stackContainers(stack))
    .filter((c) => c.State === "running")
    .map((c) => c.Image)
    .sort();

describe("chatops: a Slack slash command", () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  let answers: Server;
  let responseUrl = "";
  const followUps: Array<{ path: string; text: string; response_type: string }> = [];
  let ann = { url: "", token: "" };

  /** A slash command as Slack sends it: a form body, signed with the app's secret, at `ts`; each with a trigger_id of its own (two alike in one second are two requests, not a replay). */
  let triggers = 0;
  const slash = (user: string, text: string, opts: { ts?: number; secret?: string; path?: string } = {}) => {
    const ts = String(opts.ts ?? Math.floor(Date.now() / 1000));
    const body = new URLSearchParams({ token: "legacy", team_id: "T0001", user_id: user, user_name: "x", command: "/corral", text, response_url: `${responseUrl}${opts.path ?? "/r1"}`, trigger_id: `1.2.${++triggers}` }).toString();
    const signature = `v0=${createHmac("sha256", opts.secret ?? SECRET).update(`v0:${ts}:${body}`).digest("hex")}`;
    return { body, headers: { "content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": ts, "x-slack-signature": signature } };
  };
  const send = async (req: { body: string; headers: Record<string, string> }) => {
    const t0 = Date.now();
    const res = await fetch(`${server.url}/chat/slack`, { method: "POST", headers: req.headers, body: req.body });
    return { status: res.status, ms: Date.now() - t0, body: (await res.json()) as { text?: string; message?: string } };
  };
  const after = (path: string, n: number) => eventually(async () => followUps.filter((f) => f.path === path).length >= n, 90_000, 200).then(() => followUps.filter((f) => f.path === path));

  beforeAll(async () => {
    build("v1");
    build("v2");
    answers = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        followUps.push({ path: req.url ?? "", ...(JSON.parse(Buffer.concat(chunks).toString()) as { text: string; response_type: string }) });
        res.end("ok");
      });
    });
    await new Promise<void>((r) => answers.listen(0, "127.0.0.1", r));
    const host = `127.0.0.1:${(answers.address() as AddressInfo).port}`;
    responseUrl = `http://${host}`;
    server = await testServer({ tickMs: 300 });
    expect((await corral(server, ["chat", "setup", "--signing-secret-stdin", "--response-host", host], undefined, `${SECRET}\n`)).code).toBe(0);
    ann = { url: server.url, token: (await corral(server, ["user", "create", "ann", "--group", "lab"])).stdout.trim() };
    await corral(server, ["user", "create", "cid", "--group", "other"]);
    expect((await corral(server, ["chat", "map", "U0ANN", "ann"])).code).toBe(0);
    expect((await corral(server, ["chat", "map", "U0CID", "cid"])).code).toBe(0);
    const up = await corral(ann, ["up", "-d", "-s", "chatty", "-f", composeFile(`services:\n  web:\n    image: corral-chat:v1\n    ports: ["60041:80"]\n    cap_drop: [ALL]\n    cap_add: [NET_BIND_SERVICE]\n`)]);
    expect(up.stderr).toBe("");
  }, 180_000);

  afterAll(async () => {
    await server?.stop();
    await new Promise<void>((r) => answers?.close(() => r()));
    await cleanupStack("chatty");
  });

  it("upgrade, ps, logs, rollback and history, as the mapped user: answered at once, followed up with progress and the outcome", async () => {
    const res = await send(slash("U0ANN", "upgrade chatty/web corral-chat:v2", { path: "/up" }));
    expect(res.status).toBe(200);
    expect(res.ms).toBeLessThan(3000);
    console.log(`chat: a slash command answered in ${res.ms} ms`);
    expect(res.body.text).toBe("corral: upgrade chatty/web corral-chat:v2 (as ann)…");
    const ups = await after("/up", 2);
    expect(ups[0]!.text).toMatch(/^upgrade chatty\/web to corral-chat:v2: started/);
    expect(ups[1]!.text).toMatch(/^upgrade chatty\/web to corral-chat:v2: done/);
    expect(ups[1]!.text).toContain("Upgrading web");
    expect(ups[1]!.response_type).toBe("in_channel");
    expect(await running("chatty")).toContain("corral-chat:v2");
    expect((await httpGet("http://127.0.0.1:60041/")).trim()).toBe("v2");

    await send(slash("U0ANN", "ps chatty", { path: "/ps" }));
    expect((await after("/ps", 1))[0]!.text).toMatch(/chatty\/web\s+corral-chat:v2\s+(active|upgraded)/);

    await send(slash("U0ANN", "logs --tail 5 chatty/web", { path: "/logs" }));
    expect((await after("/logs", 1))[0]!.text).toMatch(/^```/);

    await eventually(async () => (await corral(ann, ["service", "inspect", "chatty/web"])).stdout.includes('"State": "completed"'), 30_000, 250);
    await send(slash("U0ANN", "rollback chatty/web", { path: "/rb" }));
    expect((await after("/rb", 2))[1]!.text).toMatch(/^rollback chatty\/web: done/);
    await eventually(async () => JSON.stringify(await running("chatty")) === JSON.stringify(["corral-chat:v1"]), 30_000, 250);

    await send(slash("U0ANN", "history chatty", { path: "/h" }));
    expect((await after("/h", 1))[0]!.text).toMatch(/chatops/);
    // a command that is none: the usage, at once
    expect((await send(slash("U0ANN", "deploy chatty"))).body.text).toMatch(/^no command deploy\nCommands:/);
  }, 180_000);

  it("a user of another group sees nothing of the stack; an unmapped one is refused; chat never acts as the admin", async () => {
    await send(slash("U0CID", "rollback chatty", { path: "/cid" }));
    expect((await after("/cid", 1))[0]!.text).toContain("stack chatty not found");
    const history = (await corral(server, ["history", "chatty"])).stdout;
    const nobody = await send(slash("U0NOBODY", "rollback chatty"));
    expect(nobody.status).toBe(200);
    expect(nobody.body.text).toBe("You are not a corral user here: ask an admin to run 'corral chat map U0NOBODY USER'.");
    const admin = await corral(server, ["chat", "map", "U0ROOT", "admin"]);
    expect(admin.code).not.toBe(0);
    expect(admin.stderr).toContain("not the admin");
    await new Promise((r) => setTimeout(r, 1000));
    expect((await corral(server, ["history", "chatty"])).stdout).toBe(history);
  }, 60_000);

  it("a bad signature, a stale timestamp, a replay and a response_url elsewhere are refused, changing nothing", async () => {
    const before = followUps.length;
    expect((await send(slash("U0ANN", "ps chatty", { secret: "not-the-app-secret-at-all" }))).status).toBe(401);
    expect((await send(slash("U0ANN", "ps chatty", { ts: Math.floor(Date.now() / 1000) - 600 }))).status).toBe(401);
    const once = slash("U0ANN", "ps chatty", { path: "/once" });
    expect((await send(once)).status).toBe(200);
    const replay = await send(once);
    expect(replay.status).toBe(401);
    expect(replay.body.message).toContain("replayed");
    const unsigned = slash("U0ANN", "ps chatty");
    expect((await send({ body: unsigned.body, headers: { "content-type": "application/x-www-form-urlencoded" } })).status).toBe(401);
    const elsewhere = slash("U0ANN", "ps chatty");
    const moved = { ...elsewhere, body: elsewhere.body.replace(encodeURIComponent(responseUrl), encodeURIComponent("http://198.18.0.9:80")) };
    expect((await send(moved)).status).toBe(401); // the body changed: its signature no longer matches
    await after("/once", 1);
    await new Promise((r) => setTimeout(r, 500));
    expect(followUps.length).toBe(before + 1);
  }, 60_000);
});
