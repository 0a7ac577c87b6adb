import type { StackEvent } from "../events.js";
import type { Step } from "../model.js";
import type { Operation, StackState } from "../state.js";
import type { CommandOf } from "./commands.js";
import { refuseWhileBusy, refuseWhileUpgradePending, scopeOf } from "./shared.js";
import { byServiceSlot, containerStep, planEvents } from "./steps.js";

// Stop, start and restart: steps on the containers that are there, none made anew.

/** `corral stop|start|restart STACK[/SERVICE]`: an operation on what runs (restart in batches, with an interval). */
export function decideLifecycle(command: CommandOf<"Lifecycle">, state: StackState): StackEvent[] {
  const services = scopeOf(state, command.services);
  refuseWhileBusy(state, command.action);
  refuseWhileUpgradePending(state, command.action, services);
  return [
    {
      type: "OperationStarted",
      op: command.op,
      kind: command.action,
      revision: state.revision,
      by: command.by,
      source: command.source,
      services,
      ...(command.batchSize ? { batchSize: command.batchSize } : {}),
      ...(command.intervalMs !== undefined ? { intervalMs: command.intervalMs } : {}),
    },
  ];
}

/** Stop, start or restart the containers of the operation's services (restart: stop then start, batch after batch). */
export function planLifecycle(state: StackState, op: Operation, now: number): StackEvent[] {
  const scope = new Set(op.services ?? Object.keys(state.services));
  const containers = Object.values(state.containers)
    .filter((c) => scope.has(c.service) && !c.previousOf)
    .sort(byServiceSlot);
  const steps: Step[] = [];
  if (op.kind === "stop") for (const c of containers.filter((x) => x.state === "running")) steps.push(containerStep(state, op.id, c, "stop", []));
  // (a start of corral's own names its containers: those its restart policy wants back)
  const named = op.containers ? new Set(op.containers) : undefined;
  if (op.kind === "start") for (const c of containers.filter((x) => x.state !== "running" && (!named || named.has(x.name)))) steps.push(containerStep(state, op.id, c, "start", []));
  if (op.kind === "restart") {
    const size = Math.max(1, op.batchSize ?? 1);
    let previous: string[] = [];
    const running = containers.filter((x) => x.state === "running");
    for (let i = 0; i < running.length; i += size) {
      const batch: string[] = [];
      // the first stop of a batch waits for every start of the batch before (and the interval), the others
      // wait for that stop: a batch's steps name its size in dependencies, not its size squared
      let gate: string | undefined;
      for (const c of running.slice(i, i + size)) {
        const lead = !gate && previous.length > 0 && op.intervalMs ? { delayMs: op.intervalMs } : {};
        const stop = containerStep(state, op.id, c, "stop", gate ? [gate] : previous, lead);
        gate ??= previous.length > 0 ? stop.id : undefined;
        const start = containerStep(state, op.id, c, "start", [stop.id]);
        steps.push(stop, start);
        batch.push(start.id);
      }
      previous = batch;
    }
  }
  return planEvents(state, op.id, [...scope], steps, now);
}
