import { createSocket } from "node:dgram";
import * as dnsPacket from "dns-packet";
import { afterAll, describe, expect, it } from "vitest";
import { answerQuery, DnsListener, MAX_ADDRESSES, NAME_TTL, type NameTable } from "./dns.js";

const names: NameTable = new Map([
  ["app", ["10.201.1.2", "10.201.2.2", "10.201.2.3"]],
  ["app.shop", ["10.201.1.2", "10.201.2.2", "10.201.2.3"]],
  ["shop-db-1", ["10.201.2.4"]],
  ["db", []],
]);
const query = (name: string, type: dnsPacket.RecordType = "A", id = 7) => dnsPacket.encode({ type: "query", id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }] });
// dns-packet decodes the response code too; its types leave it out
const decoded = (o: ReturnType<typeof answerQuery>) => {
  if (!("reply" in o)) throw new Error(`no reply: ${JSON.stringify(o)}`);
  return dnsPacket.decode(o.reply) as dnsPacket.DecodedPacket & { rcode: string };
};
const addresses = (p: dnsPacket.DecodedPacket) => (p.answers ?? []).map((a) => (a as { data: string }).data);

describe("a stack's names", () => {
  it("a service's name gives its containers' addresses, in turn (round robin), with a short TTL", () => {
    const first = decoded(answerQuery(query("app"), names, 0));
    expect(first).toMatchObject({ type: "response", id: 7, rcode: "NOERROR", flag_aa: true, flag_rd: true });
    expect(addresses(first)).toEqual(["10.201.1.2", "10.201.2.2", "10.201.2.3"]);
    expect(first.answers!.every((a) => (a as { ttl: number }).ttl === NAME_TTL)).toBe(true);
    expect(addresses(decoded(answerQuery(query("app"), names, 1)))).toEqual(["10.201.2.2", "10.201.2.3", "10.201.1.2"]);
    expect(addresses(decoded(answerQuery(query("APP.shop."), names, 2)))[0]).toBe("10.201.2.3");
    expect(addresses(decoded(answerQuery(query("shop-db-1"), names, 5)))).toEqual(["10.201.2.4"]);
  });

  it("a service with nothing running answers with no address, not an error that sends the name elsewhere; AAAA gets no address", () => {
    const none = decoded(answerQuery(query("db"), names, 0));
    expect(none.rcode).toBe("NOERROR");
    expect(none.answers).toEqual([]);
    expect(decoded(answerQuery(query("app", "AAAA"), names, 0)).answers).toEqual([]);
  });

  it("another name goes to the host's resolvers; what is not one query is dropped", () => {
    expect(answerQuery(query("example.org"), names, 0)).toEqual({ forward: true });
    expect(answerQuery(Buffer.from("hello"), names, 0)).toMatchObject({ drop: expect.any(String) });
    const two = dnsPacket.encode({ type: "query", id: 1, questions: [{ type: "A", name: "app" }, { type: "A", name: "db" }] });
    expect(answerQuery(two, names, 0)).toEqual({ drop: "2 questions" });
    const response = dnsPacket.encode({ type: "response", id: 1, questions: [{ type: "A", name: "app" }] });
    expect(answerQuery(response, names, 0)).toEqual({ drop: "not a query" });
  });

  it("a service of many containers answers as many as fit a 512-byte reply, a different set each time", () => {
    const many = Array.from({ length: 60 }, (_, i) => `10.201.3.${i + 2}`);
    const table: NameTable = new Map([["big", many]]);
    const a = decoded(answerQuery(query("big"), table, 0));
    expect(addresses(a)).toHaveLength(MAX_ADDRESSES);
    expect(answerQuery(query("big"), table, 0)).toSatisfy((o: ReturnType<typeof answerQuery>) => "reply" in o && o.reply.length <= 512);
    expect(addresses(decoded(answerQuery(query("big"), table, 30)))[0]).toBe(many[30]);
  });
});

describe("a stack's name server on UDP", () => {
  const listeners: DnsListener[] = [];
  afterAll(async () => {
    for (const l of listeners) await l.stop();
  });
  const ask = (port: number, name: string, ms = 1000, type: dnsPacket.RecordType = "A") =>
    new Promise<dnsPacket.DecodedPacket | undefined>((resolve) => {
      const s = createSocket("udp4");
      const timer = setTimeout(() => {
        s.close();
        resolve(undefined);
      }, ms);
      s.on("message", (m) => {
        clearTimeout(timer);
        s.close();
        resolve(dnsPacket.decode(m));
      });
      s.send(query(name, type, 4242), port, "127.0.0.1");
    });

  it("answers the stack's names, passes the others to its upstream, and ignores askers outside the stack", async () => {
    // the "host's resolver": another name server, real, with names of its own
    const upstream = new DnsListener({ address: "127.0.0.1", port: 0, names: () => new Map([["example.org", ["192.0.2.10"]]]), allowed: () => true });
    listeners.push(upstream);
    const upstreamPort = await upstream.start();
    const stack = new DnsListener({ address: "127.0.0.1", port: 0, names: () => names, allowed: (a) => a === "127.0.0.1", upstream: [{ address: "127.0.0.1", port: upstreamPort }] });
    listeners.push(stack);
    const port = await stack.start();
    const mine = await ask(port, "app");
    expect(mine?.id).toBe(4242);
    expect(addresses(mine!).sort()).toEqual(["10.201.1.2", "10.201.2.2", "10.201.2.3"]);
    const other = await ask(port, "example.org");
    expect(other?.id).toBe(4242); // the asker's id, though it went upstream under another
    expect(addresses(other!)).toEqual(["192.0.2.10"]);
    // an upstream that never answers, and none at all: the asker hears SERVFAIL (its id, its question) instead of waiting
    const silent = createSocket("udp4");
    await new Promise<void>((r) => silent.bind(0, "127.0.0.1", () => r()));
    const mute = new DnsListener({ address: "127.0.0.1", port: 0, names: () => names, allowed: () => true, upstream: [{ address: "127.0.0.1", port: silent.address().port }], upstreamTimeoutMs: 200 });
    listeners.push(mute);
    const failed = await ask(await mute.start(), "example.org", 2000);
    silent.close();
    expect(failed).toMatchObject({ id: 4242, rcode: "SERVFAIL", questions: [{ name: "example.org" }] });
    const alone = new DnsListener({ address: "127.0.0.1", port: 0, names: () => names, allowed: () => true, upstream: [] });
    listeners.push(alone);
    const alonePort = await alone.start();
    expect(await ask(alonePort, "db.shop", 2000)).toMatchObject({ id: 4242, rcode: "SERVFAIL" });
    expect(addresses((await ask(alonePort, "app"))!).sort()).toEqual(["10.201.1.2", "10.201.2.2", "10.201.2.3"]); // its own names still answered
    const closed = new DnsListener({ address: "127.0.0.1", port: 0, names: () => names, allowed: () => false });
    listeners.push(closed);
    expect(await ask(await closed.start(), "app", 300)).toBeUndefined();
  });

  it("turns each name's answer on its own: a resolver's AAAA query, or a query for another name, between two A queries does not stall the rotation", async () => {
    const two: NameTable = new Map([
      ["app", ["10.201.1.2", "10.201.2.2"]],
      ["web", ["10.201.1.9", "10.201.2.9"]],
    ]);
    const server = new DnsListener({ address: "127.0.0.1", port: 0, names: () => two, allowed: () => true, upstream: [] });
    listeners.push(server);
    const port = await server.start();
    const firsts: string[] = [];
    for (let i = 0; i < 4; i++) {
      // what busybox's nslookup asks: A then AAAA; and a neighbour asking for another name
      firsts.push(addresses((await ask(port, "app"))!)[0]!);
      expect(addresses((await ask(port, "app", 1000, "AAAA"))!)).toEqual([]);
      expect(addresses((await ask(port, "web"))!)).toHaveLength(2);
      await ask(port, "web", 1000, "AAAA");
    }
    expect(firsts).toEqual(["10.201.1.2", "10.201.2.2", "10.201.1.2", "10.201.2.2"]);
  });
});
