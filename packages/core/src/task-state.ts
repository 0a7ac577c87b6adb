import type { TaskRow } from "./tasks.js";

// (its own module: `corral service ps` prints it without loading the fold)

/** `Running 6 seconds ago`, as `docker service ps` words its CURRENT STATE column. */
export function taskState(t: Pick<TaskRow, "current" | "since">, now: number): string {
  const s = Math.max(0, Math.floor((now - t.since) / 1000));
  const unit = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"} ago`;
  const when =
    s < 1
      ? "Less than a second ago"
      : s < 60
        ? unit(s, "second")
        : s < 3600
          ? unit(Math.floor(s / 60), "minute")
          : s < 86_400
            ? unit(Math.floor(s / 3600), "hour")
            : unit(Math.floor(s / 86_400), "day");
  return `${t.current} ${when.startsWith("Less") ? when.toLowerCase() : when}`;
}
