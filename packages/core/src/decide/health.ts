import type { StackEvent } from "../events.js";
import { displayName } from "../names.js";
import { evolve, type ContainerRecord, type StackState } from "../state.js";
import { advance } from "./advance.js";
import type { CommandOf } from "./commands.js";
import { monitorMs } from "./upgrade.js";

// What the hosts see of containers between steps: a health check's verdict, a process that ended.

/** A container's health check changed its verdict. */
export function decideHealth(command: CommandOf<"Health">, state: StackState): StackEvent[] {
  const c = state.containers[command.container];
  // a verdict about a container the log does not know, or an earlier one of the same name, changes nothing
  if (!c || c.host !== command.host || c.dockerId !== command.dockerId || c.state !== "running" || c.health === command.health) return [];
  const verdict: StackEvent = { type: "ContainerHealth", container: command.container, health: command.health, at: command.now };
  // only a turn to unhealthy fails an upgrade inside its monitor window; turning healthy is what it waits for
  return [verdict, ...(command.health === "unhealthy" ? monitorFailure(evolve(state, verdict), c, command.now) : [])];
}

/** A container's process ended on its host, while the log has it running and corral is not at it. */
export function decideExited(command: CommandOf<"Exited">, state: StackState): StackEvent[] {
  const c = state.containers[command.container];
  if (!c || c.host !== command.host || c.dockerId !== command.dockerId || c.state !== "running") return [];
  if (stepInFlight(state, c)) return [];
  const exited: StackEvent = { type: "ContainerExited", container: c.name, host: c.host, exitCode: command.exitCode, at: command.now };
  return [exited, ...monitorFailure(evolve(state, exited), c, command.now, `exited with code ${command.exitCode}`)];
}

/** A step of the operation in progress, not yet reported, that acts on this container on its host: corral is at it. */
function stepInFlight(state: StackState, c: ContainerRecord): boolean {
  if (state.op?.status !== "running") return false;
  return Object.values(state.steps).some((r) => r.status === "planned" && r.step.host === c.host && (r.step.container === c.name || r.step.renameTo === c.name));
}

/**
 * A new container of a running upgrade that turns unhealthy inside its
 * monitor window fails the upgrade, as a failed health gate does: its service
 * gets the reason, the steps not yet sent are skipped, and the upgrade ends
 * with its failure action once what is in flight has reported.
 */
function monitorFailure(state: StackState, c: ContainerRecord, now: number, what = "turned unhealthy"): StackEvent[] {
  const u = state.upgrades[c.service];
  const op = state.op;
  if (!u || op?.kind !== "upgrade" || op.status !== "running" || u.op !== op.id || c.previousOf || c.revision !== u.to) return [];
  const window = monitorMs(state, c.service);
  if (c.startedAt === undefined || now - c.startedAt > window) return [];
  const reason = `container ${displayName(c.name)} ${what} ${Math.round((now - c.startedAt) / 1000)} s after it started, inside the monitor window of ${Math.round(window / 1000)} s`;
  const failed: StackEvent = { type: "ServiceFailed", service: c.service, reason };
  return [failed, ...advance(evolve(state, failed), [], now)]; // halted: advance skips what was not sent
}
