import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { verb, type Ctx } from "./context.js";

/** `corral export STACK`: the stack's compose files as deployed, into a folder or to stdout. */
export function exportCommand(ctx: Ctx): Command {
  const { io, api } = ctx;
  return verb(ctx, "export")
    .description("write a stack's docker-compose.yml and rancher-compose.yml (into ./STACK/, or to stdout with -f -)")
    .argument("<stack>", "the stack")
    .option("-f, --file <dest>", "'-' for stdout")
    .option("--pinned", "write each image at the digest the revision pinned (REPOSITORY:TAG@sha256:...): the same bytes again")
    .action(async (stack: string, opts: { file?: string; pinned?: boolean }) => {
      const res = await api().get("/v1/stacks/:stack/export", { param: { stack }, ...(opts.pinned ? { query: { pinned: "1" } } : {}) });
      if (opts.file === "-") {
        for (const [name, text] of Object.entries(res.files)) io.out(`# ${name}\n---\n${text.trimEnd()}`);
        return;
      }
      const dir = resolve(opts.file ?? stack);
      mkdirSync(dir, { recursive: true });
      for (const [name, text] of Object.entries(res.files)) {
        writeFileSync(join(dir, name), text);
        io.out(join(dir, name));
      }
    });
}
