import type { ComposeIssue } from "@corral/core";
import { readSync } from "node:fs";
import { CliError, type ApiClient } from "./client.js";
import type { RawOut } from "./sessions.js";

// What every command module shares: where output goes, following an operation to its end, printing lists.

export interface Out {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Bytes as they come (logs, exec). */
  raw?: RawOut;
  /** Standard input, at most `limit` bytes (more: an error); default fd 0. */
  stdin?: (limit: number) => Buffer;
}

/** Print progress lines of operation `op` until it settles; true when it succeeded. */
export async function follow(api: ApiClient, stack: string, op: string, fromVersion: number, io: Out): Promise<boolean> {
  let after = fromVersion;
  let following = op;
  let failure: string | undefined;
  for (;;) {
    const page = await api.poll("/v1/stacks/:stack/events", { param: { stack }, query: { after: String(after), wait: "20" } });
    for (const { line, event } of page.events) {
      if (line) for (const l of line.split("\n")) io.out(l);
      const eventOp = "op" in event ? event.op : undefined; // not every event is an operation's
      if (event.type === "OperationStarted" && eventOp === `${following}-rollback`) following = eventOp; // rolling back by itself: see it through
      if (eventOp !== following) continue;
      if (event.type === "OperationSucceeded" && !failure) return true;
      if (event.type === "OperationFailed" && !event.reason.includes("rolling back")) {
        io.err(`error: ${failure ? `${failure}; the rollback failed too: ` : ""}${event.reason ?? "operation failed"}`);
        return false;
      }
      if (event.type === "OperationFailed") failure = event.reason;
      if (event.type === "OperationSucceeded" && failure) {
        io.err(`error: ${failure.replace(/; rolling back to revision (\d+)$/, "; rolled back to revision $1")}`);
        return false;
      }
    }
    after = page.version;
  }
}

/** An issue as the CLI says it: `FILE: PATH: REASON`. */
const issueLine = (i: ComposeIssue) => (i.path ? `${i.file}: ${i.path}: ${i.reason}` : `${i.file}: ${i.reason}`);

export function printIssues(io: Out, issues: ComposeIssue[]) {
  for (const i of issues) io.err(`error: ${issueLine(i)}`);
}

/** What may not work as written, said once per problem on stderr: the stack goes up all the same. */
export function printWarnings(io: Out, warnings: ComposeIssue[] | undefined) {
  for (const w of warnings ?? []) io.err(`warning: ${issueLine(w)}`);
}

/** A listing: a table, or with --format json an array of objects keyed by the columns in lower case. */
export async function printList<T>(io: Out, format: string, rows: T[], head: string[], row: (r: T) => string[]): Promise<void> {
  if (format === "json") return io.out(JSON.stringify(rows, null, 2));
  await printTable(io, head, rows.map(row));
}

/** No borders: columns two spaces apart, as docker's tables. */
const noBorders = {
  ...{ top: "", "top-mid": "", "top-left": "", "top-right": "", bottom: "", "bottom-mid": "", "bottom-left": "", "bottom-right": "" },
  ...{ left: "", "left-mid": "", mid: "", "mid-mid": "", right: "", "right-mid": "", middle: "  " },
};

/** Printable ASCII only: one column per character, no line breaks, no escapes. */
const PLAIN = /^[\x20-\x7e]*$/;

/**
 * The table cli-table3 draws with these settings, drawn directly when every
 * cell is printable ASCII (a character is a column then): each column as wide
 * as its widest cell, two spaces apart, lines trimmed at the end. Undefined
 * otherwise (wide or combining characters, line breaks: cli-table3 measures
 * those). Loading and laying out cli-table3 is a third of a `corral ps`;
 * a test holds the two equal.
 */
export function plainTable(head: string[], rows: string[][]): string | undefined {
  const all = [head, ...rows];
  if (!all.every((r) => r.every((cell) => PLAIN.test(cell)))) return undefined;
  const columns = Math.max(...all.map((r) => r.length));
  const widths = Array.from({ length: columns }, (_, i) => Math.max(1, ...all.map((r) => r[i]?.length ?? 0))); // (an empty column is one wide, as cli-table3 draws it)
  return all.map((r) => widths.map((w, i) => (r[i] ?? "").padEnd(w)).join("  ").trimEnd()).join("\n");
}

/** A table (cli-table3, loaded when one is printed and only when plainTable cannot draw it). */
export async function printTable(io: Out, head: string[], rows: string[][]): Promise<void> {
  const plain = plainTable(head, rows);
  if (plain !== undefined) return io.out(plain);
  io.out(await drawTable(head, rows));
}

/** The table as cli-table3 draws it, borderless. */
export async function drawTable(head: string[], rows: string[][]): Promise<string> {
  const { default: Table } = await import("cli-table3");
  const table = new Table({
    head,
    chars: noBorders,
    style: { head: [], border: [], "padding-left": 0, "padding-right": 0 },
  });
  table.push(...rows);
  return table.toString().split("\n").map((l) => l.trimEnd()).join("\n");
}

/** An exit status other than 0, its reason already printed (a failed operation, a command's own exit code). */
export class ExitError extends Error {
  override name = "ExitError";
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/** Read standard input to its end, refusing more than `limit` bytes. */
export function readStdin(limit: number): Buffer {
  const chunks: Buffer[] = [];
  let total = 0;
  const chunk = Buffer.alloc(64 * 1024);
  for (;;) {
    let n: number;
    try {
      n = readSync(0, chunk, 0, chunk.length, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EAGAIN") continue;
      if ((e as NodeJS.ErrnoException).code === "EOF") break;
      throw e;
    }
    if (n === 0) break;
    total += n;
    if (total > limit) throw new CliError(`standard input holds more than ${limit} bytes: a password is at most that`);
    chunks.push(Buffer.from(chunk.subarray(0, n)));
  }
  return Buffer.concat(chunks);
}

