import type { Command } from "commander";
import type { HistoryLife, HistoryRow } from "@corral/core";
import { shortDigest } from "@corral/core/light";
import { printTable, type Out } from "../output.js";
import { verb, type Ctx } from "./context.js";
import { formatOption } from "./flags.js";

const columnsHelp = `
Columns (oldest first; --format json has the same keys, in lower case):
  REVISION  the configuration that runs after the entry: a number per change, from 1 in each life
            of the stack; for a rollback, the revision it went back to
  CURRENT   * on the entry that put in place what runs now
  TIME      when the change was asked for (a rollback: when it was done)
  BY        the user (or corral itself, for an automatic rollback)
  SOURCE    where it came from: cli, api, webhook or chatops
  CHANGED   the services it changed, each with the keys that changed (added, removed, secret versions)
  ROLLBACK  for a rollback: "rollback to N"; empty for a plain change
  IMAGES    the exact image of each service after the entry: its digest (sha256:, first 12 digits);
            none for an image no registry knows (json: its id on each host, under "ids")
With --all, each life of the stack comes under a heading saying when it was removed
(in json, every row has "life" and "removed" too).`;

const columns = ["REVISION", "CURRENT", "TIME", "BY", "SOURCE", "CHANGED", "ROLLBACK", "IMAGES"];
const images = (r: HistoryRow) =>
  Object.entries(r.images ?? {})
    .flatMap(([s, i]) => (i.digest ? [`${s} ${shortDigest(i.digest)}`] : []))
    .join("; ");
const cells = (r: HistoryRow) => [
  String(r.revision),
  r.current ? "*" : "",
  r.time ?? "",
  r.by,
  r.source,
  r.changed.map((c) => `${c.service} (${c.keys.join(", ")})`).join("; "),
  r.rollback ?? "",
  images(r),
];

/** A table per life of the stack, each under a heading when there is more than one to tell apart, or when the stack is gone. */
async function printLives(io: Out, stack: string, lives: HistoryLife[], all: boolean | undefined): Promise<void> {
  for (const [i, l] of lives.entries()) {
    const removed = l.removed ? `removed${l.removed.time ? ` at ${l.removed.time}` : ""}${l.removed.by ? ` by ${l.removed.by}` : ""}` : "";
    if (all || l.removed) io.out(`${i > 0 ? "\n" : ""}Life ${l.life} of stack ${stack}: ${l.current ? "current" : removed}`);
    await printTable(io, columns, l.rows.map(cells));
  }
}

/** `corral history STACK`: what changed what runs, revision by revision. */
export function historyCommand(ctx: Ctx): Command {
  return verb(ctx, "history")
    .description("what changed what runs: a stack's revisions and rollbacks, when, by whom, from where, which services and keys")
    .argument("<stack>", "the stack")
    .option("-a, --all", "also the earlier lives of the stack: a stack removed and made again under its name starts afresh at revision 1")
    .addOption(formatOption())
    .addHelpText("after", columnsHelp)
    .action(async (stack: string, opts: { all?: boolean; format: string }) => {
      const res = await ctx.api().get("/v1/stacks/:stack/history", { param: { stack }, ...(opts.all ? { query: { all: "1" } } : {}) });
      if (opts.format === "json") {
        const rows = res.lives.flatMap((l) => l.rows.map((r) => (opts.all ? { life: l.life, removed: l.removed?.time ?? (l.removed ? "" : null), ...r } : r)));
        return ctx.io.out(JSON.stringify(rows, null, 2));
      }
      await printLives(ctx.io, res.stack, res.lives, opts.all);
    });
}
