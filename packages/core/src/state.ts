import type { Commit, OperationKind, RevisionService, Source, StackEvent } from "./events.js";
import type { ServiceSlotPorts } from "./host-ports.js";
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
  /** A health gate failed (ServiceFailed): nothing more is sent; what was sent reports, and the operation ends. */
  halted?: string;
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
  /** Host ports of each slot, by service, for the ports written without one (see host-ports.ts); absent in states folded before there were any. */
  slotPorts?: Record<string, ServiceSlotPorts>;
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

/** The maps of a state that events change entry by entry. */
type MapKey = "steps" | "containers" | "inflight" | "errors" | "services" | "revisions" | "cron";
const fresh: MapKey[] = ["steps", "containers", "inflight", "errors", "services", "revisions", "cron"];

/**
 * Events folded into a state in place, on copies the draft owns: each map of
 * the state it started from is copied at most once however many events
 * follow, so folding n events is linear in n (a copy of the steps map per
 * StepPlanned made planning quadratic). The state it started from is never
 * changed; `state` is the state so far, and changes as events are applied.
 */
export class Draft {
  #s: StackState;
  #own = new Set<MapKey>();

  constructor(state: StackState) {
    this.#s = { ...state };
  }

  get state(): StackState {
    return this.#s;
  }

  /** A map of the state, copied on its first change. */
  #mut<K extends MapKey>(key: K): StackState[K] {
    if (!this.#own.has(key)) {
      this.#s[key] = { ...this.#s[key] };
      this.#own.add(key);
    }
    return this.#s[key];
  }

  /** Start over from a state built from scratch: its maps are the draft's own, except those it kept. */
  #reset(state: StackState, kept: MapKey[]): void {
    this.#s = state;
    this.#own = new Set(fresh.filter((k) => !kept.includes(k)));
  }

  applyAll(events: Iterable<StackEvent>): this {
    for (const e of events) this.apply(e);
    return this;
  }

  /** The version of the last commit folded in. */
  stamp(version: number): this {
    this.#s.version = version;
    return this;
  }

  apply(event: StackEvent): this {
    const s = this.#s;
    switch (event.type) {
      case "StackCreated":
        this.#reset(
          {
            ...initialState(s.name),
            version: s.version,
            exists: true,
            revision: s.revision,
            lastRevision: s.lastRevision,
            revisions: s.revisions,
            owner: event.owner ?? event.by,
            group: event.group ?? event.by,
          },
          ["revisions"],
        );
        break;
      case "RevisionCommitted":
        s.revision = event.revision;
        s.lastRevision = Math.max(s.lastRevision, event.revision);
        this.#mut("revisions")[event.revision] = {
          revision: event.revision,
          services: event.services,
          volumes: event.volumes ?? {},
          secrets: event.secrets ?? {},
          secretVersions: event.secretVersions ?? {},
          changed: event.changed,
          by: event.by,
          source: event.source,
          ...(event.at ? { at: event.at } : {}),
        };
        s.services = event.services;
        this.#own.delete("services"); // the event's own object: copied before any change
        s.volumes = event.volumes ?? {};
        s.secrets = event.secrets ?? {};
        s.secretVersions = event.secretVersions ?? {};
        break;
      case "OperationStarted":
        if (event.kind === "rollback" && s.upgrade) s.upgrade = { ...s.upgrade, status: "rolling-back" };
        Object.assign(this.#mut("inflight"), unreportedCreates(s));
        s.op = {
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
        };
        s.steps = {};
        s.errors = {};
        this.#own.add("steps").add("errors");
        break;
      case "ServiceScaled": {
        const current = s.services[event.service];
        if (current) this.#mut("services")[event.service] = { ...current, spec: { ...current.spec, scale: event.scale } };
        break;
      }
      case "SlotPortsAssigned": {
        const { [event.service]: _before, ...rest } = s.slotPorts ?? {};
        s.slotPorts = Object.keys(event.slots).length > 0 ? { ...rest, [event.service]: event.slots } : rest;
        break;
      }
      case "WavePlanned":
        if (s.op?.id === event.op) s.op = { ...s.op, planned: true, waves: [...s.op.waves, ...event.services] };
        break;
      case "StepPlanned":
        this.#mut("steps")[event.step.id] = { step: event.step, status: "planned", plannedAt: event.at, attempt: 1 };
        break;
      case "StepResent": {
        const record = s.steps[event.stepId];
        if (record) this.#mut("steps")[event.stepId] = { ...record, attempt: event.attempt, plannedAt: event.at };
        break;
      }
      case "StepSucceeded": {
        const record = s.steps[event.stepId];
        if (!record) break;
        this.#stepSucceeded(record, event);
        this.#mut("steps")[event.stepId] = { ...record, status: "succeeded" };
        break;
      }
      case "CronFired": {
        const c = s.cron[event.service] ?? { last: 0, count: 0, runs: [] };
        const runs = event.run && event.step ? [...c.runs, { run: event.run, at: event.at, stepId: event.step.id, container: event.step.container ?? "", host: event.step.host, status: "running" as const }].slice(-5) : c.runs;
        this.#mut("cron")[event.service] = { last: event.at, count: event.run ?? c.count, runs };
        break;
      }
      case "CronRunFinished": {
        const c = s.cron[event.service];
        if (!c) break;
        const runs = c.runs.map((r) =>
          r.run !== event.run
            ? r
            : { ...r, status: event.exitCode === 0 ? ("succeeded" as const) : ("failed" as const), finishedAt: event.at, ...(event.exitCode !== undefined ? { exitCode: event.exitCode } : {}), ...(event.error ? { error: event.error } : {}) },
        );
        this.#mut("cron")[event.service] = { ...c, runs };
        break;
      }
      case "ServiceFailed":
        if (!s.errors[event.service]) this.#mut("errors")[event.service] = event.reason;
        if (s.op?.status === "running" && !s.op.halted) s.op = { ...s.op, halted: event.reason };
        break;
      case "ContainerHealth": {
        const c = s.containers[event.container];
        if (!c) break;
        const healthySince = event.health === "healthy" ? (c.health === "healthy" ? c.healthySince : event.at) : undefined;
        const { healthySince: _old, ...rest } = c;
        this.#mut("containers")[event.container] = { ...rest, health: event.health, ...(healthySince !== undefined ? { healthySince } : {}) };
        break;
      }
      case "StepFailed": {
        const record = s.steps[event.stepId];
        if (!record) break;
        const service = record.step.service;
        if (!s.errors[service]) this.#mut("errors")[service] = event.error;
        this.#mut("steps")[event.stepId] = { ...record, status: "failed", error: event.error };
        break;
      }
      case "OperationSucceeded":
        if (s.op?.id === event.op) s.op = { ...s.op, status: "succeeded" };
        break;
      case "OperationFailed":
        if (s.op?.id === event.op) s.op = { ...s.op, status: "failed", reason: event.reason };
        break;
      case "StackRemoved": {
        // the last operation stays readable (its progress lines), and history stays; the stack is gone
        const { op, steps } = s;
        this.#reset(
          {
            ...initialState(s.name),
            version: s.version,
            revision: s.revision,
            lastRevision: s.lastRevision,
            revisions: s.revisions,
            steps,
            ...(op ? { op } : {}),
            ...(s.owner ? { owner: s.owner } : {}),
            ...(s.group ? { group: s.group } : {}),
          },
          this.#own.has("steps") ? ["revisions"] : ["revisions", "steps"],
        );
        break;
      }
      case "UpgradeStarted":
        s.upgrade = {
          op: event.op,
          from: event.from,
          to: event.to,
          services: event.services,
          status: "upgrading",
          confirm: event.confirm,
          ...(event.autoConfirmMs ? { autoConfirmMs: event.autoConfirmMs } : {}),
        };
        break;
      case "UpgradeFinished":
        if (s.upgrade) s.upgrade = { ...s.upgrade, status: "upgraded", ...(event.at ? { finishedAt: event.at } : {}) };
        break;
      case "UpgradePaused":
        if (s.upgrade) s.upgrade = { ...s.upgrade, status: "paused", reason: event.reason };
        break;
      case "UpgradeConfirmed":
        delete s.upgrade;
        break;
      case "RollbackFinished": {
        delete s.upgrade;
        const back = s.revisions[event.revision];
        if (!back) break;
        s.revision = event.revision;
        s.services = back.services;
        this.#own.delete("services");
        s.volumes = back.volumes;
        s.secrets = back.secrets;
        s.secretVersions = back.secretVersions;
        break;
      }
      default: {
        const never: never = event;
        return never;
      }
    }
    return this;
  }

  #stepSucceeded(record: StepRecord, event: Success): void {
    const { step } = record;
    const name = step.container;
    if (!name) return;
    const existing = this.#s.containers[name];
    switch (step.action) {
      case "create":
        this.#mut("containers")[name] = {
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
          const running: ContainerRecord = { ...existing, state: "running" };
          if (event.at !== undefined) running.startedAt = event.at;
          if (event.ports) running.ports = event.ports;
          if (event.ip) running.ip = event.ip;
          if (event.health) {
            running.health = event.health;
            running.healthySince = existing.health === "healthy" ? (existing.healthySince ?? event.at ?? 0) : (event.at ?? 0);
          }
          this.#mut("containers")[name] = running;
        }
        break;
      case "stop":
        if (existing) {
          const { health: _h, healthySince: _s, ...rest } = existing;
          this.#mut("containers")[name] = { ...rest, state: "stopped" };
        }
        break;
      case "remove":
        if (name in this.#s.containers) delete this.#mut("containers")[name];
        if (name in this.#s.inflight) delete this.#mut("inflight")[name];
        break;
      case "rename": {
        const to = step.renameTo ?? "";
        if (existing) {
          const containers = this.#mut("containers");
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

/** Fold one event into the state. Pure. (Folding many: `evolveAll`, linear in them.) */
export function evolve(state: StackState, event: StackEvent): StackState {
  return new Draft(state).apply(event).state;
}

/** Fold events into the state, in one pass. Pure. */
export function evolveAll(state: StackState, events: Iterable<StackEvent>): StackState {
  return new Draft(state).applyAll(events).state;
}

/** Fold commits into a state, tracking the version. */
export function fold(state: StackState, commits: Commit[]): StackState {
  const draft = new Draft(state);
  for (const commit of commits) {
    if (commit.version <= draft.state.version) continue;
    draft.applyAll(commit.events).stamp(commit.version);
  }
  return draft.state;
}

/** The project of the current revision (what `export` writes). */
export function currentProject(state: StackState): Project {
  return {
    services: Object.fromEntries(Object.entries(state.services).map(([n, s]) => [n, s.spec])),
    volumes: state.volumes,
    secrets: state.secrets,
  };
}
