import type { SitePolicy } from "./schema.js";

export interface OptionProblem {
  /** Under the volume: `driver`, `driver_opts`, `driver_opts.o`, ... */
  key: string;
  reason: string;
}

const nfsTypes = ["nfs", "nfs4"];
const nfsDevice = /^:\/[^\s,]*$/;
const optionValue = /^[A-Za-z0-9._:+-]*$/;

/**
 * Why a volume's driver and options are not the site's to allow, or [].
 * `local` with options mounts whatever the options say (`type: none, o:
 * bind, device: /` is the host's root, `type: ext4, device: /dev/sda1` a
 * raw disk), so local takes only the NFS form, to a server the site names,
 * with options from its list. Pure.
 */
export function volumeProblems(driver: string | undefined, opts: Record<string, string> | undefined, policy: SitePolicy): OptionProblem[] {
  const name = driver ?? "local";
  if (!policy.volumeDrivers.includes(name)) return [{ key: "driver", reason: `${name} is not allowed (allowed: ${policy.volumeDrivers.join(", ") || "none"})` }];
  const entries = Object.entries(opts ?? {});
  if (name !== "local" || entries.length === 0) return [];
  const nfsForm = "the local driver takes no options but an NFS mount (type: nfs, o: addr=SERVER, device: :/PATH)";
  if (!opts?.type) return [{ key: `driver_opts.${entries[0]![0]}`, reason: `is not allowed: ${nfsForm}` }];
  if (!nfsTypes.includes(opts.type)) return [{ key: "driver_opts.type", reason: `${opts.type} is not allowed: ${nfsForm}` }];
  const problems: OptionProblem[] = [];
  for (const [k] of entries) if (!["type", "o", "device"].includes(k)) problems.push({ key: `driver_opts.${k}`, reason: "is not an NFS option (allowed: type, o, device)" });
  if (!opts.device || !nfsDevice.test(opts.device)) problems.push({ key: "driver_opts.device", reason: `${opts.device ? `"${opts.device}" ` : ""}must be the server's path as :/PATH` });
  const servers = policy.nfsServers.length ? policy.nfsServers.join(", ") : "none";
  const addrs: string[] = [];
  for (const item of (opts.o ?? "").split(",").filter(Boolean)) {
    const at = item.indexOf("=");
    const [option, value] = at < 0 ? [item, ""] : [item.slice(0, at), item.slice(at + 1)];
    if (option === "addr") addrs.push(value);
    else if (!policy.nfsOptions.includes(option)) problems.push({ key: "driver_opts.o", reason: `${option} is not an allowed NFS option (allowed: addr, ${policy.nfsOptions.join(", ")})` });
    else if (!optionValue.test(value)) problems.push({ key: "driver_opts.o", reason: `the value of ${option} may hold letters, digits and . _ : + - only` });
  }
  if (addrs.length !== 1) problems.push({ key: "driver_opts.o", reason: `must name one NFS server as addr=SERVER (allowed: ${servers})` });
  else if (!policy.nfsServers.includes(addrs[0]!)) problems.push({ key: "driver_opts.o", reason: `NFS server ${addrs[0]} is not allowed (allowed: ${servers})` });
  return problems;
}
