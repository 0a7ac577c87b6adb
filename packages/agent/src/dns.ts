import { createSocket, type Socket } from "node:dgram";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import * as dnsPacket from "dns-packet";
import type { Logger } from "@corral/core";

/**
 * The names of a stack's network, as rancher-dns answered them on every
 * Rancher host: a service's name (and SERVICE.STACK) gives the addresses of
 * its running (and, with a health check, healthy) containers on every host,
 * in turn; a container's name gives its address. Docker's own resolver in
 * each container (127.0.0.11) asks here for what it does not know itself;
 * every other name goes on to the host's resolvers. Built on dns-packet.
 */

/** How long an answer may be kept: short, so that a container gone drops out of the answers within seconds. */
export const NAME_TTL = 2;
/** Answers that fit a 512-byte UDP reply: the rest take their turn in the next answers. */
export const MAX_ADDRESSES = 24;
/** How long a name passed to the host's resolver may take before the asker is told SERVFAIL (rather than left to time out). */
export const UPSTREAM_TIMEOUT_MS = 2000;

/** SERVFAIL for a query (its id and question kept): the answer when no resolver beyond the stack gives one. */
export function serverFailure(query: Buffer): Buffer | undefined {
  try {
    const packet = dnsPacket.decode(query);
    const flags = (packet.flag_rd ? dnsPacket.RECURSION_DESIRED : 0) | dnsPacket.RECURSION_AVAILABLE | 2; // rcode 2: SERVFAIL
    return dnsPacket.encode({ type: "response", id: packet.id ?? 0, flags, questions: packet.questions ?? [] });
  } catch {
    return undefined;
  }
}

/** A stack's names: lowercase, without the trailing dot. */
export type NameTable = ReadonlyMap<string, readonly string[]>;

export type QueryOutcome = { reply: Buffer } | { forward: true } | { drop: string };

/**
 * The answer to one query from a stack's network, or that it goes to the
 * host's resolvers (a name not the stack's), or that it is dropped (not a
 * query, several questions). `turn` rotates the addresses (round robin): a
 * number, or the name's next turn, asked only of a query answered with
 * addresses (a resolver asks A and AAAA for each lookup: were the AAAA one to
 * count, two addresses would come back in the same order every time).
 */
export function answerQuery(query: Buffer, names: NameTable, turn: number | ((name: string) => number)): QueryOutcome {
  let packet: dnsPacket.DecodedPacket;
  try {
    packet = dnsPacket.decode(query);
  } catch {
    return { drop: "not a DNS message" };
  }
  if (packet.type !== "query" || packet.flag_qr) return { drop: "not a query" };
  const questions = packet.questions ?? [];
  if (questions.length !== 1) return { drop: `${questions.length} questions` };
  const q = questions[0]!;
  const name = q.name.toLowerCase().replace(/\.$/, "");
  const known = names.get(name);
  if (!known) return { forward: true };
  const flags = dnsPacket.AUTHORITATIVE_ANSWER | (packet.flag_rd ? dnsPacket.RECURSION_DESIRED : 0) | dnsPacket.RECURSION_AVAILABLE;
  // a name of the stack: A records for A (and ANY); nothing, but no error, for other types (AAAA: the overlay is IPv4)
  const wantsA = q.type === "A" || (q.type as string) === "ANY";
  const n = wantsA && known.length > 1 ? (typeof turn === "number" ? turn : turn(name)) : 0;
  const start = known.length > 0 ? n % known.length : 0;
  const order = [...known.slice(start), ...known.slice(0, start)].slice(0, MAX_ADDRESSES);
  const answers: dnsPacket.Answer[] = wantsA ? order.map((data) => ({ type: "A", name: q.name, class: "IN", ttl: NAME_TTL, data })) : [];
  return { reply: dnsPacket.encode({ type: "response", id: packet.id ?? 0, flags, questions: [q], answers }) };
}

/** The host's resolvers, from /etc/resolv.conf (IPv4 and IPv6 addresses only). */
export function hostResolvers(file = "/etc/resolv.conf"): string[] {
  try {
    return readFileSync(file, "utf8")
      .split("\n")
      .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
      .filter((a): a is string => a !== undefined && isIP(a) !== 0);
  } catch {
    return [];
  }
}

export interface DnsListenerOptions {
  /** The address to answer on: the stack network's gateway on this host. */
  address: string;
  port?: number;
  /** The stack's names now. */
  names: () => NameTable;
  /** Who may ask: the stack's own subnet here (a source outside it is not answered). */
  allowed: (source: string) => boolean;
  /** Where other names go (default: the host's resolvers). */
  upstream?: Array<{ address: string; port?: number }>;
  /** How long the upstream may take (default UPSTREAM_TIMEOUT_MS). */
  upstreamTimeoutMs?: number;
  log?: Logger;
}

/** One stack's name server on one host: UDP on its network's gateway. */
export class DnsListener {
  #socket: Socket | undefined;
  /** Each name's next turn (bounded: a stack has few names; past that many the counts start again). */
  #turns = new Map<string, number>();
  #pending = new Map<number, { from: { address: string; port: number }; id: number; timer: NodeJS.Timeout }>();
  #upstreamSocket: Socket | undefined;
  #nextId = Math.floor(Math.random() * 65536);

  constructor(private readonly o: DnsListenerOptions) {}

  async start(): Promise<number> {
    const socket = createSocket(isIP(this.o.address) === 6 ? "udp6" : "udp4");
    this.#socket = socket;
    socket.on("message", (msg, rinfo) => this.#onQuery(msg, rinfo));
    socket.on("error", (e) => this.o.log?.error("dns listener", { address: this.o.address, error: String(e) }));
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(this.o.port ?? 53, this.o.address, () => {
        socket.off("error", reject);
        resolve();
      });
    });
    return socket.address().port;
  }

  #onQuery(msg: Buffer, rinfo: { address: string; port: number }) {
    if (!this.o.allowed(rinfo.address) || msg.length > 4096) return;
    const outcome = answerQuery(msg, this.o.names(), (name) => {
      const turn = this.#turns.get(name) ?? 0;
      if (this.#turns.size >= 1024 && !this.#turns.has(name)) this.#turns.clear();
      this.#turns.set(name, turn + 1);
      return turn;
    });
    if ("reply" in outcome) this.#socket?.send(outcome.reply, rinfo.port, rinfo.address);
    else if ("forward" in outcome) this.#forward(msg, rinfo);
  }

  /** Another name: to the host's first resolver, under an id of ours; its answer back to the asker with theirs. */
  #forward(msg: Buffer, from: { address: string; port: number }) {
    const upstream: { address: string; port?: number } | undefined = (this.o.upstream ?? hostResolvers().map((address) => ({ address })))[0];
    // no resolver beyond the stack, or too many questions in flight: SERVFAIL at once, so the asker fails fast instead of waiting
    const fail = () => {
      const reply = serverFailure(msg);
      if (reply) this.#socket?.send(reply, from.port, from.address);
    };
    if (!upstream || this.#pending.size > 1024) return fail();
    const id = msg.readUInt16BE(0);
    const ours = this.#nextId++ & 0xffff;
    const copy = Buffer.from(msg);
    copy.writeUInt16BE(ours, 0);
    if (!this.#upstreamSocket) {
      const s = createSocket(isIP(upstream.address) === 6 ? "udp6" : "udp4");
      s.on("message", (reply) => {
        if (reply.length < 12) return;
        const p = this.#pending.get(reply.readUInt16BE(0));
        if (!p) return;
        this.#pending.delete(reply.readUInt16BE(0));
        clearTimeout(p.timer);
        const back = Buffer.from(reply);
        back.writeUInt16BE(p.id, 0);
        this.#socket?.send(back, p.from.port, p.from.address);
      });
      s.on("error", () => {});
      this.#upstreamSocket = s;
    }
    const timer = setTimeout(() => {
      if (this.#pending.delete(ours)) fail();
    }, this.o.upstreamTimeoutMs ?? UPSTREAM_TIMEOUT_MS);
    timer.unref();
    this.#pending.set(ours, { from, id, timer });
    this.#upstreamSocket.send(copy, upstream.port ?? 53, upstream.address);
  }

  async stop(): Promise<void> {
    for (const p of this.#pending.values()) clearTimeout(p.timer);
    this.#pending.clear();
    this.#upstreamSocket?.close();
    await new Promise<void>((resolve) => (this.#socket ? this.#socket.close(() => resolve()) : resolve()));
  }
}
