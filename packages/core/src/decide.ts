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
      /** Latest versions of the secrets the project mounts (store name → version). */
      secretVersions?: Record<string, number>;
      by: string;
      source: Source;
    }
  | { type: "Remove"; stack: string; op: string; by: string; source: Source }
  /** Plan the steps of the operation in progress, on the live hosts. */
  | { type: "Plan"; hosts: HostInfo[]; now: number }
  /** An agent's report on a step; the next wave is planned on `hosts`. */
  | { type: "Report"; report: StepReport; hosts: HostInfo[]; now: number }
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
    const hash = configHash(spec, command.secretVersions, { ...state.secrets, ...command.secrets });
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
  const secretVersions = { ...state.secretVersions, ...command.secretVersions };
  const topChanged =
    canonicalJson(volumes) !== canonicalJson(state.volumes) ||
    canonicalJson(secrets) !== canonicalJson(state.secrets) ||
    canonicalJson(secretVersions) !== canonicalJson(state.secretVersions);
  const revision = changed.length > 0 || topChanged || !state.exists ? state.revision + 1 : state.revision;
  if (revision !== state.revision) {
    events.push({ type: "RevisionCommitted", revision, services, volumes, secrets, secretVersions, changed, by: command.by, source: command.source });
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

/** Does a host satisfy a service's placement constraints (node.hostname / node.id, == or !=)? */
export function satisfies(host: HostInfo, constraints: string[] = []): boolean {
  return constraints.every((c) => {
    const m = /^node\.(hostname|id)\s*(==|!=)\s*(\S+)$/.exec(c);
    if (!m) return false;
    return m[2] === "==" ? host.id === m[3] : host.id !== m[3];
  });
}

function chooseHost(hosts: HostInfo[], load: Map<string, number>, constraints?: string[]): string | undefined {
  let best: string | undefined;
  for (const h of [...hosts].filter((x) => satisfies(x, constraints)).sort((a, b) => (a.id < b.id ? -1 : 1))) {
    if (best === undefined || (load.get(h.id) ?? 0) < (load.get(best) ?? 0)) best = h.id;
  }
  return best;
}

/**
 * Services of the current operation whose dependencies (depends_on) have come
 * up; `blocked` are those waiting on a dependency that failed.
 */
function readyServices(state: StackState): { ready: string[]; blocked: Array<[string, string]> } {
  const op = state.op!;
  const done = new Set(op.waves);
  const settled = (service: string) => {
    if (!done.has(service)) return "waiting";
    const records = Object.values(state.steps).filter((r) => r.step.service === service);
    if (records.some((r) => r.status === "failed")) return "failed";
    return records.every((r) => r.status === "succeeded") ? "up" : "waiting";
  };
  const ready: string[] = [];
  const blocked: Array<[string, string]> = [];
  for (const [name, { spec }] of Object.entries(state.services)) {
    if (done.has(name)) continue;
    const deps = Object.entries(spec.depends_on ?? {}).filter(([dep, d]) => state.services[dep] || d.required);
    const states = deps.map(([dep]) => [dep, state.services[dep] ? settled(dep) : "failed"] as const);
    const failed = states.find(([, st]) => st === "failed");
    if (failed) blocked.push([name, failed[0]]);
    else if (states.every(([, st]) => st === "up")) ready.push(name);
  }
  return { ready, blocked };
}

function planUp(state: StackState, opId: string, hosts: HostInfo[], now: number): StackEvent[] {
  const { ready } = readyServices(state);
  if (ready.length === 0) return [];
  const wave: StackEvent = { type: "WavePlanned", op: opId, services: ready };
  const steps = planServices(state, opId, hosts, ready);
  if (!Array.isArray(steps)) return [steps];
  return [wave, ...steps.map((step): StackEvent => ({ type: "StepPlanned", step, at: now }))];
}

function planServices(state: StackState, opId: string, hosts: HostInfo[], services: string[]): Step[] | StackEvent {
  const pulls: Step[] = [];
  const creates: Step[] = [];
  const starts: Step[] = [];
  const removals: Step[] = [];
  const load = new Map<string, number>();
  for (const c of Object.values(state.containers)) load.set(c.host, (load.get(c.host) ?? 0) + 1);
  const rev = state.revision;

  for (const service of services) {
    const { spec, hash } = state.services[service]!;
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
      const constraints = spec.deploy?.placement?.constraints;
      const host = chooseHost(hosts, load, constraints);
      if (!host) {
        const reason = hosts.length === 0 || !constraints?.length
          ? "no host is available: start 'corral server' or 'corral agent' on a Docker host"
          : `${service}: no live host satisfies the placement constraints ${constraints.join(", ")} (hosts: ${hosts.map((h) => h.id).join(", ")})`;
        return { type: "OperationFailed", op: opId, reason };
      }
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
      const secretMounts = (spec.secrets ?? []).map((m) => {
        const name = state.secrets[m.source]?.name ?? m.source;
        return { name, version: state.secretVersions[name] ?? 0, target: m.target ?? m.source, uid: m.uid ?? "0", gid: m.gid ?? "0", mode: m.mode ?? 0o444 };
      });
      creates.push({
        ...base,
        id: create,
        action: "create",
        host,
        spec,
        hash,
        ...(Object.keys(mounted).length ? { volumes: mounted } : {}),
        ...(secretMounts.length ? { secrets: secretMounts } : {}),
        after: [pull],
      });
      starts.push({ ...base, id: stepId(state.name, opId, rev, service, "start", slot), action: "start", host, after: [create] });
    }
    // scale down: slots above the scale go away
    for (const c of Object.values(state.containers)) {
      if (c.service !== service || c.slot <= spec.scale) continue;
      removals.push(...stopAndRemove(state, opId, c.service, c.slot, c.name, c.host, c.image));
    }
  }
  return [...pulls, ...creates, ...starts, ...removals].map(dropUndefined);
}

function stopAndRemove(state: StackState, opId: string, service: string, slot: number, name: string, host: string, image: string): Step[] {
  const base = { op: opId, stack: state.name, service, slot, revision: state.revision, image, container: name, host };
  const stop = stepId(state.name, opId, state.revision, service, "stop", slot);
  return [
    { ...base, id: stop, action: "stop", after: [] },
    { ...base, id: stepId(state.name, opId, state.revision, service, "remove", slot), action: "remove", after: [stop] },
  ];
}

function planRemove(state: StackState, opId: string, now: number): StackEvent[] {
  const targets = new Map<string, { service: string; slot: number; host: string; image: string }>();
  for (const c of Object.values(state.containers)) targets.set(c.name, c);
  for (const [name, pending] of Object.entries(state.inflight)) if (!targets.has(name)) targets.set(name, pending);
  const steps = [...targets.entries()].flatMap(([name, t]) => stopAndRemove(state, opId, t.service, t.slot, name, t.host, t.image));
  return [{ type: "WavePlanned", op: opId, services: Object.keys(state.services) }, ...steps.map((step): StackEvent => ({ type: "StepPlanned", step, at: now }))];
}

function dropUndefined(step: Step): Step {
  return Object.fromEntries(Object.entries(step).filter(([, v]) => v !== undefined)) as Step;
}

/** The operation's end, once nothing is in flight and nothing more can be planned. */
function settle(state: StackState): StackEvent[] {
  const op = state.op;
  if (!op || op.status !== "running" || !op.planned) return [];
  const records = Object.values(state.steps);
  if (records.some((r) => r.status === "planned")) return [];
  const reasons = Object.entries(state.errors).map(([service, error]) => `${service}: ${error}`);
  if (op.kind === "up") {
    const { ready, blocked } = readyServices(state);
    if (ready.length > 0) return []; // the next wave comes first
    reasons.push(...blocked.map(([service, dep]) => `${service}: not started: its dependency ${dep} did not come up`));
  }
  if (reasons.length > 0) return [{ type: "OperationFailed", op: op.id, reason: reasons.join("; ") }];
  const done: StackEvent[] = [{ type: "OperationSucceeded", op: op.id }];
  if (op.kind === "rm") done.push({ type: "StackRemoved", op: op.id });
  return done;
}

/** Plan what can be planned now, then settle if nothing is left. */
function advance(state: StackState, hosts: HostInfo[], now: number): StackEvent[] {
  const op = state.op;
  if (!op || op.status !== "running") return [];
  const planned: StackEvent[] = [];
  let after = op.planned ? state : evolve(state, { type: "WavePlanned", op: op.id, services: [] });
  if (op.kind === "rm" && !op.planned) planned.push(...planRemove(state, op.id, now));
  // waves with nothing to do (services already running) are passed through at once
  for (let wave = op.kind === "up" ? planUp(after, op.id, hosts, now) : []; wave.length > 0; ) {
    planned.push(...wave);
    if (wave.some((e) => e.type === "OperationFailed")) return planned;
    after = wave.reduce(evolve, after);
    wave = wave.some((e) => e.type === "StepPlanned") ? [] : planUp(after, op.id, hosts, now);
  }
  after = op.kind === "rm" ? planned.reduce(evolve, after) : after;
  return [...planned, ...settle(after)];
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
      return advance(state, command.hosts, command.now);
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
      return [event, ...advance(evolve(state, event), command.hosts, command.now)];
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
