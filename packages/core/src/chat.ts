import { stackNamePattern } from "./model.js";
import { serviceNamePattern } from "./names.js";
import { splitCommand } from "./shell.js";

/**
 * A chat command (`/corral ps shop`, `/corral rollback shop/web
 * --to-revision 3`), read into what corral does. Pure; the API runs it as
 * the chat user's corral user, through the same routes as the CLI.
 */
export type ChatCommand =
  | { verb: "help" }
  | { verb: "ps"; stack?: string; service?: string }
  | { verb: "history"; stack: string }
  | { verb: "up"; stack: string }
  | { verb: "upgrade"; stack: string; service: string; image?: string }
  | { verb: "confirm"; stack: string }
  | { verb: "rollback"; stack: string; service?: string; toRevision?: number }
  | { verb: "logs"; stack: string; service?: string; tail: number };

export const CHAT_USAGE = [
  "ps [STACK[/SERVICE]]",
  "history STACK",
  "up STACK",
  "upgrade STACK/SERVICE [IMAGE]",
  "confirm STACK",
  "rollback STACK[/SERVICE] [--to-revision N]",
  "logs [--tail N] STACK[/SERVICE]",
].map((l) => `/corral ${l}`);

/** The most lines `logs` answers with (chat is not a terminal). */
export const CHAT_MAX_TAIL = 200;

const imagePattern = /^[a-z0-9][a-z0-9._\-/:@]{0,511}$/i;

export function parseChatCommand(text: string): ChatCommand | { error: string } {
  if (text.length > 1000) return { error: "a command is at most 1000 characters" };
  let words: string[];
  try {
    words = splitCommand(text.trim());
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
  const [verb, ...rest] = words;
  const flags = new Map<string, string>();
  const args: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const w = rest[i]!;
    if (w.startsWith("--")) {
      const [name, inline] = w.split("=", 2) as [string, string?];
      // only the flags that take a value take the next word (an unknown one is refused below, by name)
      const value = inline ?? (name === "--tail" || name === "--to-revision" ? rest[++i] : "");
      if (value === undefined) return { error: `${name} needs a value` };
      flags.set(name, value);
    } else args.push(w);
  }
  const target = (t: string | undefined, needService = false): { stack: string; service?: string } | { error: string } => {
    if (!t) return { error: `${verb} needs ${needService ? "STACK/SERVICE" : "a STACK"}` };
    const [stack, service, extra] = t.split("/");
    if (!stack || !stackNamePattern.test(stack) || extra !== undefined) return { error: `"${t.slice(0, 80)}" is not STACK or STACK/SERVICE` };
    if (service !== undefined && !serviceNamePattern.test(service)) return { error: `"${service.slice(0, 80)}" is not a service name` };
    if (needService && !service) return { error: `${verb} needs STACK/SERVICE` };
    return { stack, ...(service ? { service } : {}) };
  };
  const allowFlags = (...names: string[]) => {
    const bad = [...flags.keys()].find((f) => !names.includes(f));
    return bad ? { error: `${verb} takes no ${bad}` } : undefined;
  };
  const extraArgs = (n: number) => (args.length > n ? { error: `${verb}: unexpected "${args[n]!.slice(0, 80)}"` } : undefined);
  switch (verb) {
    case undefined:
    case "help":
      return { verb: "help" };
    case "ps": {
      const e = allowFlags() ?? extraArgs(1);
      if (e) return e;
      if (!args[0]) return { verb: "ps" };
      const t = target(args[0]);
      return "error" in t ? t : { verb: "ps", ...t };
    }
    case "history":
    case "up":
    case "confirm": {
      const e = allowFlags() ?? extraArgs(1);
      if (e) return e;
      const t = target(args[0]);
      if ("error" in t) return t;
      if (t.service) return { error: `${verb} acts on a whole stack: ${verb} ${t.stack}` };
      return { verb, stack: t.stack };
    }
    case "upgrade": {
      const e = allowFlags() ?? extraArgs(2);
      if (e) return e;
      const t = target(args[0], true);
      if ("error" in t) return t;
      const image = args[1];
      if (image !== undefined && !imagePattern.test(image)) return { error: `"${image.slice(0, 80)}" is not an image` };
      return { verb: "upgrade", stack: t.stack, service: t.service!, ...(image ? { image } : {}) };
    }
    case "rollback": {
      const e = allowFlags("--to-revision") ?? extraArgs(1);
      if (e) return e;
      const t = target(args[0]);
      if ("error" in t) return t;
      const to = flags.get("--to-revision");
      if (to !== undefined && !/^[1-9]\d{0,8}$/.test(to)) return { error: `--to-revision: "${to.slice(0, 20)}" is not a revision number` };
      if (to !== undefined && t.service) return { error: "--to-revision rolls the whole stack back: rollback STACK --to-revision N" };
      return { verb: "rollback", ...t, ...(to !== undefined ? { toRevision: Number(to) } : {}) };
    }
    case "logs": {
      const e = allowFlags("--tail") ?? extraArgs(1);
      if (e) return e;
      const t = target(args[0]);
      if ("error" in t) return t;
      const tail = flags.get("--tail") ?? "20";
      if (!/^\d{1,4}$/.test(tail) || Number(tail) < 1 || Number(tail) > CHAT_MAX_TAIL) return { error: `--tail: a number of lines from 1 to ${CHAT_MAX_TAIL}` };
      return { verb: "logs", ...t, tail: Number(tail) };
    }
    default:
      return { error: `no command ${verb.slice(0, 40)}` };
  }
}
