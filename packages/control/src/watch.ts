import { cronSchedule, isGlobal, type StackState } from "@corral/core";

/**
 * What the reconcile tick needs of a stack it does not read, from the last
 * state of it this controller saw: whether anything in it could be due
 * without a new commit (an operation in progress, a timer, a container off
 * an active host or stopped, slots lost to a host that may come back).
 */
export interface Watch {
  running: boolean;
  timed: boolean;
  hosts: string[];
}

export function watchOf(state: StackState): Watch {
  const services = Object.entries(state.services);
  const containers = Object.values(state.containers);
  const timed =
    Object.values(state.upgrades).some((u) => u.autoConfirmMs) ||
    services.some(([name, s]) => cronSchedule(s.spec) || isGlobal(state.name, name, s.spec)) ||
    Object.keys(state.waiting ?? {}).length > 0 ||
    Object.keys(state.lost ?? {}).length > 0 ||
    // what restartDue may pick: a container stopped by its own exit (not the old one an upgrade keeps)
    containers.some((c) => c.state === "stopped" && c.exited !== undefined && !c.previousOf);
  return { running: state.op?.status === "running", timed, hosts: [...new Set(containers.map((c) => c.host))] };
}

/**
 * Whether a tick between full sweeps reads the stack: one never seen, or
 * whose last seen state may hold something due (a superset of what the tick
 * acts on: see Controller.tick), or with a container on a host that is not
 * active now (draining, disconnected, gone): `activeHosts` are the active ones.
 */
export function mayNeedTick(watch: Watch | undefined, activeHosts: ReadonlySet<string>): boolean {
  if (!watch) return true;
  if (watch.running || watch.timed) return true;
  return watch.hosts.some((h) => !activeHosts.has(h));
}
