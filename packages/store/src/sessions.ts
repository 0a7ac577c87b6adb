import { BatchWriteItemCommand, GetItemCommand, PutItemCommand, QueryCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { SessionChunk } from "@corral/core";
import { putIfAbsent } from "./conditional.js";

export interface SessionRecord {
  id: string;
  owner: string;
  type: "logs" | "exec";
  /** Host id → the containers it serves in this session. */
  hosts: Record<string, string[]>;
  created: number;
}

export interface SessionEnd {
  exitCode?: number;
  error?: string;
}

export interface SessionStatus {
  cancelled: boolean;
  /** When a reader last asked: a follow nobody reads any more is let go. */
  lastRead: number;
  ended: Record<string, SessionEnd>;
  /** Hosts that have answered at all (the agent got the session). */
  answered: string[];
}

/** Per host, the last chunk read. */
export type SessionCursor = Record<string, number>;

const pad = (n: number) => String(n).padStart(10, "0");
const pk = (id: string) => ({ S: `SESSION#${id}` });

/**
 * Sessions in the table: a meta item, the chunks each host posted (`c#HOST#SEQ`),
 * one end item per host and a cancel item. Only puts, gets and queries: any
 * API process can serve any request of a session.
 */
export class SessionStore {
  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Sessions are short-lived: on AWS, the table's TTL on `expiresAt` (epoch seconds) clears what nobody removed a day on (dynalite keeps it). */
  #expires() {
    return { expiresAt: { N: String(Math.floor(this.clock() / 1000) + 86_400) } };
  }

  async create(s: SessionRecord): Promise<void> {
    await putIfAbsent(this.db, this.table, {
      ...this.#expires(),
      pk: pk(s.id),
      sk: { S: "meta" },
      owner: { S: s.owner },
      type: { S: s.type },
      hosts: { S: JSON.stringify(s.hosts) },
      created: { N: String(s.created) },
    });
    await this.touch(s.id);
  }

  async get(id: string): Promise<SessionRecord | undefined> {
    const i = (await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: pk(id), sk: { S: "meta" } }, ConsistentRead: true }))).Item;
    if (!i) return undefined;
    return { id, owner: i.owner?.S ?? "", type: (i.type?.S ?? "logs") as SessionRecord["type"], hosts: JSON.parse(i.hosts?.S ?? "{}") as Record<string, string[]>, created: Number(i.created?.N ?? 0) };
  }

  async touch(id: string): Promise<void> {
    await this.db.send(new PutItemCommand({ TableName: this.table, Item: { ...this.#expires(), pk: pk(id), sk: { S: "read" }, at: { N: String(this.clock()) } } }));
  }

  async cancel(id: string): Promise<void> {
    await this.db.send(new PutItemCommand({ TableName: this.table, Item: { ...this.#expires(), pk: pk(id), sk: { S: "cancel" } } }));
  }

  async status(id: string): Promise<SessionStatus> {
    const items = await this.#query(id, "a", "z");
    const ended: Record<string, SessionEnd> = {};
    let cancelled = false;
    let lastRead = 0;
    const answered: string[] = [];
    for (const i of items) {
      const sk = i.sk?.S ?? "";
      if (sk.startsWith("ack#")) answered.push(sk.slice(4));
      if (sk === "cancel") cancelled = true;
      if (sk === "read") lastRead = Number(i.at?.N ?? 0);
      if (sk.startsWith("end#")) ended[sk.slice(4)] = JSON.parse(i.end?.S ?? "{}") as SessionEnd;
    }
    return { cancelled, lastRead, ended, answered };
  }

  /** A host's chunks, in order; a chunk posted twice (a retry) is the same item. */
  async put(id: string, host: string, chunks: SessionChunk[], end?: SessionEnd): Promise<void> {
    await this.db.send(new PutItemCommand({ TableName: this.table, Item: { ...this.#expires(), pk: pk(id), sk: { S: `ack#${host}` } } }));
    for (let i = 0; i < chunks.length; i += 25) {
      await this.db.send(
        new BatchWriteItemCommand({
          RequestItems: {
            [this.table]: chunks.slice(i, i + 25).map((c) => ({
              PutRequest: { Item: { ...this.#expires(), pk: pk(id), sk: { S: `c#${host}#${pad(c.seq)}` }, container: { S: c.container }, stream: { S: c.stream }, data: { S: c.data } } },
            })),
          },
        }),
      );
    }
    if (end) await this.db.send(new PutItemCommand({ TableName: this.table, Item: { ...this.#expires(), pk: pk(id), sk: { S: `end#${host}` }, end: { S: JSON.stringify(end) } } }));
  }

  /** Chunks after `cursor`, host by host, and the cursor past them. */
  async read(id: string, hosts: string[], cursor: SessionCursor): Promise<{ chunks: Array<Omit<SessionChunk, "seq"> & { host: string }>; cursor: SessionCursor }> {
    const chunks: Array<Omit<SessionChunk, "seq"> & { host: string }> = [];
    const next = { ...cursor };
    for (const host of hosts) {
      const from = cursor[host] === undefined ? `c#${host}#` : `c#${host}#${pad(cursor[host] + 1)}`;
      for (const i of await this.#query(id, from, `c#${host}#~`)) {
        const sk = i.sk?.S ?? "";
        next[host] = Number(sk.slice(sk.lastIndexOf("#") + 1));
        chunks.push({ host, container: i.container?.S ?? "", stream: (i.stream?.S ?? "stdout") as SessionChunk["stream"], data: i.data?.S ?? "" });
      }
    }
    return { chunks, cursor: next };
  }

  /** Input for an interactive exec, in order: `data` base64; `eof` closes the command's stdin. */
  async putInput(id: string, seq: number, data: string, eof: boolean): Promise<void> {
    const item = { ...this.#expires(), pk: pk(id), sk: { S: `in#${pad(seq)}` }, data: { S: data }, ...(eof ? { eof: { BOOL: true } } : {}) };
    await this.db.send(new PutItemCommand({ TableName: this.table, Item: item }));
  }

  async readInput(id: string, after: number): Promise<Array<{ seq: number; data: string; eof: boolean }>> {
    const items = await this.#query(id, `in#${pad(after + 1)}`, "in#~");
    return items.map((i) => {
      const sk = i.sk?.S ?? "";
      return { seq: Number(sk.slice(3)), data: i.data?.S ?? "", eof: (i as { eof?: { BOOL?: boolean } }).eof?.BOOL === true };
    });
  }

  async remove(id: string): Promise<void> {
    const items = await this.#query(id, "", "~");
    for (let i = 0; i < items.length; i += 25) {
      const deletes = items.slice(i, i + 25).map((x) => ({ DeleteRequest: { Key: { pk: { S: x.pk?.S ?? "" }, sk: { S: x.sk?.S ?? "" } } } }));
      await this.db.send(new BatchWriteItemCommand({ RequestItems: { [this.table]: deletes } }));
    }
  }

  async #query(id: string, from: string, to: string) {
    const items: Array<Record<string, { S?: string; N?: string }>> = [];
    let start: Record<string, never> | undefined;
    do {
      const page = await this.db.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: "pk = :pk AND sk BETWEEN :a AND :b",
          ExpressionAttributeValues: { ":pk": pk(id), ":a": { S: from }, ":b": { S: to } },
          ConsistentRead: true,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      items.push(...((page.Items ?? []) as typeof items));
      start = page.LastEvaluatedKey as typeof start;
    } while (start);
    return items;
  }
}
