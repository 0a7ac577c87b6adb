import { execFile } from "node:child_process";
import { OVERLAY_DEVICE, iptablesRestore, type OverlayPlan } from "@corral/core/host";

/** Run a command (argv), with `input` on its stdin; its stdout. Rejects with its stderr when it fails. */
export type Exec = (argv: string[], input?: string) => Promise<string>;

/** Commands run here, on this host's network stack. */
export const localExec: Exec = (argv, input) =>
  new Promise((resolve, reject) => {
    const child = execFile(argv[0]!, argv.slice(1), { timeout: 20_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${argv.join(" ")}: ${String(stderr).trim() || error.message}`));
      else resolve(String(stdout));
    });
    if (input !== undefined) child.stdin?.end(input);
  });

/** What changed on the host, for the log. */
export interface OverlayChanges {
  device: "created" | "kept";
  added: string[];
  removed: string[];
}

/**
 * Make the host's kernel hold the plan: the VXLAN device, a forwarding entry
 * and a neighbour entry per peer VTEP, a route per remote subnet, and
 * corral's packet filter chains (rebuilt whole, in one iptables-restore per
 * table) with their jumps. Idempotent: what is there and wanted stays; what
 * is there and no longer wanted (a peer removed, a stack gone) goes.
 */
export async function applyOverlay(plan: OverlayPlan, exec: Exec = localExec): Promise<OverlayChanges> {
  const d = plan.device;
  const changes: OverlayChanges = { device: "kept", added: [], removed: [] };
  const shown = await exec(["ip", "-d", "-j", "link", "show", "dev", d.name]).catch(() => "");
  const link = shown ? ((JSON.parse(shown) as Array<{ address?: string; mtu?: number; linkinfo?: { info_data?: { id?: number; local?: string; port?: number } } }>)[0] ?? undefined) : undefined;
  const info = link?.linkinfo?.info_data;
  if (link && (info?.id !== d.vni || info?.local !== d.local || info?.port !== d.port)) {
    await exec(["ip", "link", "del", "dev", d.name]);
    changes.removed.push(`device ${d.name} (vni ${info?.id}, local ${info?.local}, port ${info?.port})`);
  }
  if (!link || info?.id !== d.vni || info?.local !== d.local || info?.port !== d.port) {
    await exec(["ip", "link", "add", d.name, "type", "vxlan", "id", String(d.vni), "local", d.local, "dstport", String(d.port), "nolearning"]);
    changes.device = "created";
  }
  // set only what differs: a MAC set again, even the same one, makes the kernel flush the device's neighbours
  const kept = changes.device === "kept" ? link : undefined;
  if (kept?.address !== d.mac) await exec(["ip", "link", "set", "dev", d.name, "address", d.mac]);
  if (kept?.mtu !== d.mtu) await exec(["ip", "link", "set", "dev", d.name, "mtu", String(d.mtu)]);
  await exec(["ip", "link", "set", "dev", d.name, "up"]);
  await exec(["ip", "addr", "replace", `${d.address}/32`, "dev", d.name]);

  // forwarding entries: a peer's VTEP MAC → its underlay address
  const fdbWanted = new Map(plan.peers.map((p) => [p.mac, p.underlay]));
  for (const line of (await exec(["bridge", "fdb", "show", "dev", d.name])).split("\n")) {
    const m = /^([0-9a-f:]{17}) dst (\S+)/.exec(line.trim());
    if (!m || fdbWanted.get(m[1]!) === m[2]) continue;
    await exec(["bridge", "fdb", "del", m[1]!, "dev", d.name, "dst", m[2]!]).catch(() => {});
    changes.removed.push(`fdb ${m[1]} → ${m[2]}`);
  }
  for (const p of plan.peers) await exec(["bridge", "fdb", "replace", p.mac, "dev", d.name, "dst", p.underlay, "self", "permanent"]);

  // neighbours: a peer's VTEP address → its MAC (no ARP across the overlay)
  const neighWanted = new Map(plan.peers.map((p) => [p.vtep, p.mac]));
  for (const n of JSON.parse((await exec(["ip", "-j", "neigh", "show", "dev", d.name])) || "[]") as Array<{ dst: string; lladdr?: string }>) {
    if (neighWanted.get(n.dst) === n.lladdr) continue;
    await exec(["ip", "neigh", "del", n.dst, "dev", d.name]).catch(() => {});
    changes.removed.push(`neighbour ${n.dst}`);
  }
  for (const p of plan.peers) await exec(["ip", "neigh", "replace", p.vtep, "lladdr", p.mac, "dev", d.name, "nud", "permanent"]);

  // routes: another host's subnet of a stack → that host's VTEP
  const routesWanted = new Map(plan.routes.map((r) => [r.subnet, r.via]));
  for (const r of JSON.parse((await exec(["ip", "-j", "route", "show", "dev", d.name])) || "[]") as Array<{ dst: string; gateway?: string }>) {
    if (r.gateway === undefined || routesWanted.get(r.dst) === r.gateway) continue;
    await exec(["ip", "route", "del", r.dst, "dev", d.name]).catch(() => {});
    changes.removed.push(`route ${r.dst} via ${r.gateway}`);
  }
  for (const r of plan.routes) await exec(["ip", "route", "replace", r.subnet, "via", r.via, "dev", d.name, "onlink"]);

  // the filters: corral's chains, whole, then the jumps into them. DOCKER-USER is Docker's, first in FORWARD; an agent
  // that starts before Docker has made it makes it (Docker keeps it)
  await exec(["iptables-restore", "--noflush"], iptablesRestore(plan));
  if (plan.jumps.some((j) => j.chain === "DOCKER-USER")) {
    await exec(["iptables", "-t", "filter", "-N", "DOCKER-USER"]).catch(() => {});
    await ensureRule(exec, "filter", "FORWARD", ["-j", "DOCKER-USER"], 0, changes);
  }
  for (const j of plan.jumps) await ensureRule(exec, j.table, j.chain, j.rule, j.at, changes);
  return changes;
}

/**
 * A rule in a chain: present once, and (with `at`) at that place. Docker
 * inserts its own rules ahead of others as it makes networks: a rule that
 * must come first is put back first, inserted before the old one is deleted
 * (no moment without it).
 */
async function ensureRule(exec: Exec, table: string, chain: string, rule: string[], at: number | undefined, changes: OverlayChanges): Promise<void> {
  if (at === undefined) {
    const present = await exec(["iptables", "-t", table, "-C", chain, ...rule]).then(
      () => true,
      () => false,
    );
    if (present) return;
    await exec(["iptables", "-t", table, "-I", chain, "1", ...rule]);
    changes.added.push(`${table} ${chain}: ${rule.join(" ")}`);
    return;
  }
  const want = `-A ${chain} ${rule.join(" ")}`;
  const positions = async () =>
    (await exec(["iptables", "-t", table, "-S", chain]))
      .split("\n")
      .filter((l) => l.startsWith(`-A ${chain} `))
      .flatMap((l, i) => (l.trim() === want ? [i] : []));
  const now = await positions();
  if (now.length === 1 && now[0] === at) return;
  await exec(["iptables", "-t", table, "-I", chain, String(at + 1), ...rule]);
  // the others, from the last (numbers shift as rules go)
  for (const i of (await positions()).filter((i) => i !== at).reverse()) await exec(["iptables", "-t", table, "-D", chain, String(i + 1)]);
  changes.added.push(`${table} ${chain} #${at + 1}: ${rule.join(" ")}`);
}

/** Take the overlay off this host: its device (with its routes and entries) and corral's chains. */
export async function removeOverlay(plan: OverlayPlan, exec: Exec = localExec): Promise<void> {
  for (const j of plan.jumps) await exec(["iptables", "-t", j.table, "-D", j.chain, ...j.rule]).catch(() => {});
  for (const [table, chains] of [
    ["filter", ["CORRAL-OVERLAY", "CORRAL-VXLAN"]],
    ["nat", ["CORRAL-OVERLAY-NAT"]],
  ] as const) {
    for (const c of chains) {
      await exec(["iptables", "-t", table, "-F", c]).catch(() => {});
      await exec(["iptables", "-t", table, "-X", c]).catch(() => {});
    }
  }
  await exec(["ip", "link", "del", "dev", OVERLAY_DEVICE]).catch(() => {});
}
