import { createHash } from "node:crypto";
import { effectiveHealthcheck } from "./health.js";
import { ipv4ToNumber, numberToIpv4, octets, parseCidr } from "./ipv4.js";
import type { StackState } from "./state.js";

/**
 * The cross-host stack network, as flannel's vxlan backend builds it: one
 * VXLAN device per host (the kernel's), each stack a subnet of its own on
 * every host it runs on (from one fleet-wide pool), routes to the other
 * hosts' subnets through their VTEPs, and packet filters that keep each
 * stack's subnets to themselves and the VXLAN port to the registered hosts.
 * This module says what a host's kernel should hold, from the control
 * plane's view; the agent makes it so (iproute2, iptables-restore). Pure.
 */

/** The VXLAN device every agent makes. */
export const OVERLAY_DEVICE = "corral.vx";
/** IANA's VXLAN port (flannel uses 8472, the kernel's old default). */
export const OVERLAY_PORT = 4789;
export const OVERLAY_VNI = 4242;
/** VXLAN's own headers over IPv4: 50 bytes less than the underlay's MTU. */
export const OVERLAY_OVERHEAD = 50;

export interface OverlayPeer {
  id: string;
  /** Where its VXLAN packets go: the host's registered address. */
  underlay: string;
  /** The address of its VXLAN device: unique in the fleet (a /32 of corral's VTEP pool). */
  vtep: string;
}

export interface OverlayStack {
  stack: string;
  /** Its subnet on each host it has one on. */
  subnets: Record<string, string>;
}

export interface OverlayView {
  /** This host. */
  me: OverlayPeer;
  /** The other registered hosts (not removed): their VTEPs are reachable, their subnets routed. */
  peers: OverlayPeer[];
  /** The stacks with a subnet on this host. */
  stacks: OverlayStack[];
  /** The underlay's MTU (default 1500). */
  mtu?: number;
}

export interface OverlayPlan {
  device: { name: string; vni: number; port: number; local: string; mac: string; address: string; mtu: number };
  /** One per peer: its VTEP's MAC, where to send frames for it (fdb), and its VTEP address (neighbour). */
  peers: Array<{ id: string; mac: string; underlay: string; vtep: string }>;
  /** Another host's subnet of a stack that has one here: through that host's VTEP. */
  routes: Array<{ subnet: string; via: string; stack: string; host: string }>;
  /** Each stack's network here: its bridge (named by corral) and subnet. */
  bridges: Array<{ stack: string; bridge: string; subnet: string; gateway: string }>;
  /** Rules for `iptables-restore --noflush`: corral's own chains, rebuilt whole. */
  filter: string[];
  nat: string[];
  /** Jumps into corral's chains from the built-in ones: `iptables -C` then `-I` if missing. */
  jumps: Array<{ table: "filter" | "nat"; chain: string; rule: string[]; at?: number }>;
}

/** A stack network's bridge on every host: a name of corral's (Linux allows 15 characters), the same for the same stack. */
export const stackBridge = (stack: string) => `cr-${createHash("sha256").update(stack).digest("hex").slice(0, 12)}`;

/** The MAC of a VTEP: locally administered, from its (unique) address. */
export function vtepMac(vtep: string): string {
  return ["02", "c0", ...octets(vtep).map((o) => o.toString(16).padStart(2, "0"))].join(":");
}

/** A subnet's gateway: its first address (the bridge's, where the agent answers DNS). */
export function gatewayOf(subnet: string): string {
  return numberToIpv4(parseCidr(subnet).base + 1);
}

const isCidr = (cidr: string) => {
  try {
    parseCidr(cidr);
    return true;
  } catch {
    return false;
  }
};

export const FILTER_CHAIN = "CORRAL-OVERLAY";
export const VXLAN_CHAIN = "CORRAL-VXLAN";
export const NAT_CHAIN = "CORRAL-OVERLAY-NAT";

export function overlayPlan(view: OverlayView): OverlayPlan {
  for (const s of view.stacks) for (const [host, subnet] of Object.entries(s.subnets)) if (!isCidr(subnet)) throw new Error(`stack ${s.stack} on ${host}: not a subnet: ${subnet}`);
  const peers = [...view.peers].filter((p) => p.id !== view.me.id).sort((a, b) => (a.id < b.id ? -1 : 1));
  for (const p of [view.me, ...peers]) {
    ipv4ToNumber(p.underlay);
    ipv4ToNumber(p.vtep);
  }
  const known = new Map(peers.map((p) => [p.id, p]));
  const stacks = [...view.stacks].sort((a, b) => (a.stack < b.stack ? -1 : 1));
  const routes: OverlayPlan["routes"] = [];
  const bridges: OverlayPlan["bridges"] = [];
  const filter: string[] = [`:${FILTER_CHAIN} - [0:0]`, `:${VXLAN_CHAIN} - [0:0]`, `-A ${FILTER_CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`];
  for (const s of stacks) {
    const mine = s.subnets[view.me.id];
    if (!mine) continue;
    const bridge = stackBridge(s.stack);
    bridges.push({ stack: s.stack, bridge, subnet: mine, gateway: gatewayOf(mine) });
    for (const [host, subnet] of Object.entries(s.subnets).sort(([a], [b]) => (a < b ? -1 : 1))) {
      const peer = known.get(host);
      if (host === view.me.id || !peer) continue; // a host removed: nothing goes there
      routes.push({ subnet, via: peer.vtep, stack: s.stack, host });
      // the stack's containers here reach its containers there, and they reach these: nothing else crosses
      filter.push(`-A ${FILTER_CHAIN} -i ${bridge} -o ${OVERLAY_DEVICE} -s ${mine} -d ${subnet} -j ACCEPT`);
      filter.push(`-A ${FILTER_CHAIN} -i ${OVERLAY_DEVICE} -o ${bridge} -s ${subnet} -d ${mine} -j ACCEPT`);
    }
  }
  filter.push(`-A ${FILTER_CHAIN} -j DROP`);
  // VXLAN packets only from the registered hosts' addresses
  for (const p of peers) filter.push(`-A ${VXLAN_CHAIN} -s ${p.underlay}/32 -j ACCEPT`);
  filter.push(`-A ${VXLAN_CHAIN} -j DROP`);
  const nat = [`:${NAT_CHAIN} - [0:0]`, `-A ${NAT_CHAIN} -o ${OVERLAY_DEVICE} -j ACCEPT`];
  return {
    device: { name: OVERLAY_DEVICE, vni: OVERLAY_VNI, port: OVERLAY_PORT, local: view.me.underlay, mac: vtepMac(view.me.vtep), address: view.me.vtep, mtu: (view.mtu ?? 1500) - OVERLAY_OVERHEAD },
    peers: peers.map((p) => ({ id: p.id, mac: vtepMac(p.vtep), underlay: p.underlay, vtep: p.vtep })),
    routes,
    bridges,
    filter,
    nat,
    jumps: [
      // what crosses the overlay, either way, is corral's to judge, ahead of Docker's own accepts for its bridges: from
      // DOCKER-USER, which Docker keeps first in FORWARD, and first in it (`at`: kept at that place, whatever was added since)
      { table: "filter", chain: "DOCKER-USER", rule: ["-i", OVERLAY_DEVICE, "-j", FILTER_CHAIN], at: 0 },
      { table: "filter", chain: "DOCKER-USER", rule: ["-o", OVERLAY_DEVICE, "-j", FILTER_CHAIN], at: 1 },
      { table: "filter", chain: "INPUT", rule: ["-p", "udp", "--dport", String(OVERLAY_PORT), "-j", VXLAN_CHAIN] },
      // a stack's packets keep their source address over the overlay: Docker's masquerade (added with each network) is for the way out
      { table: "nat", chain: "POSTROUTING", rule: ["-j", NAT_CHAIN], at: 0 },
    ],
  };
}

/** The `iptables-restore --noflush` input for a plan: corral's chains, emptied and filled again in one commit per table. */
export function iptablesRestore(plan: OverlayPlan): string {
  return ["*filter", ...plan.filter, "COMMIT", "*nat", ...plan.nat, "COMMIT", ""].join("\n");
}

/**
 * A stack's names on its network, wherever its containers run: each
 * service's name and SERVICE.STACK give the addresses of its running
 * containers (healthy ones only, when it has a health check; previous
 * containers kept by an upgrade do not answer), each container's name its
 * own address, on every host. Names are lowercase; addresses sorted (the
 * name server takes them in turn). Pure.
 */
export function stackNames(state: StackState, hostUp: (host: string) => boolean = () => true): Record<string, string[]> {
  const names: Record<string, string[]> = {};
  const add = (name: string, ip?: string) => {
    const key = name.toLowerCase();
    names[key] ??= [];
    if (ip && !names[key]!.includes(ip)) names[key]!.push(ip);
  };
  for (const [service, { spec }] of Object.entries(state.services)) {
    add(service);
    add(`${service}.${state.name}`);
    const checked = effectiveHealthcheck(spec) !== undefined;
    for (const c of Object.values(state.containers)) {
      if (c.service !== service || c.previousOf || c.state !== "running" || !c.ip || !hostUp(c.host)) continue;
      if (checked && c.health !== "healthy") continue;
      add(service, c.ip);
      add(`${service}.${state.name}`, c.ip);
    }
  }
  for (const c of Object.values(state.containers)) if (!c.previousOf && c.ip && hostUp(c.host)) add(c.name, c.state === "running" ? c.ip : undefined);
  for (const list of Object.values(names)) list.sort();
  return names;
}
