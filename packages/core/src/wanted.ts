import { lostKey, type StackState } from "./state.js";

/** A container the control plane wants on a host: its engine name, its engine id when known, and whether the log has it running. */
export interface WantedContainer {
  name: string;
  dockerId?: string;
  /** The log has it running: an agent that finds it exited (with no restart policy at work) says so. */
  running?: true;
  /**
   * The log has it not running by corral's own doing (created and not yet
   * started, or stopped by a step: an upgrade's previous container, a
   * stopped stack), and no step names it now: an agent that finds it running
   * (a restart policy brought it back when the engine started again) stops it.
   */
  stopped?: true;
}

/**
 * The containers of a stack that its host should keep, by engine name: an
 * agent removes a corral container no stack wants (an orphan), so this errs
 * on the side of keeping. Wanted on `host`:
 *
 * - every container the log has there (an upgrade's previous ones too),
 * - creates sent there and never heard back about (`inflight`),
 * - the containers of scheduled runs still running there,
 * - whatever a step of the operation in progress names there (a container
 *   it creates, starts, stops or removes, and a rename's new name): nothing
 *   in flight is called an orphan.
 *
 * A container the log has created or stopped (not exited on its own) and
 * no step that has not reported names is `stopped`: it is to stay down.
 *
 * Not wanted: the stale containers left there while the host was lost
 * (`lost`), unless a live record of that name is there again.
 */
export function wantedOnHost(state: StackState, host: string): WantedContainer[] {
  const out = new Map<string, WantedContainer>();
  const want = (name: string | undefined, extra: Omit<WantedContainer, "name"> = {}) => {
    if (!name) return;
    const known = out.get(name);
    out.set(name, { ...extra, ...known, name });
  };
  const stepping = new Set<string>();
  for (const { step, status } of Object.values(state.steps)) {
    if (status !== "planned" || step.host !== host) continue;
    if (step.container) stepping.add(step.container);
    if (step.renameTo) stepping.add(step.renameTo);
  }
  for (const c of Object.values(state.containers)) {
    if (c.host !== host) continue;
    const down = c.state !== "running" && !c.exited && !stepping.has(c.name);
    want(c.name, { ...(c.dockerId ? { dockerId: c.dockerId } : {}), ...(c.state === "running" ? { running: true as const } : {}), ...(down ? { stopped: true as const } : {}) });
  }
  for (const [name, c] of Object.entries(state.inflight)) if (c.host === host) want(name);
  for (const cron of Object.values(state.cron)) for (const r of cron.runs) if (r.status === "running" && r.host === host) want(r.container);
  if (state.op?.status === "running") {
    for (const { step } of Object.values(state.steps)) {
      if (step.host !== host) continue;
      want(step.container);
      want(step.renameTo);
    }
  }
  for (const name of [...out.keys()]) {
    const live = state.containers[name];
    if (state.lost?.[lostKey(name, host)] && !(live && live.host === host)) out.delete(name);
  }
  return [...out.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
