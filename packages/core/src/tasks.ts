import type { Commit } from "./events.js";
import { containerName } from "./names.js";
import { Draft, initialState, type ContainerRecord } from "./state.js";
import { containerId } from "./view.js";

export { taskState } from "./task-state.js";

/**
 * `docker service ps`: a service's tasks, i.e. every container each slot
 * has had, newest first, with what corral wants of it (desired), what it
 * is and since when (current), why it ended (error) and its ports. Read
 * from the stack's log by folding it commit by commit and watching each
 * container (by its identity, the create step that made it) come, change
 * and go, so the history is the fold's own view, not a second reading of
 * the events.
 */
export interface TaskRow {
  id: string;
  /** The slot's name, `STACK-SERVICE-N`, for every task of the slot. */
  name: string;
  slot: number;
  revision: number;
  image: string;
  host: string;
  desired: "Running" | "Shutdown";
  /** Running, Starting, Created, Shutdown, Failed, Complete, Rejected. */
  current: string;
  /** When it reached its current state (ms since the epoch). */
  since: number;
  error: string;
  ports: string;
}

/** Tasks kept per slot, as Swarm's default task history limit. */
export const TASK_HISTORY = 5;

const identity = (c: ContainerRecord) => c.createdBy ?? `${c.name}@${c.revision}`;

export function serviceTasks(stack: string, commits: readonly Commit[], service: string, perSlot = TASK_HISTORY): TaskRow[] {
  const draft = new Draft(initialState(stack));
  const tasks = new Map<string, TaskRow & { order: number }>();
  const stepOp = new Map<string, string>();
  const failedOp = new Map<string, string>(); // op → why the service failed in it
  const stepErrors = new Map<string, string>(); // task → why a step on its container failed
  let order = 0;
  const set = (t: TaskRow & { order: number }, current: string, desired: TaskRow["desired"], at: number, error?: string) => {
    if (t.current !== current) t.since = at;
    t.current = current;
    t.desired = desired;
    if (error !== undefined) t.error = error;
  };
  for (const commit of commits) {
    if (commit.version <= draft.state.version) continue;
    for (const e of commit.events) {
      if (e.type === "StepPlanned" && e.step.service === service) stepOp.set(e.step.id, e.step.op);
      if (e.type === "StackCreated") tasks.clear(); // a stack made anew after a removal: the earlier life's tasks are not this one's
      if (e.type === "ServiceFailed" && e.service === service) failedOp.set(draft.state.op?.id ?? "", e.reason);
      // a create that failed never made a container: a task of its own, rejected
      if (e.type === "StepFailed") {
        const step = draft.state.steps[e.stepId]?.step;
        // a step on a container (its start, say) failing: the container's task ends with those words
        const on = step?.service === service && step.action !== "create" ? (step.container ? draft.state.containers[step.container] : undefined) : undefined;
        if (on && !e.error.startsWith("skipped: ")) stepErrors.set(step?.createdBy ?? identity(on), e.error);
        // one skipped because an earlier step failed was no attempt, unless what failed was its image's pull
        const pulled = step?.after.map((d) => draft.state.steps[d]).find((r) => r?.step.action === "pull" && r.status === "failed");
        const error = e.error.startsWith("skipped: ") ? pulled?.error : e.error;
        if (error && step?.service === service && step.action === "create" && step.slot !== undefined && !tasks.has(step.id)) {
          tasks.set(step.id, {
            id: containerId({ name: step.container ?? "", createdBy: step.id } as ContainerRecord),
            name: containerName(stack, service, step.slot),
            slot: step.slot,
            revision: step.revision,
            image: step.image,
            host: step.host,
            desired: "Shutdown",
            current: "Rejected",
            since: commit.at,
            error,
            ports: "",
            order: order++,
          });
        }
      }
      draft.apply(e);
    }
    draft.stamp(commit.version);
    const live = new Set<string>();
    for (const c of Object.values(draft.state.containers)) {
      if (c.service !== service) continue;
      const key = identity(c);
      live.add(key);
      let t = tasks.get(key);
      if (!t) {
        t = {
          ...{ id: containerId(c), name: containerName(stack, service, c.slot), slot: c.slot, revision: c.revision, image: c.image, host: c.host },
          ...{ desired: "Running", current: "", since: commit.at, error: "", ports: "", order: order++ },
        };
        tasks.set(key, t);
      }
      t.host = c.host;
      if (c.ports?.length) t.ports = c.ports.filter((p) => p.published !== undefined).map((p) => `*:${p.published}->${p.target}/${p.protocol}`).join(",");
      const desired = c.previousOf ? "Shutdown" : draft.state.services[service] ? "Running" : "Shutdown";
      if (c.state === "running") set(t, c.health === "unhealthy" ? "Running (unhealthy)" : "Running", desired, commit.at, c.health === "unhealthy" ? "unhealthy" : "");
      else if (c.state === "created") set(t, "Created", desired, commit.at);
      else if (c.exited) set(t, c.exited.code === 0 ? "Complete" : "Failed", desired, c.exited.at, c.exited.code === 0 ? "" : `exit code ${c.exited.code}`);
      else set(t, "Shutdown", c.previousOf ? "Shutdown" : desired, commit.at);
    }
    // gone from the stack: shut down (an exit or a refusal keeps its word), and why when its operation failed the service
    for (const [key, t] of tasks) {
      if (live.has(key)) continue;
      if (["Failed", "Complete", "Rejected"].includes(t.current)) t.desired = "Shutdown";
      else if (t.current !== "Shutdown" || t.desired !== "Shutdown") set(t, "Shutdown", "Shutdown", commit.at, t.error || stepErrors.get(key) || failedOp.get(stepOp.get(key) ?? "") || "");
    }
  }
  const bySlot = new Map<number, Array<TaskRow & { order: number }>>();
  for (const t of tasks.values()) bySlot.set(t.slot, [...(bySlot.get(t.slot) ?? []), t]);
  return [...bySlot.keys()]
    .sort((a, b) => a - b)
    .flatMap((slot) =>
      bySlot
        .get(slot)!
        // what the slot runs now first (a rollback brings back an older task), then the others, newest first
        .sort((a, b) => Number(b.desired === "Running") - Number(a.desired === "Running") || b.order - a.order)
        .slice(0, perSlot)
        .map(({ order: _order, ...t }) => t),
    );
}


