import { Option, type Command } from "commander";
import { formatDuration } from "@corral/core/light";
import { CliError, once, type ApiOutput } from "../client.js";
import { printList, type Out } from "../output.js";
import { verb, type Ctx } from "./context.js";
import { formatOption, many } from "./flags.js";

type Created = ApiOutput<"/v1/hooks", "$post">;

/** A new hook as text: what it deploys, its URL and secret (shown only now), and how its sender proves itself. */
function printCreated(io: Out, stack: string, created: Created): void {
  io.out(`Hook ${created.id} deploys ${stack}${created.services.length ? ` (${created.services.join(", ")})` : ""} on ${created.kind} deliveries`);
  io.out(`URL:    ${created.url}`);
  io.out(`Secret: ${created.secret ?? ""}`);
  io.out(
    created.kind === "github" || created.kind === "generic"
      ? "The sender signs each body with the secret (X-Hub-Signature-256: sha256=HMAC-SHA256 hex); the secret is shown only now."
      : "The secret is part of the URL (this sender cannot sign); it is shown only now.",
  );
}

/** `corral hook ...`: webhooks that deploy on push (a registry, Docker Hub, GitHub, or anything that signs its body). */
export function hookCommand(ctx: Ctx): Command {
  const { io, api } = ctx;
  const hook = verb(ctx, "hook").description("webhooks: deploy a stack's services when an image is pushed (or a branch, or a signed request)");

  hook
    .command("create")
    .description("a webhook for a stack; prints its URL and secret, once")
    .argument("<stack>", "the stack it deploys")
    .option("--service <service>", "a service it may upgrade (repeatable; default: any whose image was pushed)", many)
    .addOption(new Option("--kind <kind>", "who calls it").choices(["registry", "dockerhub", "github", "generic"]).default("registry"))
    .option("--tag <pattern>", "deploy only tags (or, for a GitHub push, branches) matching this glob, e.g. 'v*'")
    .option("--confirm-after <duration>", "confirm the upgrade once its new containers have run this long (default: it waits for 'corral up --confirm-upgrade')")
    .option("--allow <address>", "accept deliveries only from this address or IPv4 CIDR (repeatable)", many)
    .addOption(formatOption(["text", "json"]))
    .action(async (stack: string, o: { service?: string[]; kind: Created["kind"]; tag?: string; confirmAfter?: string; allow?: string[]; format: string }) => {
      const json = { stack, services: o.service ?? [], kind: o.kind, ...(o.tag ? { tag: o.tag } : {}), ...(o.confirmAfter ? { confirmAfter: o.confirmAfter } : {}), allow: o.allow ?? [] };
      const created = await api().post("/v1/hooks", { json }, once());
      if (o.format === "json") return io.out(JSON.stringify(created, null, 2));
      printCreated(io, stack, created);
    });

  hook
    .command("ls")
    .description("the webhooks you may see (never their secrets)")
    .addOption(formatOption())
    .action(async (o: { format: string }) => {
      const hooks = await api().get("/v1/hooks");
      const rows = hooks.map((h) => ({
        id: h.id,
        stack: h.stack,
        services: h.services.join(","),
        kind: h.kind,
        tag: h.tag ?? "",
        confirm: h.confirmAfterMs ? formatDuration(h.confirmAfterMs) : "",
        owner: h.owner,
      }));
      await printList(io, o.format, rows, ["ID", "STACK", "SERVICES", "KIND", "TAG", "CONFIRM", "OWNER"], (r) => [r.id, r.stack, r.services, r.kind, r.tag, r.confirm, r.owner]);
    });

  hook
    .command("rm")
    .description("remove a webhook: its URL answers 401 from now on")
    .argument("<hook>", "the hook's id")
    .action(async (id: string) => {
      await api().delete("/v1/hooks/:id", { param: { id } }, once());
      io.out(id);
    });

  hook
    .command("deliveries")
    .description("a webhook's deliveries, newest first: when, from where, verdict, the revision it made")
    .argument("<hook>", "the hook's id")
    .addOption(formatOption())
    .action(async (id: string, o: { format: string }) => {
      if (!/^h[A-Za-z0-9_-]{12}$/.test(id)) throw new CliError(`${id}: not a hook id (see 'corral hook ls')`);
      const found = await api().get("/v1/hooks/:id/deliveries", { param: { id } });
      const rows = found.map((d) => ({ when: d.at, delivery: d.id, from: d.from, verdict: d.verdict, revision: d.revision ?? null, detail: d.detail }));
      const head = ["WHEN", "DELIVERY", "FROM", "VERDICT", "REVISION", "DETAIL"];
      await printList(io, o.format, rows, head, (r) => [r.when, r.delivery.slice(0, 24), r.from, r.verdict, r.revision === null ? "" : String(r.revision), r.detail]);
    });
  return hook;
}
