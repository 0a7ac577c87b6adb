import type { Command } from "commander";
import { CliError, once } from "../client.js";
import { printList } from "../output.js";
import { verb, type Ctx } from "./context.js";
import { formatOption, many } from "./flags.js";

/** `corral chat ...`: the Slack app's signing secret, and which chat users act as which corral users (the admin's). */
export function chatCommand(ctx: Ctx): Command {
  const { io, api } = ctx;
  const chat = verb(ctx, "chat").description("chatops: a Slack slash command (/corral ps|history|up|upgrade|confirm|rollback|logs); the admin's settings");

  chat
    .command("setup")
    .description("the Slack app's signing secret (on stdin), and where follow-ups may go")
    .requiredOption("--signing-secret-stdin", "read the signing secret from standard input")
    .option("--response-host <host>", "a host response_url may name (repeatable; default hooks.slack.com)", many)
    .action(async (o: { responseHost?: string[] }) => {
      const secret = ctx.stdin(1024).toString("utf8").trim();
      if (secret.length < 16) throw new CliError("the signing secret (standard input) is at least 16 characters: Slack's app page, Basic Information, Signing Secret");
      const res = await api().put("/v1/chat/config", { json: { signingSecret: secret, ...(o.responseHost ? { responseHosts: o.responseHost } : {}) } });
      io.out(`chat set up: follow-ups go to ${res.responseHosts.join(", ")}`);
    });

  chat
    .command("map")
    .description("a chat user acts as a corral user, with that user's rights")
    .argument("<chat-user>", "the Slack user id (U…)")
    .argument("<user>", "the corral user")
    .action(async (chatUser: string, user: string) => {
      await api().put("/v1/chat/users/:chatUser", { param: { chatUser }, json: { user } }, once());
      io.out(`${chatUser} acts as ${user}`);
    });

  chat
    .command("unmap")
    .description("a chat user acts as nobody (refused)")
    .argument("<chat-user>", "the Slack user id")
    .action(async (chatUser: string) => {
      await api().delete("/v1/chat/users/:chatUser", { param: { chatUser } }, once());
      io.out(chatUser);
    });

  chat
    .command("ls")
    .description("who is who")
    .addOption(formatOption())
    .action(async (o: { format: string }) => {
      const rows = await api().get("/v1/chat/users");
      await printList(io, o.format, rows, ["CHAT USER", "USER"], (r) => [r.chatUser, r.user]);
    });
  return chat;
}
