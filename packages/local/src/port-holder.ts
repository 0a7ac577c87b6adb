import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/**
 * The pid of a process listening on TCP `port`, where Linux's /proc says it
 * (and we may look: only our own user's processes show their sockets);
 * undefined otherwise. For a message, never for a decision.
 */
export function portHolder(port: number, proc = "/proc"): number | undefined {
  const inodes = new Set<string>();
  for (const table of ["net/tcp", "net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(`${proc}/${table}`, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is HEXIP:HEXPORT, st 0A is LISTEN, field 9 the socket's inode
      if (f.length > 9 && f[3] === "0A" && Number.parseInt(f[1]!.split(":")[1] ?? "", 16) === port) inodes.add(f[9]!);
    }
  }
  if (inodes.size === 0) return undefined;
  let pids: string[];
  try {
    pids = readdirSync(proc).filter((d) => /^\d+$/.test(d));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`${proc}/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`${proc}/${pid}/fd/${fd}`));
        if (m && inodes.has(m[1]!)) return Number(pid);
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}
