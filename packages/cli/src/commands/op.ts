import { CliError, once, type ApiClient, type CallOptions } from "../client.js";
import type { ComposeIssue } from "@corral/core";
import { ExitError, follow, printWarnings, type Out } from "../output.js";

/** What the API answers when it has started an operation on a stack. */
export interface OpStarted {
  stack?: string;
  /** None: nothing was started (an rm of a stack with no operation to answer with). */
  op?: string;
  version: number;
  /** Health settings that may not work as written (up). */
  warnings?: ComposeIssue[];
}

/** A request that starts an operation (sent with `options`), and the stack it is about (a container's rm learns its stack from the answer). */
export interface OpRequest {
  send: (options: CallOptions) => Promise<OpStarted>;
  stack: string;
}

/** What up (and the service verbs, which make revisions through it) answer without dryRun: the operation started, never a plan. */
export function started<T extends object>(res: T): Exclude<T, { dryRun: boolean }> {
  if ("dryRun" in res) throw new CliError("the server answered with a plan, not an operation");
  return res as Exclude<T, { dryRun: boolean }>;
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
    const res = await r.send(once());
    printWarnings(io, res.warnings);
    if (res.op) ok = (await followOp(client, io, res.stack ?? r.stack, { op: res.op, version: res.version })) && ok;
  }
  if (!ok) throw new ExitError(1);
}
