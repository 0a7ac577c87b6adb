import { describe, expect, it } from "vitest";
import { parseChatCommand } from "./chat.js";

describe("chat commands", () => {
  it("reads each verb with its target and flags", () => {
    expect(parseChatCommand("")).toEqual({ verb: "help" });
    expect(parseChatCommand("ps")).toEqual({ verb: "ps" });
    expect(parseChatCommand("ps shop/web")).toEqual({ verb: "ps", stack: "shop", service: "web" });
    expect(parseChatCommand("history shop")).toEqual({ verb: "history", stack: "shop" });
    expect(parseChatCommand("up shop")).toEqual({ verb: "up", stack: "shop" });
    expect(parseChatCommand("upgrade shop/web registry.example:5000/team/app:v2")).toEqual({ verb: "upgrade", stack: "shop", service: "web", image: "registry.example:5000/team/app:v2" });
    expect(parseChatCommand("upgrade shop/web")).toEqual({ verb: "upgrade", stack: "shop", service: "web" });
    expect(parseChatCommand("confirm shop")).toEqual({ verb: "confirm", stack: "shop" });
    expect(parseChatCommand("rollback shop --to-revision 3")).toEqual({ verb: "rollback", stack: "shop", toRevision: 3 });
    expect(parseChatCommand("rollback shop/web")).toEqual({ verb: "rollback", stack: "shop", service: "web" });
    expect(parseChatCommand("logs --tail 5 shop/web")).toEqual({ verb: "logs", stack: "shop", service: "web", tail: 5 });
    expect(parseChatCommand("logs shop")).toEqual({ verb: "logs", stack: "shop", tail: 20 });
  });
  it("refuses what is not a command, saying what", () => {
    expect(parseChatCommand("deploy shop")).toEqual({ error: "no command deploy" });
    expect(parseChatCommand("history")).toEqual({ error: "history needs a STACK" });
    expect(parseChatCommand("history Shop!")).toEqual({ error: '"Shop!" is not STACK or STACK/SERVICE' });
    expect(parseChatCommand("confirm shop/web")).toEqual({ error: "confirm acts on a whole stack: confirm shop" });
    expect(parseChatCommand("upgrade shop")).toEqual({ error: "upgrade needs STACK/SERVICE" });
    expect(parseChatCommand("upgrade shop/web $(reboot)")).toEqual({ error: '"$(reboot)" is not an image' });
    expect(parseChatCommand("rollback shop --to-revision x")).toEqual({ error: '--to-revision: "x" is not a revision number' });
    expect(parseChatCommand("rollback shop/web --to-revision 2")).toHaveProperty("error");
    expect(parseChatCommand("logs --tail 100000 shop")).toEqual({ error: "--tail: a number of lines from 1 to 200" });
    expect(parseChatCommand("ps --all")).toEqual({ error: "ps takes no --all" });
    expect(parseChatCommand("ps a b")).toEqual({ error: 'ps: unexpected "b"' });
    expect(parseChatCommand("x".repeat(1001))).toHaveProperty("error");
    expect(parseChatCommand('ps "unclosed')).toHaveProperty("error");
  });
});
