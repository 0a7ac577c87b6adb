import { HTTPException } from "hono/http-exception";
import { portsOfServices, stackPlaced, type Placed, type PortPool, type PortSpec, type SitePolicy, type StackState } from "@corral/core";
import { LeaseBusyError, type LeaseStore } from "@corral/store";
import type { StackLookups } from "./lookups.js";

export interface PortDeps {
  policy: SitePolicy;
  /** Serializes the decisions that give out host ports across API processes (see ApiDeps.leases). */
  leases?: Pick<LeaseStore, "with">;
  existingStacks: StackLookups["existingStacks"];
}

/** The host ports stacks hold, and the one-at-a-time giving of them. */
export function hostPorts(deps: PortDeps) {
  /**
   * Host ports other stacks hold: published in their specs, given to their
   * slots, or still held by their containers (one above the scale not yet
   * removed); and this stack's current ports.
   */
  async function portsInUse(stack: string): Promise<{ used: Map<number, StackState>; previous: Record<string, PortSpec[]>; own?: StackState }> {
    const used = new Map<number, StackState>();
    let previous: Record<string, PortSpec[]> = {};
    let own: StackState | undefined;
    for (const s of await deps.existingStacks()) {
      if (s.name === stack) {
        previous = Object.fromEntries(Object.entries(s.services).map(([n, r]) => [n, r.spec.ports]));
        own = s;
        continue;
      }
      for (const p of portsOfServices(s.services, s.slotPorts)) used.set(p, s);
      for (const c of Object.values(s.containers)) for (const p of c.ports ?? []) if (p.published !== undefined) used.set(p.published, s);
    }
    return { used, previous, ...(own ? { own } : {}) };
  }

  /** What the decider gives slots their host ports from: the site's range, less what other stacks hold. */
  async function portPool(stack: string): Promise<PortPool> {
    const { used } = await portsInUse(stack);
    return { range: deps.policy.portRange, taken: [...used.keys()].sort((a, b) => a - b) };
  }

  /** One port-giving decision at a time, across API processes (a lease), else within this one. */
  let portQueue: Promise<unknown> = Promise.resolve();
  async function givingPorts<T>(fn: () => Promise<T>): Promise<T> {
    if (deps.leases) {
      try {
        return await deps.leases.with("host-ports", fn);
      } catch (e) {
        if (e instanceof LeaseBusyError) throw new HTTPException(503, { message: "host ports are being given out by another request; try again" });
        throw e;
      }
    }
    const turn = portQueue.then(fn, fn);
    portQueue = turn.catch(() => undefined);
    return turn;
  }

  /** The other stacks' containers, for placement (ports and container-label rules span stacks): one load per stack. */
  async function othersPlaced(stack: string): Promise<Placed[]> {
    return (await deps.existingStacks()).flatMap((s) => (s.name === stack ? [] : stackPlaced(s)));
  }

  return { portsInUse, portPool, givingPorts, othersPlaced };
}

export type HostPorts = ReturnType<typeof hostPorts>;
