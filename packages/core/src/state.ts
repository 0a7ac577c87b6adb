import type { Commit, OperationKind, RevisionService, Source, StackEvent } from "./events.js";
import type { PortSpec, Project, Step } from "./model.js";

export type ContainerState = "created" | "running" | "stopped";

export interface ContainerRecord {
  name: string;
  service: string;
  slot: number;
  revision: number;
  host: string;
  image: string;
  hash: string;
  dockerId?: string;
  state: ContainerState;
  /** Published ports and address, as the engine reported them at start. */
  ports?: PortSpec[];
  ip?: string;
  /** An old container kept, stopped, while an upgrade awaits confirm or rollback: the name it had. */
  previousOf?: string;
  /** When its start step succeeded (the monitor window of an upgrade counts from there). */
  startedAt?: number;
  /** For a container with a health check: its last verdict, and since when it has been healthy. */
  health?: "healthy" | "unhealthy";
  healthySince?: number;
}

/** A revision as history keeps it. */
export interface Revision {
  revision: number;
  services: Record<string, RevisionService>;
  volumes: Project["volumes"];
  secrets: Project["secrets"];
  secretVersions: Record<string, number>;
  changed: string[];
  by: string;
  source: Source;
  at?: number;
}

export interface UpgradeState {
  op: string;
  from: number;
  to: number;
  services: string[];
  status: "upgrading" | "upgraded" | "paused" | "rolling-back";
  confirm: boolean;
  reason?: string;
  /** Confirm by itself once the new containers have run this long (up --auto-confirm). */
  autoConfirmMs?: number;
  finishedAt?: number;
}

export interface StepRecord {
  step: Step;
  status: "planned" | "succeeded" | "failed";
  plannedAt: number;
  attempt: number;
  error?: string;
}

export interface Operation {
  id: string;
  kind: OperationKind;
  revision: number;
  status: "running" | "succeeded" | "failed";
  planned: boolean;
  /** Slots upgraded at once (up --batch-size), over the services' own parallelism. */
  batchSize?: number;
  /** Pause between batches (up --interval), over the services' own delay. */
  intervalMs?: number;
  /** Start the new container before stopping the old (up --start-first). */
  startFirst?: boolean;
  /** Pull images even when present (up --pull). */
  pull?: boolean;
  /** Services planned so far (in waves, following depends_on). */
  waves: string[];
  /** The services a scale, stop, start or restart acts on. */
  services?: string[];
  /** The containers an rm --type container removes (and re-creates in their slots). */
  containers?: string[];
  reason?: string;
}

/** One run of a scheduled job. */
export interface CronRun {
  run: number;
  at: number;
  stepId: string;
  container: string;
  host: string;
  status: "running" | "succeeded" | "failed";
  exitCode?: number;
  error?: string;
  finishedAt?: number;
}

export interface CronState {
  /** The last fire time handled. */
  last: number;
  /** How many runs so far (the next run's number is one more). */
  count: number;
  /** The latest runs, newest last. */
  runs: CronRun[];
}

export interface StackState {
  name: string;
  /** Who created the stack, and the group it belongs to (the creator's primary group). */
  owner?: string;
  group?: string;
  /** Version of the last commit folded in (0: nothing yet). */
  version: number;
  exists: boolean;
  revision: number;
  /** Desired services at the current revision. */
  services: Record<string, RevisionService>;
  volumes: Project["volumes"];
  secrets: Project["secrets"];
  secretVersions: Record<string, number>;
  op?: Operation;
  /** Steps of the current operation, in planning order. */
  steps: Record<string, StepRecord>;
  containers: Record<string, ContainerRecord>;
  /** The first error of the last operation, per service. */
  errors: Record<string, string>;
  /** Every revision, for history and rollback to any of them. */
  revisions: Record<number, Revision>;
  /** Scheduled jobs (services labelled io.corral.cron.schedule), by service. */
  cron: Record<string, CronState>;
  /** The highest revision number given out (a rollback moves `revision` back, never this). */
  lastRevision: number;
  upgrade?: UpgradeState;
  /**
   * Containers that a superseded operation had asked for and never heard
   * back about: they may exist on the host, so a removal must cover them.
   */
  inflight: Record<string, { service: string; slot: number; host: string; image: string }>;
}

export const initialState = (name: string): StackState => ({
  name,
  version: 0,
  exists: false,
  revision: 0,
  services: {},
  volumes: {},
  secrets: {},
  secretVersions: {},
  steps: {},
  containers: {},
  errors: {},
  inflight: {},
  revisions: {},
  cron: {},
  lastRevision: 0,
});

type Success = Extract<StackEvent, { type: "StepSucceeded" }>;

function applyStepSuccess(state: StackState, record: StepRecord, event: Success): StackState {
  const { step } = record;
  const containers = { ...state.containers };
  const name = step.container;
  if (name) {
    const existing = containers[name];
    switch (step.action) {
      case "create":
        containers[name] = {
          name,
          service: step.service,
          slot: step.slot ?? 1,
          revision: step.revision,
          host: step.host,
          image: step.image,
          hash: step.hash ?? "",
          state: "created",
          ...(event.containerId ? { dockerId: event.containerId } : {}),
        };
        break;
      case "start":
        if (existing) {
          containers[name] = {
            ...existing,
            state: "running",
            ...(event.at !== undefined ? { startedAt: event.at } : {}),
            ...(event.ports ? { ports: event.ports } : {}),
            ...(event.ip ? { ip: event.ip } : {}),
            ...(event.health ? { health: event.health, healthySince: existing.health === "healthy" ? (existing.healthySince ?? event.at ?? 0) : (event.at ?? 0) } : {}),
          };
        }
        break;
      case "stop":
        if (existing) {
          const { health: _h, healthySince: _s, ...rest } = existing;
          containers[name] = { ...rest, state: "stopped" };
        }
        break;
      case "remove": {
        delete containers[name];
        const { [name]: _gone, ...inflight } = state.inflight;
        return { ...state, containers, inflight };
      }
      case "rename": {
        const to = step.renameTo ?? "";
        if (existing) {
          delete containers[name];
          containers[to] = { ...existing, name: to, ...(existing.previousOf ? {} : { previousOf: name }) };
          if (existing.previousOf === to) delete containers[to]!.previousOf; // renamed back by a rollback
        }
        break;
      }
      case "pull":
        break;
    }
  }
  return { ...state, containers };
}

function unreportedCreates(state: StackState): StackState["inflight"] {
  const out: StackState["inflight"] = {};
  for (const { step, status } of Object.values(state.steps)) {
    if (step.action === "create" && status === "planned" && step.container) {
      out[step.container] = { service: step.service, slot: step.slot ?? 1, host: step.host, image: step.image };
    }
  }
  return out;
}

/** Fold one event into the state. Pure. */
export function evolve(state: StackState, event: StackEvent): StackState {
  switch (event.type) {
    case "StackCreated":
      return {
        ...initialState(state.name),
        version: state.version,
        exists: true,
        revision: state.revision,
        lastRevision: state.lastRevision,
        revisions: state.revisions,
        owner: event.owner ?? event.by,
        group: event.group ?? event.by,
      };
    case "RevisionCommitted":
      return {
        ...state,
        revision: event.revision,
        lastRevision: Math.max(state.lastRevision, event.revision),
        revisions: {
          ...state.revisions,
          [event.revision]: {
            revision: event.revision,
            services: event.services,
            volumes: event.volumes ?? {},
            secrets: event.secrets ?? {},
            secretVersions: event.secretVersions ?? {},
            changed: event.changed,
            by: event.by,
            source: event.source,
            ...(event.at ? { at: event.at } : {}),
          },
        },
        services: event.services,
        volumes: event.volumes ?? {},
        secrets: event.secrets ?? {},
        secretVersions: event.secretVersions ?? {},
      };
    case "OperationStarted":
      if (event.kind === "rollback" && state.upgrade) state = { ...state, upgrade: { ...state.upgrade, status: "rolling-back" } };
      return {
        ...state,
        inflight: { ...state.inflight, ...unreportedCreates(state) },
        op: {
          id: event.op,
          kind: event.kind,
          revision: event.revision,
          status: "running",
          planned: false,
          waves: [],
          ...(event.batchSize ? { batchSize: event.batchSize } : {}),
          ...(event.intervalMs !== undefined ? { intervalMs: event.intervalMs } : {}),
          ...(event.startFirst ? { startFirst: true } : {}),
          ...(event.pull ? { pull: true } : {}),
          ...(event.services ? { services: event.services } : {}),
          ...(event.containers ? { containers: event.containers } : {}),
        },
        steps: {},
        errors: {},
      };
    case "ServiceScaled": {
      const current = state.services[event.service];
      if (!current) return state;
      return { ...state, services: { ...state.services, [event.service]: { ...current, spec: { ...current.spec, scale: event.scale } } } };
    }
    case "WavePlanned":
      if (state.op?.id !== event.op) return state;
      return { ...state, op: { ...state.op, planned: true, waves: [...state.op.waves, ...event.services] } };
    case "StepPlanned": {
      const steps = { ...state.steps, [event.step.id]: { step: event.step, status: "planned" as const, plannedAt: event.at, attempt: 1 } };
      return { ...state, steps };
    }
    case "StepResent": {
      const record = state.steps[event.stepId];
      if (!record) return state;
      return { ...state, steps: { ...state.steps, [event.stepId]: { ...record, attempt: event.attempt, plannedAt: event.at } } };
    }
    case "StepSucceeded": {
      const record = state.steps[event.stepId];
      if (!record) return state;
      const next = applyStepSuccess(state, record, event);
      return { ...next, steps: { ...state.steps, [event.stepId]: { ...record, status: "succeeded" } } };
    }
    case "CronFired": {
      const c = state.cron[event.service] ?? { last: 0, count: 0, runs: [] };
      const runs = event.run && event.step ? [...c.runs, { run: event.run, at: event.at, stepId: event.step.id, container: event.step.container ?? "", host: event.step.host, status: "running" as const }].slice(-5) : c.runs;
      return { ...state, cron: { ...state.cron, [event.service]: { last: event.at, count: event.run ?? c.count, runs } } };
    }
    case "CronRunFinished": {
      const c = state.cron[event.service];
      if (!c) return state;
      const runs = c.runs.map((r) =>
        r.run !== event.run
          ? r
          : { ...r, status: event.exitCode === 0 ? ("succeeded" as const) : ("failed" as const), finishedAt: event.at, ...(event.exitCode !== undefined ? { exitCode: event.exitCode } : {}), ...(event.error ? { error: event.error } : {}) },
      );
      return { ...state, cron: { ...state.cron, [event.service]: { ...c, runs } } };
    }
    case "ServiceFailed":
      return state.errors[event.service] ? state : { ...state, errors: { ...state.errors, [event.service]: event.reason } };
    case "ContainerHealth": {
      const c = state.containers[event.container];
      if (!c) return state;
      const healthySince = event.health === "healthy" ? (c.health === "healthy" ? c.healthySince : event.at) : undefined;
      const { healthySince: _old, ...rest } = c;
      return { ...state, containers: { ...state.containers, [event.container]: { ...rest, health: event.health, ...(healthySince !== undefined ? { healthySince } : {}) } } };
    }
    case "StepFailed": {
      const record = state.steps[event.stepId];
      if (!record) return state;
      const service = record.step.service;
      const errors = state.errors[service] ? state.errors : { ...state.errors, [service]: event.error };
      return { ...state, errors, steps: { ...state.steps, [event.stepId]: { ...record, status: "failed", error: event.error } } };
    }
    case "OperationSucceeded":
      return state.op?.id === event.op ? { ...state, op: { ...state.op, status: "succeeded" } } : state;
    case "OperationFailed":
      return state.op?.id === event.op ? { ...state, op: { ...state.op, status: "failed", reason: event.reason } } : state;
    case "StackRemoved": {
      // the last operation stays readable (its progress lines), and history stays; the stack is gone
      const { op, steps } = state;
      return {
        ...initialState(state.name),
        version: state.version,
        revision: state.revision,
        lastRevision: state.lastRevision,
        revisions: state.revisions,
        steps,
        ...(op ? { op } : {}),
        ...(state.owner ? { owner: state.owner } : {}),
        ...(state.group ? { group: state.group } : {}),
      };
    }
    case "UpgradeStarted":
      return {
        ...state,
        upgrade: {
          op: event.op,
          from: event.from,
          to: event.to,
          services: event.services,
          status: "upgrading",
          confirm: event.confirm,
          ...(event.autoConfirmMs ? { autoConfirmMs: event.autoConfirmMs } : {}),
        },
      };
    case "UpgradeFinished":
      return state.upgrade ? { ...state, upgrade: { ...state.upgrade, status: "upgraded", ...(event.at ? { finishedAt: event.at } : {}) } } : state;
    case "UpgradePaused":
      return state.upgrade ? { ...state, upgrade: { ...state.upgrade, status: "paused", reason: event.reason } } : state;
    case "UpgradeConfirmed": {
      const { upgrade: _done, ...rest } = state;
      return rest;
    }
    case "RollbackFinished": {
      const { upgrade: _done, ...rest } = state;
      const back = state.revisions[event.revision];
      if (!back) return rest;
      return { ...rest, revision: event.revision, services: back.services, volumes: back.volumes, secrets: back.secrets, secretVersions: back.secretVersions };
    }
    default: {
      const never: never = event;
      return never;
    }
  }
}

/** Fold commits into a state, tracking the version. */
export function fold(state: StackState, commits: Commit[]): StackState {
  let s = state;
  for (const commit of commits) {
    if (commit.version <= s.version) continue;
    for (const event of commit.events) s = evolve(s, event);
    s = { ...s, version: commit.version };
  }
  return s;
}

/** The project of the current revision (what `export` writes). */
export function currentProject(state: StackState): Project {
  return {
    services: Object.fromEntries(Object.entries(state.services).map(([n, s]) => [n, s.spec])),
    volumes: state.volumes,
    secrets: state.secrets,
  };
}
