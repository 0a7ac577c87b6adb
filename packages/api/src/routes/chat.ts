import { createHmac, timingSafeEqual } from "node:crypto";
import type { Context } from "hono";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import { HTTPException } from "hono/http-exception";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { CHAT_USAGE, invalid, notFound, parseChatCommand, type ChatCommand, type HistoryLife, type Logger, type ServiceRow } from "@corral/core";
import type { ChatJob, ChatJobStore, ChatStore } from "@corral/store";
import type { Principal } from "../auth.js";
import type { Env } from "../env.js";
import { RateLimited } from "../limits.js";
import { namingOps } from "../ops/op-ids.js";
import { body, params } from "../validate.js";

/**
 * Chatops: a Slack slash command (`/corral ps shop`). Each request is
 * verified with the app's signing secret (`v0=` HMAC-SHA256 of
 * `v0:TIMESTAMP:BODY`, the timestamp within 5 minutes, a signature seen
 * before refused), answered at once, and followed up through its
 * `response_url` with progress and the outcome. The chat user acts as the
 * corral user mapped to them (`corral chat map`), through the same routes
 * and checks as the CLI; anyone unmapped is refused.
 */
export interface ChatDeps {
  chat: ChatStore;
  principalOf(name: string): Promise<Principal | undefined>;
  /** A request to the API's routes as `principal`. */
  call(principal: Principal, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }>;
  /** Commands whose work runs after their request is answered (Slack waits 3 s at most), kept until it has. */
  jobs: Pick<ChatJobStore, "put" | "take" | "done" | "due">;
  /**
   * Have a stored job run (`runJob`), after the answer: the embedded server runs it in this process; on AWS it
   * goes on the chat queue to a function of its own. Lost on the way, the control loop's tick finds it (`redrive`).
   */
  dispatch?: (id: string) => Promise<void>;
  /** Names a job's operations after the job (its run again after a crash starts none of them twice): see namingOps. */
  opKey: Buffer;
  /** POST a follow-up (default: fetch). */
  post?: (url: string, body: unknown) => Promise<void>;
  clock(): number;
  /** Counts slash commands before the signing secret is unwrapped (the URL is unauthenticated); past the limit, 429. */
  take?: (key: string) => Promise<{ ok: true } | { ok: false; retryAfterMs: number }>;
  log?: Logger;
}

/** Slash commands a chat user may send a minute. */
export const CHAT_COMMANDS_PER_MINUTE = 120;

export const SLACK_WINDOW_S = 5 * 60;
/** A job's lease: longer than its longest follow (15 minutes), so that no second runner takes it while one works. */
export const CHAT_JOB_LEASE_MS = 16 * 60_000;
/** A job nobody took this long after it was made: its message was lost; the tick sends it again. */
export const CHAT_JOB_DUE_MS = 30_000;
const SLACK_BODY_LIMIT = 16 * 1024;

/** Slack's request signature, checked in constant time. */
export function slackSignatureValid(secret: string, timestamp: string, body: Buffer, signature: string | undefined): boolean {
  const m = /^v0=([0-9a-f]{64})$/.exec(signature ?? "");
  if (!m) return false;
  const expected = createHmac("sha256", secret).update(`v0:${timestamp}:`).update(body).digest();
  const given = Buffer.from(m[1]!, "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const responseHost = z.string().regex(/^[a-z0-9.-]{1,253}(:\d{1,5})?$/i, "a host[:port]");
const configBody = z.object({ signingSecret: z.string().min(16).max(256), responseHosts: z.array(responseHost).max(16).default(["hooks.slack.com"]) }).strict();
const mapBody = z.object({ user: z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, "a corral user name") }).strict();
const chatUserPattern = /^[UW][A-Z0-9]{2,20}$/;

/** A table as chat shows it: a code block, columns padded. */
function table(head: string[], rows: string[][]): string {
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  return ["```", ...all.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()), "```"].join("\n");
}

const clip = (lines: string[], max = 40) => (lines.length > max ? [...lines.slice(0, 5), `… ${lines.length - max + 5} lines …`, ...lines.slice(-(max - 6))] : lines);

type Say = (text: string, channel?: boolean) => Promise<void>;

/** A command's work, as the chat user's corral user, through the API's own routes. */
function chatRunner(deps: ChatDeps) {
  const call = async <T>(p: Principal, method: string, path: string, body?: unknown): Promise<T> => {
    const res = await deps.call(p, method, path, body);
    if (res.status >= 400) throw new Error((res.body as { message?: string }).message ?? `${method} ${path}: ${res.status}`);
    return res.body as T;
  };

  /** Follow an operation's events to its end: its progress lines, and whether it succeeded (a failure that rolled back by itself: no). */
  async function follow(p: Principal, stack: string, op: string, from: number): Promise<{ ok: boolean; lines: string[]; reason?: string }> {
    let after = from;
    let following = op;
    let failure: string | undefined;
    const lines: string[] = [];
    const until = deps.clock() + 15 * 60_000;
    while (deps.clock() < until) {
      type Page = { version: number; events: Array<{ type: string; line: string | null; event: { op?: string; reason?: string } }> };
      const page = await call<Page>(p, "GET", `/v1/stacks/${stack}/events?after=${after}&wait=10`);
      for (const e of page.events) {
        if (e.line) lines.push(...e.line.split("\n"));
        if (e.type === "OperationStarted" && e.event.op === `${following}-rollback`) following = e.event.op;
        if (e.event.op !== following) continue;
        if (e.type === "OperationSucceeded") return failure ? { ok: false, lines, reason: failure } : { ok: true, lines };
        if (e.type === "OperationFailed") {
          if (!(e.event.reason ?? "").includes("rolling back")) return { ok: false, lines, reason: e.event.reason ?? "failed" };
          failure = e.event.reason;
        }
      }
      after = page.version;
    }
    return { ok: false, lines, reason: "still running after 15 minutes" };
  }

  /** A change's two messages: started (its operation), then its outcome with its progress lines, to the channel. */
  const mutate = async (p: Principal, say: Say, stack: string, res: { op?: string; version: number }, what: string) => {
    if (!res.op) return say(`${what}: nothing to change`);
    await say(`${what}: started (operation ${res.op})`);
    const end = await follow(p, stack, res.op, res.version - 1);
    const body = end.lines.length ? `\n${["```", ...clip(end.lines), "```"].join("\n")}` : "";
    await say(end.ok ? `${what}: done${body}` : `${what}: failed: ${end.reason}${body}`, true);
  };

  /** `logs`: the last lines of a stack's or a service's containers, read as `corral logs` reads them. */
  async function logs(p: Principal, cmd: Extract<ChatCommand, { verb: "logs" }>): Promise<string> {
    const target = cmd.service ? `${cmd.stack}/${cmd.service}` : cmd.stack;
    const session = await call<{ id: string }>(p, "POST", "/v1/sessions", { type: "logs", target, tail: cmd.tail, follow: false });
    let cursor = "{}";
    const lines: string[] = [];
    for (let round = 0; round < 20; round++) {
      type Page = { chunks: Array<{ container: string; data: string }>; cursor: unknown; done: boolean };
      const page = await call<Page>(p, "GET", `/v1/sessions/${session.id}?cursor=${encodeURIComponent(cursor)}&wait=5`);
      for (const c of page.chunks) for (const l of Buffer.from(c.data, "base64").toString("utf8").split("\n")) if (l) lines.push(cmd.service ? l : `${c.container} | ${l}`);
      cursor = JSON.stringify(page.cursor);
      if (page.done) break;
    }
    return lines.length ? ["```", ...clip(lines, cmd.tail + 1).map((l) => l.slice(0, 300)), "```"].join("\n") : `no logs from ${target}`;
  }

  /** `history`: the current life's last revisions. */
  async function history(p: Principal, stack: string): Promise<string> {
    const { lives } = await call<{ lives: HistoryLife[] }>(p, "GET", `/v1/stacks/${stack}/history`);
    const rows = (lives.at(-1)?.rows ?? []).slice(-15);
    const changed = (r: (typeof rows)[number]) => r.rollback ?? r.changed.map((c) => `${c.service}: ${c.keys.join(", ")}`).join("; ");
    return table(["REV", "TIME", "BY", "SOURCE", "CHANGED"], rows.map((r) => [`${r.revision}${r.current ? "*" : ""}`, r.time ?? "", r.by, r.source, changed(r)]));
  }

  /** Run a command as the user; what to say, in one message (the outcome) or two (started, then the outcome). */
  async function run(p: Principal, cmd: ChatCommand, say: Say): Promise<void> {
    switch (cmd.verb) {
      case "help":
        return say(["Commands:", ...CHAT_USAGE].join("\n"));
      case "ps": {
        const rows = cmd.stack ? (await call<{ services: ServiceRow[] }>(p, "GET", `/v1/stacks/${cmd.stack}`)).services : await call<ServiceRow[]>(p, "GET", "/v1/services");
        const shown = cmd.service ? rows.filter((r) => r.name === `${cmd.stack}/${cmd.service}`) : rows;
        if (cmd.service && shown.length === 0) throw notFound(`stack ${cmd.stack} has no service ${cmd.service}`);
        return say(table(["NAME", "IMAGE", "STATE", "SCALE", "ENDPOINTS"], shown.map((r) => [r.name, r.image, r.state, r.scale, r.endpoints])));
      }
      case "history":
        return say(await history(p, cmd.stack));
      case "up": {
        const exported = await call<{ files: Record<string, string> }>(p, "GET", `/v1/stacks/${cmd.stack}/export`);
        const files = [{ name: "docker-compose.yml", document: parseYaml(exported.files["docker-compose.yml"] ?? "") as unknown }];
        const rancher = exported.files["rancher-compose.yml"] ? { name: "rancher-compose.yml", document: parseYaml(exported.files["rancher-compose.yml"]) as unknown } : undefined;
        return mutate(p, say, cmd.stack, await call(p, "POST", `/v1/stacks/${cmd.stack}/up`, { files, ...(rancher ? { rancher } : {}), source: "chatops" }), `up ${cmd.stack}`);
      }
      case "upgrade": {
        const body = cmd.image ? { patch: { image: cmd.image }, source: "chatops" } : { patch: {}, force: true, source: "chatops" };
        const what = `upgrade ${cmd.stack}/${cmd.service}${cmd.image ? ` to ${cmd.image}` : ""}`;
        return mutate(p, say, cmd.stack, await call(p, "POST", `/v1/stacks/${cmd.stack}/services/${cmd.service}/update`, body), what);
      }
      case "confirm":
        return mutate(p, say, cmd.stack, await call(p, "POST", `/v1/stacks/${cmd.stack}/up`, { confirmUpgrade: true, source: "chatops" }), `confirm ${cmd.stack}`);
      case "rollback": {
        if (cmd.service) {
          const res = await call<{ op?: string; version: number }>(p, "POST", `/v1/stacks/${cmd.stack}/services/${cmd.service}/rollback`, { source: "chatops" });
          return mutate(p, say, cmd.stack, res, `rollback ${cmd.stack}/${cmd.service}`);
        }
        const to = cmd.toRevision ? { toRevision: cmd.toRevision } : {};
        const res = await call<{ op?: string; version: number }>(p, "POST", `/v1/stacks/${cmd.stack}/up`, { rollback: true, source: "chatops", ...to });
        return mutate(p, say, cmd.stack, res, `rollback ${cmd.stack}${cmd.toRevision ? ` to revision ${cmd.toRevision}` : ""}`);
      }
      case "logs":
        return say(await logs(p, cmd));
    }
  }

  return { run };
}

/** The settings, kept a minute in this process: a forged request costs no unwrap of the signing secret (a KMS call on AWS). */
function chatSettings(deps: ChatDeps) {
  let cached: { until: number; config: Awaited<ReturnType<ChatStore["config"]>> } | undefined;
  return {
    async get() {
      if (cached && cached.until > deps.clock()) return cached.config;
      const config = await deps.chat.config();
      cached = { until: deps.clock() + 60_000, config };
      return config;
    },
    /** This process reads the new secret at once (others within a minute). */
    forget() {
      cached = undefined;
    },
  };
}

/** The admin's settings (under /v1): the signing secret, who is who. */
function chatAdminRoutes(deps: ChatDeps, settings: ReturnType<typeof chatSettings>) {
  const adminOnly = createMiddleware<Env>(async (c, next) => {
    if (!c.get("principal").admin) throw new HTTPException(403, { message: "chat settings are the admin's" });
    await next();
  });
  const chatUserParam = params((p) => {
    const chatUser = p.chatUser ?? "";
    if (!chatUserPattern.test(chatUser)) throw invalid(`chat user: "${chatUser.slice(0, 40)}" is not a Slack user id (U… or W…)`, "chatUser");
    return { chatUser };
  });
  return new Hono<Env>()
    .put("/chat/config", adminOnly, body(configBody), async (c) => {
      const given = c.req.valid("json");
      const saved = await deps.chat.configure(given.signingSecret, given.responseHosts);
      settings.forget();
      return c.json(saved);
    })
    .put("/chat/users/:chatUser", adminOnly, chatUserParam, body(mapBody), async (c) => {
      const { chatUser } = c.req.valid("param");
      const { user } = c.req.valid("json");
      const p = await deps.principalOf(user);
      if (!p) throw notFound(`no user ${user}`);
      // a chat account acts with a user's rights, never the admin's (a stolen chat session is not the keys to everything)
      if (p.admin) throw invalid("user: chat users act as ordinary users, not the admin", "user");
      await deps.chat.map(chatUser, user);
      return c.json({ chatUser, user });
    })
    .delete("/chat/users/:chatUser", adminOnly, async (c) => {
      if (!(await deps.chat.unmap(c.req.param("chatUser")))) throw notFound(`chat user ${c.req.param("chatUser").slice(0, 40)} is not mapped`);
      return c.json({ chatUser: c.req.param("chatUser"), removed: true });
    })
    .get("/chat/users", adminOnly, async (c) => c.json(await deps.chat.mappings()));
}

/**
 * A stored command's work, run once at a time (the job's lease) and again only if its runner died: as the
 * corral user the chat user is mapped to now (unmapped since: refused), its operations named after the job.
 */
function chatJobs(deps: ChatDeps, run: ReturnType<typeof chatRunner>["run"]) {
  const log = deps.log;
  const post =
    deps.post ??
    (async (url: string, body: unknown) => {
      const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal: AbortSignal.timeout(5000), redirect: "error" });
      if (!res.ok) throw new Error(`response_url answered ${res.status}`);
    });
  async function runJob(id: string): Promise<void> {
    const job = await deps.jobs.take(id, CHAT_JOB_LEASE_MS);
    if (!job) return; // done, or another runner has it
    const say = (message: string, channel = false) => post(job.responseUrl, { response_type: channel ? "in_channel" : "ephemeral", text: message });
    const asked = job.text.trim() || "help";
    try {
      const still = (await deps.chat.userOf(job.chatUser)) === job.user;
      const principal = still ? await deps.principalOf(job.user) : undefined;
      const cmd = parseChatCommand(job.text);
      if (!principal) await say(`${asked}: refused: you are no longer mapped to corral user ${job.user}`);
      else if ("error" in cmd) await say(cmd.error);
      else await namingOps(deps.opKey, `chat\n${job.id}`, () => run(principal, cmd, say));
    } catch (e) {
      await say(`${asked}: ${e instanceof Error ? e.message : String(e)}`).catch((err: unknown) => log?.error("chat follow-up", { job: id, error: String(err) }));
    }
    await deps.jobs.done(id);
  }
  const dispatch = deps.dispatch ?? (async (id: string) => void runJob(id).catch((e: unknown) => log?.error("chat job", { job: id, error: String(e) })));
  /** Jobs whose message was lost (a queue that forgot it, a server that died before it sent it): sent again. */
  async function redrive(): Promise<void> {
    for (const id of await deps.jobs.due(CHAT_JOB_DUE_MS)) await dispatch(id);
  }
  return { runJob, dispatch, redrive };
}

/** Where Slack posts slash commands: no bearer token; the signature is the credential. */
function chatReceiveRoutes(deps: ChatDeps, settings: ReturnType<typeof chatSettings>, dispatch: (id: string) => Promise<void>) {
  const log = deps.log;
  const refuse = (why: string) => new HTTPException(401, { message: why });

  /** Slack's request, verified: its signing secret's signature, a recent timestamp, seen once; then counted per chat user. */
  const verified = async (c: Context) => {
    const raw = Buffer.from(await c.req.arrayBuffer());
    const config = await settings.get();
    if (!config) throw refuse("chat is not set up ('corral chat setup')");
    const ts = c.req.header("x-slack-request-timestamp") ?? "";
    const signature = c.req.header("x-slack-signature");
    if (!/^\d{1,12}$/.test(ts) || Math.abs(Math.floor(deps.clock() / 1000) - Number(ts)) > SLACK_WINDOW_S) throw refuse("stale or missing X-Slack-Request-Timestamp");
    if (!slackSignatureValid(config.signingSecret, ts, raw, signature)) throw refuse("bad or missing signature");
    if (!(await deps.chat.firstSeen(signature!.slice(3), SLACK_WINDOW_S * 2))) throw refuse("a replayed request");
    // counted once verified, per chat user: forged requests use up nobody's commands
    const taken = deps.take ? await deps.take(`chat:${(new URLSearchParams(raw.toString("utf8")).get("user_id") ?? "").slice(0, 24)}`) : { ok: true as const };
    if (!taken.ok) throw new RateLimited(`too many chat commands: try again in ${Math.ceil(taken.retryAfterMs / 1000)} s`, Math.max(1, Math.ceil(taken.retryAfterMs / 1000)));
    return { raw, config };
  };

  const limit = bodyLimit({ maxSize: SLACK_BODY_LIMIT, onError: (c) => c.json({ error: "too_large", message: `a command is at most ${SLACK_BODY_LIMIT} bytes` }, 413) });
  return new Hono()
    .post("/slack", limit, async (c) => {
      const { raw, config } = await verified(c);
      const form = new URLSearchParams(raw.toString("utf8"));
      const userId = form.get("user_id") ?? "";
      const text = form.get("text") ?? "";
      const responseUrl = form.get("response_url") ?? "";
      if (!chatUserPattern.test(userId)) throw invalid("user_id: not a Slack user id", "user_id");
      let url: URL;
      try {
        url = new URL(responseUrl);
      } catch {
        throw invalid("response_url: not a URL", "response_url");
      }
      if (!config.responseHosts.includes(url.host) || (url.protocol !== "https:" && !/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/.test(url.host))) {
        throw invalid(`response_url: ${url.host} is not a host chat answers go to (${config.responseHosts.join(", ")})`, "response_url");
      }
      const user = await deps.chat.userOf(userId);
      const principal = user ? await deps.principalOf(user) : undefined;
      if (!principal) {
        log?.info("chat command refused", { chatUser: userId, why: "not mapped" });
        return c.json({ response_type: "ephemeral", text: `You are not a corral user here: ask an admin to run 'corral chat map ${userId} USER'.` });
      }
      const cmd = parseChatCommand(text);
      if ("error" in cmd) return c.json({ response_type: "ephemeral", text: [`${cmd.error}`, "Commands:", ...CHAT_USAGE].join("\n") });
      log?.info("chat command", { chatUser: userId, user: principal.name, verb: cmd.verb });
      const job: ChatJob = { id: crypto.randomUUID(), chatUser: userId, user: principal.name, text, responseUrl: url.toString(), created: deps.clock() };
      await deps.jobs.put(job);
      await dispatch(job.id).catch((e: unknown) => log?.error("chat job dispatch", { job: job.id, error: String(e) }));
      return c.json({ response_type: "ephemeral", text: `corral: ${text.trim() || "help"} (as ${principal.name})…` });
    });
}

/** Chat's routes: the admin's settings under /v1 (admin), and where Slack posts its commands (receive). */
export function chatRoutes(deps: ChatDeps) {
  const settings = chatSettings(deps);
  const jobs = chatJobs(deps, chatRunner(deps).run);
  return { admin: chatAdminRoutes(deps, settings), receive: chatReceiveRoutes(deps, settings, jobs.dispatch), runJob: jobs.runJob, redrive: jobs.redrive };
}
