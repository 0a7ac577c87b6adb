import type { ApiClient } from "../client.js";
import type { ComposeIssue } from "@corral/core";
import { ExitError, follow, printWarnings, type Out } from "../output.js";

/** What the API answers when it has started an operation on a stack. */
export interface OpStarted {
  stack?: string;
  op: string;
  version: number;
  /** Health settings that may not work as written (up). */
  warnings?: ComposeIssue[];
}

/** A request that starts an operation, and the stack it is about (a container's rm learns its stack from the answer). */
export interface OpRequest {
  method: "POST" | "DELETE";
  path: string;
  body?: unknown;
  stack: string;
}

/** Print a started operation's progress lines until it settles: true when it succeeded (else its reason is on stderr). */
export const followOp = (client: ApiClient, io: Out, stack: string, started: { op: string; version: number }) => follow(client, stack, started.op, started.version - 1, io);

/**
 * What every verb that changes stacks does (up and its upgrade, confirm and rollback, scale, stop, start,
 * restart, rm): each request in turn, sent once (an idempotency key), its operation followed to its end on
 * the stack the answer names, a later one even when an earlier one failed; exit status 1 when any failed.
 */
export async function runOp(client: ApiClient, io: Out, requests: OpRequest[]): Promise<void> {
  let ok = true;
  for (const r of requests) {
    const res = await client.request<OpStarted>(r.method, r.path, r.body, { "idempotency-key": crypto.randomUUID() });
    printWarnings(io, res.warnings);
    ok = (await followOp(client, io, res.stack ?? r.stack, res)) && ok;
  }
  if (!ok) throw new ExitError(1);
}
