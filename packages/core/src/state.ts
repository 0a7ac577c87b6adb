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
  /** The create step that made it: the container's identity for its whole life (its name moves aside in an upgrade). */
  createdBy?: string;
  /** When its start step succeeded (the monitor window of an upgrade counts from there). */
  startedAt?: number;
  /** For a container with a health check: its last verdict, and since when it has been healthy. */
  health?: "healthy" | "unhealthy";
  healthySince?: number;
  /** It stopped by itself while corral wanted it running (its host reported the exit): how, and when; a start clears it. */
  exited?: { code: number; at: number };
}

/** A container left on a host that was lost (disconnected) when its slot was re-placed elsewhere: removed once the host is back. */
export interface LostContainer {
  name: string;
  host: string;
  service: string;
  slot: number;
  revision: number;
  image: string;
  dockerId?: string;
  /** The step that made it (its io.corral.step label): its removal touches that container only. */
  createdBy?: string;
}

/** The key of a lost container: its engine name on its host. */
export const lostKey = (name: string, host: string) => `${name}@${host}`;

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
  /** Committed by a rollback: history's note ("rollback to 3", "rollback of app, db"). */
  rollback?: string;
}

/**
 * A rollback that brought an earlier revision back without committing one
 * of its own (the old containers run again): history lists it after the
 * revision it rolled back from.
 */
export interface RollbackRecord {
  from: number;
  to: number;
  /** The highest revision given out when it happened: history puts it after that one. */
  after: number;
  at?: number;
  by: string;
  source: Source;
}

/** How a stack's life ended: its removal. */
export interface Removal {
  at?: number;
  by?: string;
}

/**
 * An earlier life of a stack: what history keeps of a stack that was
 * removed and made again under its name. Its revisions are history only:
 * nothing deploys them again.
 */
export interface Life {
  generation: number;
  revisions: Record<number, Revision>;
  rollbacks: RollbackRecord[];
  removed?: Removal;
}

/**
 * A service's pending upgrade, Rancher style: its old containers are kept,
 * stopped, until it is confirmed or rolled back. Each service has its own:
 * one may sit `upgraded` while another is upgraded.
 */
export interface UpgradeState {
  /** The upgrade operation that made it. */
  op: string;
  /** The revision the service's old containers were made from, and the one its new ones are. */
  from: number;
  to: number;
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
  /** Who asked for it, and from where (history names them for a rollback). */
  by?: string;
  source?: Source;
  /** Services planned so far (in waves, following depends_on). */
  waves: string[];
  /** The services a scale, stop, start or restart acts on. */
  services?: string[];
  /** The containers an rm --type container removes (and re-creates in their slots). */
  containers?: string[];
  /** Services whose pending upgrade this operation finishes first (their old containers go). */
  confirms?: string[];
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
  /** Every revision of the stack's current (or last) life, for history and rollback to any of them. */
  revisions: Record<number, Revision>;
  /** Rollbacks of the current life that committed no revision (history lists them beside the revisions). */
  rollbacks: RollbackRecord[];
  /**
   * Which life of the stack this is: 1 for the first, one more each time a
   * stack of this name is made after a removal (0: never made). Revision
   * numbers start afresh in each life.
   */
  generation: number;
  /** The end of the last life, while the stack is removed and not made again. */
  removed?: Removal;
  /** Earlier lives, oldest first: their history stays readable (`history --all`), apart from the current life's. */
  earlier: Life[];
  /** Scheduled jobs (services labelled io.corral.cron.schedule), by service. */
  cron: Record<string, CronState>;
  /** The highest revision number given out (a rollback moves `revision` back, never this). */
  lastRevision: number;
  /** Pending upgrades, by service. */
  upgrades: Record<string, UpgradeState>;
  /**
   * Containers that a superseded operation had asked for and never heard
   * back about: they may exist on the host, so a removal must cover them.
   */
  inflight: Record<string, { service: string; slot: number; host: string; image: string }>;
  /** Containers left on lost hosts, by name@host (see LostContainer); absent: none. */
  lost?: Record<string, LostContainer>;
  /** Containers on a disconnected host that no host can take, by name: why they wait. */
  waiting?: Record<string, { host: string; reason: string }>;
  /** Host ports of each slot, by service, for the ports written without one (see host-ports.ts); absent in states folded before there were any. */
  slotPorts?: Record<string, ServiceSlotPorts>;
}

/**
 * The shape of StackState, for snapshots (a cache of folded state): a
 * snapshot of another shape is not read, the log is folded afresh. Raise it
 * with every change to what a fold produces.
 */
export const stateFormat = 6;

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
  upgrades: {},
  revisions: {},
  rollbacks: [],
  generation: 0,
  earlier: [],
  cron: {},
  lastRevision: 0,
});

type Success = Extract<StackEvent, { type: "StepSucceeded" }>;

/** The maps of a state that events change entry by entry. */
type MapKey = "steps" | "containers" | "inflight" | "errors" | "services" | "revisions" | "cron" | "upgrades";
const fresh: MapKey[] = ["steps", "containers", "inflight", "errors", "services", "revisions", "cron", "upgrades"];

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
      case "StackCreated": {
        // made again after a removal: a new life, numbered afresh from revision 1; the last one's history is kept apart
        const last = s.generation || (Object.keys(s.revisions).length > 0 ? 1 : 0); // a snapshot from before lives were counted: its one life
        const ended: Life[] = last > 0 ? [{ generation: last, revisions: s.revisions, rollbacks: s.rollbacks, ...(s.removed ? { removed: s.removed } : {}) }] : [];
        this.#reset(
          {
            ...initialState(s.name),
            version: s.version,
            exists: true,
            generation: last + 1,
            earlier: [...s.earlier, ...ended],
            owner: event.owner ?? event.by,
            group: event.group ?? event.by,
          },
          [],
        );
        break;
      }
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
          ...(event.rollback ? { rollback: event.rollback } : {}),
        };
        s.services = event.services;
        this.#own.delete("services"); // the event's own object: copied before any change
        s.volumes = event.volumes ?? {};
        s.secrets = event.secrets ?? {};
        s.secretVersions = event.secretVersions ?? {};
        break;
      case "OperationStarted":
        if (event.kind === "rollback") this.#setUpgrades(event.services, (u) => ({ ...u, status: "rolling-back" }));
        // pending upgrades this operation finishes first: their old containers go in its first steps
        this.#setUpgrades(event.confirms ?? [], (u) => (u.op === event.op ? u : undefined)); // (an upgrade of its own, just begun, stays)
        Object.assign(this.#mut("inflight"), unreportedCreates(s));
        s.op = {
          id: event.op,
          kind: event.kind,
          revision: event.revision,
          status: "running",
          planned: false,
          by: event.by,
          source: event.source,
          waves: [],
          ...(event.batchSize ? { batchSize: event.batchSize } : {}),
          ...(event.intervalMs !== undefined ? { intervalMs: event.intervalMs } : {}),
          ...(event.startFirst ? { startFirst: true } : {}),
          ...(event.pull ? { pull: true } : {}),
          ...(event.services ? { services: event.services } : {}),
          ...(event.containers ? { containers: event.containers } : {}),
          ...(event.confirms?.length ? { confirms: event.confirms } : {}),
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
      case "ContainerExited": {
        const c = s.containers[event.container];
        if (!c || c.host !== event.host) break;
        const { health: _h, healthySince: _s, ...rest } = c;
        this.#mut("containers")[event.container] = { ...rest, state: "stopped", exited: { code: event.exitCode, at: event.at } };
        break;
      }
      case "ContainerLost": {
        const c = s.containers[event.container];
        if (!c || c.host !== event.host) break;
        delete this.#mut("containers")[event.container];
        const lost: LostContainer = { name: c.name, host: c.host, service: c.service, slot: c.slot, revision: c.revision, image: c.image, ...(c.dockerId ? { dockerId: c.dockerId } : {}), ...(c.createdBy ? { createdBy: c.createdBy } : {}) };
        s.lost = { ...s.lost, [lostKey(c.name, c.host)]: lost };
        if (s.waiting?.[event.container]) {
          const { [event.container]: _w, ...rest } = s.waiting;
          s.waiting = rest;
        }
        break;
      }
      case "ContainerWaiting": {
        const { [event.container]: _w, ...rest } = s.waiting ?? {};
        s.waiting = event.reason ? { ...rest, [event.container]: { host: event.host, reason: event.reason } } : rest;
        break;
      }
      case "OperationSucceeded":
        if (s.op?.id === event.op) s.op = { ...s.op, status: "succeeded" };
        break;
      case "OperationFailed":
        if (s.op?.id === event.op) s.op = { ...s.op, status: "failed", reason: event.reason };
        break;
      case "StackRemoved": {
        // the last operation stays readable (its progress lines), and history stays (until a new life starts); the stack is gone
        const { op, steps } = s;
        const by = op?.id === event.op ? op.by : undefined;
        this.#reset(
          {
            ...initialState(s.name),
            version: s.version,
            revision: s.revision,
            lastRevision: s.lastRevision,
            revisions: s.revisions,
            rollbacks: s.rollbacks,
            generation: s.generation,
            earlier: s.earlier,
            removed: { ...(event.at ? { at: event.at } : {}), ...(by ? { by } : {}) },
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
        for (const service of event.services) {
          this.#mut("upgrades")[service] = {
            op: event.op,
            from: event.from,
            to: event.to,
            status: "upgrading",
            confirm: event.confirm,
            ...(event.autoConfirmMs ? { autoConfirmMs: event.autoConfirmMs } : {}),
          };
        }
        break;
      case "UpgradeFinished":
        this.#setUpgrades(this.#ofOp(event.op), (u) => ({ ...u, status: "upgraded", ...(event.at ? { finishedAt: event.at } : {}) }));
        break;
      case "UpgradePaused":
        this.#setUpgrades(this.#ofOp(event.op), (u) => ({ ...u, status: "paused", reason: event.reason }));
        break;
      case "UpgradeConfirmed":
        this.#setUpgrades(event.services, () => undefined);
        break;
      case "RollbackFinished": {
        this.#setUpgrades(event.services, () => undefined);
        const back = s.revisions[event.revision];
        if (!back) break;
        // (a rollback that made a revision of its own is in history as that revision)
        if (s.revision !== event.revision) s.rollbacks = [...s.rollbacks, rollbackRecord(s, event)];
        s.revision = event.revision;
        // a service's scale is not part of a revision (scaling is not an upgrade): it stays
        const services: StackState["services"] = {};
        for (const [name, r] of Object.entries(back.services)) {
          const scale = s.services[name]?.spec.scale;
          services[name] = scale === undefined || scale === r.spec.scale ? r : { ...r, spec: { ...r.spec, scale } };
        }
        s.services = services;
        this.#own.add("services");
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

  /** The services whose pending upgrade an operation made. */
  #ofOp(op: string): string[] {
    return Object.entries(this.#s.upgrades).flatMap(([service, u]) => (u.op === op ? [service] : []));
  }

  /** Change the pending upgrades of these services (all of them when undefined); undefined removes one. */
  #setUpgrades(services: string[] | undefined, change: (u: UpgradeState) => UpgradeState | undefined): void {
    const names = services ?? Object.keys(this.#s.upgrades);
    if (!names.some((n) => n in this.#s.upgrades)) return;
    const upgrades = this.#mut("upgrades");
    for (const name of names) {
      const u = upgrades[name];
      if (!u) continue;
      const next = change(u);
      if (next) upgrades[name] = next;
      else delete upgrades[name];
    }
  }

  #stepSucceeded(record: StepRecord, event: Success): void {
    const { step } = record;
    const name = step.container;
    if (!name) return;
    // a step acts on the container of that name on its own host: another host's of the same name (a lost one's successor) is not touched
    const found = this.#s.containers[name];
    const existing = found && found.host === step.host ? found : undefined;
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
          createdBy: step.id,
          ...(event.containerId ? { dockerId: event.containerId } : {}),
        };
        break;
      case "start":
        if (existing) {
          const { exited: _e, ...before } = existing;
          const running: ContainerRecord = { ...before, state: "running" };
          // a container that never ran, made anew by its start (a dockerd restart cut its first start short)
          if (event.containerId) running.dockerId = event.containerId;
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
        if (existing) delete this.#mut("containers")[name];
        if (this.#s.lost?.[lostKey(name, step.host)]) {
          const { [lostKey(name, step.host)]: _l, ...rest } = this.#s.lost;
          this.#s.lost = rest;
        }
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

/** History's entry for a rollback that moved the revision back. */
function rollbackRecord(s: StackState, event: Extract<StackEvent, { type: "RollbackFinished" }>): RollbackRecord {
  const op = s.op?.id === event.op ? s.op : undefined;
  return { from: s.revision, to: event.revision, after: s.lastRevision, ...(event.at ? { at: event.at } : {}), by: op?.by ?? "corral", source: op?.source ?? "api" };
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
