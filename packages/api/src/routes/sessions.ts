import { randomBytes } from "node:crypto";
import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import { z } from "zod";
import { conflict, displayName, invalid, notFound, sessionChunkSchema } from "@corral/core";
import type { QueueSender } from "@corral/queue";
import type { ChangeFeed, HostStore, SessionCursor, SessionRecord, SessionStore } from "@corral/store";
import type { Principal } from "../auth.js";
import type { Env } from "../env.js";
import { hostIdPattern } from "./hosts.js";
import type { followLimiter } from "../limits.js";
import type { StackOps } from "../ops/index.js";
import { intParam, jsonParam, query, waitParam } from "../query.js";
import { body } from "../validate.js";

const sessionBody = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("logs"),
    target: z.string().min(1),
    follow: z.boolean().default(false),
    tail: z.number().int().min(0).optional(),
    since: z.number().int().optional(),
    timestamps: z.boolean().default(false),
  }),
  z.object({
    type: z.literal("exec"),
    target: z.string().min(1),
    cmd: z.array(z.string()).min(1),
    slot: z.number().int().min(1).optional(),
    interactive: z.boolean().default(false),
    tty: z.object({ rows: z.number().int().min(1).max(1000), cols: z.number().int().min(1).max(1000) }).optional(),
  }),
]);
const inputBody = z.object({ seq: z.number().int().min(0), data: z.string().max(200_000), eof: z.boolean().default(false) });
const chunksBody = z.object({
  // an agent posts chunks of at most 32 KiB (base64: ~43,700 characters)
  chunks: z.array(sessionChunkSchema.extend({ container: z.string().max(300), data: z.string().max(64 * 1024) })).max(1000),
  end: z.object({ exitCode: z.number().int().optional(), error: z.string().max(2000).optional() }).optional(),
});
/** A follow nobody has read for this long is let go: the agent stops at its next post. */
const ABANDONED_MS = 60_000;
/** A session read position: per host, the last chunk read. */
const sessionCursor = z.record(z.string().regex(hostIdPattern, "a host id"), z.number().int().min(0));

export interface SessionDeps {
  sessions: SessionStore;
  hosts: Pick<HostStore, "list">;
  feed: Pick<ChangeFeed, "wait" | "changed" | "closed">;
  sender: Pick<QueueSender, "send">;
  follows: ReturnType<typeof followLimiter>;
  clock: () => number;
}

/** What a host is asked to do for a session: the logs or the command, of the containers it has. */
function sessionMessage(id: string, asked: z.infer<typeof sessionBody>, containers: string[]) {
  const what =
    asked.type === "logs"
      ? { logs: { follow: asked.follow, timestamps: asked.timestamps, ...(asked.tail !== undefined ? { tail: asked.tail } : {}), ...(asked.since !== undefined ? { since: asked.since } : {}) } }
      : { exec: { cmd: asked.cmd, ...(asked.interactive ? { interactive: true } : {}), ...(asked.tty ? { tty: asked.tty } : {}) } };
  return { kind: "session" as const, id, type: asked.type, containers, ...what };
}

/**
 * Logs and exec: a session. The API finds the containers and their hosts,
 * sends each host a session message on its queue, and serves the chunks the
 * agents post back (under their host tokens, see hostSessionRoutes) to the
 * user who asked, by long-poll. Agents accept no inbound connection.
 */
export function sessionRoutes(ops: StackOps, deps: SessionDeps) {
  const { clock } = deps;

  async function mySession(id: string, p: Principal) {
    const s = await deps.sessions.get(id);
    if (!s || (s.owner !== p.name && !p.admin)) throw notFound(`session ${id} not found`);
    return s;
  }
  const execSession = createMiddleware<Env & { Variables: { session: SessionRecord } }>(async (c, next) => {
    const s = await mySession(c.req.param("id") ?? "", c.get("principal"));
    if (s.type !== "exec") throw invalid("only an exec session takes input", "id");
    c.set("session", s);
    await next();
  });

  return new Hono<Env>()
    .post("/", body(sessionBody), async (c) => {
      const asked = c.req.valid("json");
      const p = c.get("principal");
      const { containers, of } = await ops.resolveContainers(asked.target, p, asked.type === "exec" ? (asked.slot ?? 1) : undefined);
      if (asked.type === "exec") {
        const target = containers[0]!;
        if (target.state !== "running") throw conflict(`container ${displayName(target.name)} is not running (it is ${target.state}): 'corral start' it first`);
      }
      const hosts: Record<string, string[]> = {};
      for (const ct of containers) hosts[ct.host] = [...(hosts[ct.host] ?? []), ct.name];
      const known = new Map((await deps.hosts.list()).map((h) => [h.id, h]));
      for (const h of Object.keys(hosts)) if (!known.has(h)) throw conflict(`host ${h} of ${hosts[h]!.join(", ")} is not registered`);
      const id = `s-${Date.now().toString(36)}${randomBytes(6).toString("hex")}`;
      await deps.sessions.create({ id, owner: p.name, type: asked.type, hosts, created: clock() });
      for (const [host, names] of Object.entries(hosts)) {
        await deps.sender.send(known.get(host)!.queueUrl, [{ body: sessionMessage(id, asked, names), group: `session/${id}`, dedupId: `session.${id}`, to: host }]);
      }
      // `of`: what the target named (a stack's or service's lines are prefixed with their container, as compose does)
      return c.json({ id, containers: containers.map((x) => x.name), of }, 201);
    })
    .get("/:id", query({ cursor: jsonParam(sessionCursor).default("{}"), wait: waitParam }), async (c) => {
      const s = await mySession(c.req.param("id"), c.get("principal"));
      const q = c.req.valid("query");
      const cursor: SessionCursor = q.cursor;
      const deadline = clock() + q.wait * 1000;
      const hosts = Object.keys(s.hosts);
      await deps.sessions.touch(s.id);
      const release = q.wait > 0 ? deps.follows.enter(c.get("principal").scope) : () => {};
      try {
        for (;;) {
          const status = await deps.sessions.status(s.id);
          const page = await deps.sessions.read(s.id, hosts, cursor);
          const done = hosts.every((h) => status.ended[h]);
          if (page.chunks.length > 0 || done || clock() >= deadline || c.req.raw.signal.aborted || deps.feed.closed) {
            const ends = Object.values(status.ended);
            const errors = Object.entries(status.ended).flatMap(([h, e]) => (e.error ? [`${h}: ${e.error}`] : []));
            const silent = hosts.filter((h) => !status.answered.includes(h));
            const exit = done ? { exitCode: ends.find((e) => e.exitCode !== undefined)?.exitCode ?? (errors.length ? 1 : 0) } : {};
            return c.json({ chunks: page.chunks, cursor: page.cursor, done: done && page.chunks.length === 0, ...exit, errors, silent });
          }
          await deps.feed.wait(`session:${s.id}`, Math.min(1000, deadline - clock()), c.req.raw.signal);
        }
      } finally {
        release();
      }
    })
    /** exec -i: the user's keystrokes or piped input, in order; the agent fetches them for the command's stdin. */
    .post("/:id/input", execSession, body(inputBody), async (c) => {
      const s = c.get("session");
      const given = c.req.valid("json");
      await deps.sessions.putInput(s.id, given.seq, given.data, given.eof);
      deps.feed.changed(`session-input:${s.id}`);
      return c.json({ ok: true });
    })
    /** Cancel a session (Ctrl-C); one every host has ended is read to the end: its items go. */
    .delete("/:id", async (c) => {
      const s = await mySession(c.req.param("id"), c.get("principal"));
      const status = await deps.sessions.status(s.id);
      if (Object.keys(s.hosts).every((h) => status.ended[h])) {
        await deps.sessions.remove(s.id);
        return c.json({ id: s.id, removed: true });
      }
      await deps.sessions.cancel(s.id);
      return c.json({ id: s.id, cancelled: true });
    });
}

/** A session as a host's agent sees it (`/v1/hosts/ID/sessions/SID/...`, under the host's token): the input it reads, the chunks it posts. */
export function hostSessionRoutes(deps: SessionDeps) {
  const { clock } = deps;

  /** The session, when it asked this host for something. */
  const hostSession = createMiddleware<Env & { Variables: { session: SessionRecord } }>(async (c, next) => {
    const s = await deps.sessions.get(c.req.param("sid") ?? "");
    if (!s || !s.hosts[c.req.param("id") ?? ""]) throw notFound(`session ${c.req.param("sid")} not found`);
    c.set("session", s);
    await next();
  });

  return new Hono<Env>()
    .get("/:id/sessions/:sid/input", query({ after: intParam(-1, Number.MAX_SAFE_INTEGER).default("-1"), wait: waitParam }), hostSession, async (c) => {
      const s = c.get("session");
      const { after, wait } = c.req.valid("query");
      const deadline = clock() + wait * 1000;
      for (;;) {
        const input = await deps.sessions.readInput(s.id, after);
        const status = await deps.sessions.status(s.id);
        if (input.length > 0 || status.cancelled || clock() >= deadline || c.req.raw.signal.aborted || deps.feed.closed) return c.json({ input, cancelled: status.cancelled });
        await deps.feed.wait(`session-input:${s.id}`, Math.min(1000, deadline - clock()), c.req.raw.signal);
      }
    })
    /** A host's answer to a session: its chunks in order, then its end. Tells the agent to stop when nobody listens. */
    .post("/:id/sessions/:sid/chunks", hostSession, body(chunksBody), async (c) => {
      const host = c.req.param("id");
      const s = c.get("session");
      const given = c.req.valid("json");
      // a host speaks only for the containers the session asked of it
      const stray = given.chunks.find((ch) => !s.hosts[host]!.includes(ch.container));
      if (stray) throw invalid(`chunks.${given.chunks.indexOf(stray)}.container: ${stray.container} is not one of this session's containers on host ${host}`, "container");
      const status = await deps.sessions.status(s.id);
      if (status.cancelled || clock() - status.lastRead > ABANDONED_MS) return c.json({ cancelled: true });
      await deps.sessions.put(s.id, host, given.chunks, given.end);
      deps.feed.changed(`session:${s.id}`);
      return c.json({ cancelled: false });
    });
}
