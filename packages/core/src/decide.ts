import { conflict, notFound } from "./errors.js";
import type { RevisionService, Source, StackEvent } from "./events.js";
import { configHash } from "./hash.js";
import { canonicalJson } from "./hash.js";
import { containerName, type Project, type ServiceSpec, type Step, type StepReport } from "./model.js";
import { evolve, type StackState } from "./state.js";

export interface HostInfo {
  id: string;
}

export type Command =
  | {
      type: "Up";
      stack: string;
      op: string;
      services: Record<string, ServiceSpec>;
      volumes?: Project["volumes"];
      secrets?: Project["secrets"];
      by: string;
      source: Source;
    }
  | { type: "Remove"; stack: string; op: string; by: string; source: Source }
  /** Plan the steps of the operation in progress, on the live hosts. */
  | { type: "Plan"; hosts: HostInfo[]; now: number }
  /** An agent's report on a step. */
  | { type: "Report"; report: StepReport }
  /** Re-drive steps planned and not reported within the timeout. */
  | { type: "Resend"; now: number; timeoutMs: number };

const opInProgress = (state: StackState) => state.op?.status === "running";

function refuseWhileBusy(state: StackState, what: string): void {
  const op = state.op;
  if (op && op.status === "running") {
    const doing = op.kind === "rm" ? "being removed" : "coming up";
    throw conflict(
      `cannot ${what} stack ${state.name}: it is ${doing} (operation ${op.id}); wait for it to settle, or remove the stack with 'corral rm --type stack ${state.name}'`,
    );
  }
}

function decideUp(command: Extract<Command, { type: "Up" }>, state: StackState): StackEvent[] {
  refuseWhileBusy(state, "up");
  const events: StackEvent[] = [];
  if (!state.exists) events.push({ type: "StackCreated", stack: command.stack, by: command.by });

  const services: Record<string, RevisionService> = { ...state.services };
  const changed: string[] = [];
  for (const [name, spec] of Object.entries(command.services)) {
    const hash = configHash(spec);
    const current = state.services[name];
    if (current && current.hash !== hash) {
      const running = Object.values(state.containers).some((c) => c.service === name && c.hash !== hash);
      if (running) {
        throw conflict(
          `service ${name} of stack ${command.stack} has changed; run 'corral up --upgrade' to upgrade it`,
        );
      }
    }
    if (!current || current.hash !== hash || current.spec.scale !== spec.scale) changed.push(name);
    services[name] = { spec, hash };
  }
  const volumes = { ...state.volumes, ...command.volumes };
  const secrets = { ...state.secrets, ...command.secrets };
  const topChanged = canonicalJson(volumes) !== canonicalJson(state.volumes) || canonicalJson(secrets) !== canonicalJson(state.secrets);
  const revision = changed.length > 0 || topChanged || !state.exists ? state.revision + 1 : state.revision;
  if (revision !== state.revision) {
    events.push({ type: "RevisionCommitted", revision, services, volumes, secrets, changed, by: command.by, source: command.source });
  }
  events.push({ type: "OperationStarted", op: command.op, kind: "up", revision, by: command.by, source: command.source });
  return events;
}

function decideRemove(command: Extract<Command, { type: "Remove" }>, state: StackState): StackEvent[] {
  if (!state.exists) throw notFound(`stack ${command.stack} not found`);
  if (state.op?.status === "running" && state.op.kind === "rm") return [];
  return [{ type: "OperationStarted", op: command.op, kind: "rm", revision: state.revision, by: command.by, source: command.source }];
}

/** Deterministic step id: stack, service, slot, action, revision and the operation that caused it. */
export const stepId = (stack: string, op: string, revision: number, service: string, action: string, slot?: number) =>
  `${stack}.${service}.${slot ?? 0}.${action}.r${revision}.${op}`;

function chooseHost(hosts: HostInfo[], load: Map<string, number>): string | undefined {
  let best: string | undefined;
  for (const h of [...hosts].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    if (best === undefined || (load.get(h.id) ?? 0) < (load.get(best) ?? 0)) best = h.id;
  }
  return best;
}

function planUp(state: StackState, opId: string, hosts: HostInfo[], now: number): StackEvent[] {
  const pulls: Step[] = [];
  const creates: Step[] = [];
  const starts: Step[] = [];
  const removals: Step[] = [];
  const load = new Map<string, number>();
  for (const c of Object.values(state.containers)) load.set(c.host, (load.get(c.host) ?? 0) + 1);
  const rev = state.revision;

  for (const [service, { spec, hash }] of Object.entries(state.services)) {
    const pulledOn = new Map<string, string>();
    for (let slot = 1; slot <= spec.scale; slot++) {
      const name = containerName(state.name, service, slot);
      const existing = state.containers[name];
      const base = { op: opId, stack: state.name, service, slot, revision: rev, image: spec.image, container: name };
      if (existing && existing.hash === hash) {
        if (existing.state !== "running") {
          starts.push({ ...base, id: stepId(state.name, opId, rev, service, "start", slot), action: "start", host: existing.host, after: [] });
        }
        continue;
      }
      if (existing) continue; // a changed service is upgraded, not re-created, by 'up --upgrade'
      const host = chooseHost(hosts, load);
      if (!host) return [{ type: "OperationFailed", op: opId, reason: "no host is available: start 'corral server' or 'corral agent' on a Docker host" }];
      load.set(host, (load.get(host) ?? 0) + 1);
      let pull = pulledOn.get(host);
      if (!pull) {
        pull = stepId(state.name, opId, rev, service, "pull");
        pulledOn.set(host, pull);
        pulls.push({ ...base, slot: undefined, container: undefined, id: pull, action: "pull", host, after: [] });
      }
      const create = stepId(state.name, opId, rev, service, "create", slot);
      const mounted = Object.fromEntries(
        (spec.volumes ?? []).flatMap((m) => (m.type === "volume" && m.source && state.volumes[m.source] ? [[m.source, state.volumes[m.source]!]] : [])),
      );
      creates.push({ ...base, id: create, action: "create", host, spec, hash, ...(Object.keys(mounted).length ? { volumes: mounted } : {}), after: [pull] });
      starts.push({ ...base, id: stepId(state.name, opId, rev, service, "start", slot), action: "start", host, after: [create] });
    }
    // scale down: slots above the scale go away
    for (const c of Object.values(state.containers)) {
      if (c.service !== service || c.slot <= spec.scale) continue;
      removals.push(...stopAndRemove(state, opId, c.service, c.slot, c.name, c.host, c.image));
    }
  }
  const steps = [...pulls, ...creates, ...starts, ...removals].map(dropUndefined);
  if (steps.length === 0) return [{ type: "OperationSucceeded", op: opId }];
  return steps.map((step) => ({ type: "StepPlanned", step, at: now }));
}

function stopAndRemove(state: StackState, opId: string, service: string, slot: number, name: string, host: string, image: string): Step[] {
  const base = { op: opId, stack: state.name, service, slot, revision: state.revision, image, container: name, host };
  const stop = stepId(state.name, opId, state.revision, service, "stop", slot);
  return [
    { ...base, id: stop, action: "stop", after: [] },
    { ...base, id: stepId(state.name, opId, state.revision, service, "remove", slot), action: "remove", after: [stop] },
  ];
}

function planRemove(state: StackState, opId: string): StackEvent[] {
  const targets = new Map<string, { service: string; slot: number; host: string; image: string }>();
  for (const c of Object.values(state.containers)) targets.set(c.name, c);
  for (const [name, pending] of Object.entries(state.inflight)) if (!targets.has(name)) targets.set(name, pending);
  const steps = [...targets.entries()].flatMap(([name, t]) => stopAndRemove(state, opId, t.service, t.slot, name, t.host, t.image));
  if (steps.length === 0) return [{ type: "OperationSucceeded", op: opId }, { type: "StackRemoved", op: opId }];
  return steps.map((step) => ({ type: "StepPlanned", step, at: 0 }));
}

function dropUndefined(step: Step): Step {
  return Object.fromEntries(Object.entries(step).filter(([, v]) => v !== undefined)) as Step;
}

function settle(state: StackState): StackEvent[] {
  const op = state.op;
  if (!op || op.status !== "running") return [];
  const records = Object.values(state.steps);
  if (records.length === 0 || records.some((r) => r.status === "planned")) return [];
  const failed = records.filter((r) => r.status === "failed");
  if (failed.length > 0) {
    const reason = Object.entries(state.errors)
      .map(([service, error]) => `${service}: ${error}`)
      .join("; ");
    return [{ type: "OperationFailed", op: op.id, reason }];
  }
  const done: StackEvent[] = [{ type: "OperationSucceeded", op: op.id }];
  if (op.kind === "rm") done.push({ type: "StackRemoved", op: op.id });
  return done;
}

/**
 * The decider: given the state of a stack and a command, the events that
 * follow. Pure; throws DomainError to refuse.
 */
export function decide(command: Command, state: StackState): StackEvent[] {
  switch (command.type) {
    case "Up":
      return decideUp(command, state);
    case "Remove":
      return decideRemove(command, state);
    case "Plan": {
      const op = state.op;
      if (!op || op.status !== "running" || op.planned) return [];
      const planned = op.kind === "up" ? planUp(state, op.id, command.hosts, command.now) : planRemove(state, op.id);
      return planned.map((e) => (e.type === "StepPlanned" ? { ...e, at: command.now } : e));
    }
    case "Report": {
      const { report } = command;
      const record = state.steps[report.stepId];
      if (!record || record.status !== "planned" || !opInProgress(state)) return [];
      const event: StackEvent = report.ok
        ? {
            type: "StepSucceeded",
            stepId: report.stepId,
            ...(report.containerId ? { containerId: report.containerId } : {}),
            ...(report.alreadyDone ? { alreadyDone: true } : {}),
            ...(report.ports ? { ports: report.ports } : {}),
            ...(report.ip ? { ip: report.ip } : {}),
          }
        : { type: "StepFailed", stepId: report.stepId, error: report.error ?? "failed" };
      return [event, ...settle(evolve(state, event))];
    }
    case "Resend": {
      if (!opInProgress(state)) return [];
      return Object.values(state.steps)
        .filter((r) => r.status === "planned" && command.now - r.plannedAt >= command.timeoutMs)
        .map((r) => ({ type: "StepResent", stepId: r.step.id, attempt: r.attempt + 1, at: command.now }));
    }
    default: {
      const never: never = command;
      return never;
    }
  }
}
