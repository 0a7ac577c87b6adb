import { eachAtMost, hostState, lastHeard, notFound, stackNamePattern, type ContainerRow, type HostInfo, type StackState } from "@corral/core";
import type { EventStore, HostStore } from "@corral/store";
import { canSee, type Principal } from "../auth.js";
import type { Holder } from "../names.js";
import { stackParam } from "../validate.js";

export interface LookupDeps {
  store: Pick<EventStore, "load" | "stackNames">;
  hosts: Pick<HostStore, "list">;
  clock: () => number;
  /** A host not heard from for this long is disconnected. */
  hostStaleMs: number;
  heardSince?: number;
}

/** How many stack reads a read of every stack makes at once. */
const LOAD_CONCURRENCY = 32;

/** Stacks, who holds them, and the hosts, as the routes look them up for a caller. */
export function stackLookups(deps: LookupDeps) {
  /** Every stack's state, LOAD_CONCURRENCY reads at a time (10,000 at once would queue as many requests in the SDK). */
  async function everyStack(options: { maxAgeMs?: number }): Promise<StackState[]> {
    const names = await deps.store.stackNames();
    const states: StackState[] = new Array<StackState>(names.length);
    await eachAtMost(names, LOAD_CONCURRENCY, async (name, i) => void (states[i] = await deps.store.load(name, options)));
    return states;
  }
  /** The read of every stack in flight that takes states maxAgeMs old: the callers that come meanwhile share it. */
  const sharedReads = new Map<number, Promise<StackState[]>>();

  /**
   * Stacks that exist; with a principal, only those it may see. `maxAgeMs`:
   * states read that recently may do (see EventStore.load), and a read of
   * every stack already under way for the same age is shared (a hundred
   * agents' reconciles at once make one).
   */
  async function existingStacks(p?: Principal, options: { maxAgeMs?: number } = {}): Promise<StackState[]> {
    let read: Promise<StackState[]>;
    if (options.maxAgeMs === undefined) read = everyStack(options);
    else {
      const age = options.maxAgeMs;
      read = sharedReads.get(age) ?? everyStack(options).finally(() => sharedReads.delete(age));
      sharedReads.set(age, read);
    }
    return (await read).filter((s) => s.exists && (!p || canSee(p, s.owner, s.group))).sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  async function existing(stack: string, p: Principal): Promise<StackState> {
    const state = await deps.store.load(stackParam(stack));
    if (!state.exists || !canSee(p, state.owner, state.group)) throw notFound(`stack ${stack} not found`);
    return state;
  }

  /** Who holds a stack's name: its owner and group, kept after it is removed; nobody for a stack never made (or a name that is none). */
  async function holderOf(stack: string): Promise<Holder> {
    if (!stackNamePattern.test(stack)) return {};
    const s = await deps.store.load(stack);
    return s.owner ? { owner: s.owner, ...(s.group ? { group: s.group } : {}) } : {};
  }

  async function holdersOf(stacks: string[]): Promise<Map<string, Holder>> {
    const names = [...new Set(stacks)];
    return new Map(await Promise.all(names.map(async (n) => [n, await holderOf(n)] as const)));
  }

  /** Someone else's stack answers as if it did not exist (a new one is anyone's to create). */
  async function mayTouch(stack: string, p: Principal): Promise<void> {
    const state = await deps.store.load(stack);
    if ((state.exists || state.owner) && !canSee(p, state.owner, state.group)) throw notFound(`stack ${stack} not found`);
  }

  /** Containers (of stacks the caller may see, or all) that mount a named volume. */
  async function volumeUsers(name: string, p?: Principal): Promise<Array<{ name: string; running: boolean }>> {
    const out: Array<{ name: string; running: boolean }> = [];
    for (const s of await existingStacks(p)) {
      for (const c of Object.values(s.containers)) {
        const spec = s.services[c.service]?.spec;
        const mounts = (spec?.volumes ?? []).some((m) => m.type === "volume" && m.source && (s.volumes[m.source]?.name ?? m.source) === name);
        if (mounts) out.push({ name: c.name, running: c.state === "running" });
      }
    }
    return out;
  }

  /** Every registered host with its state and labels: the decider places new containers on the active ones. */
  async function liveHosts(): Promise<HostInfo[]> {
    const now = deps.clock();
    // a listing up to 1 s old (what this process changed of the hosts is seen at once: see HostStore.list)
    const hosts = await deps.hosts.list({ maxAgeMs: 1_000 });
    return hosts.map((h) => ({ id: h.id, name: h.name, state: hostState(h.state, lastHeard(h.lastSeen, deps.heardSince), now, deps.hostStaleMs), labels: h.labels }));
  }

  /** Host id → name, for listings: a container's HOST is its host's name. */
  async function hostNames(): Promise<HostNames> {
    // the same states placement sees (a control plane just started counts its hosts as heard since then)
    return new Map((await liveHosts()).map((h) => [h.id, { name: h.name ?? h.id, state: h.state ?? "active" }]));
  }

  return { existingStacks, existing, holderOf, holdersOf, mayTouch, volumeUsers, liveHosts, hostNames };
}

export type StackLookups = ReturnType<typeof stackLookups>;

export type HostNames = Map<string, { name: string; state: string }>;

// a container on a disconnected host may run or not: nobody can tell until the host is back
export const namedHosts = (rows: ContainerRow[], names: HostNames) =>
  rows.map((r) => {
    const h = names.get(r.host);
    if (h?.state !== "disconnected") return { ...r, host: h?.name ?? r.host };
    const lost = `host ${h.name} is disconnected`;
    return { ...r, host: h.name, state: r.state === "running" ? "unknown" : r.state, detail: r.detail ? `${lost}; ${r.detail}` : lost };
  });
