import type { OperationKind, RevisionService, Source } from "../events.js";
import type { ServiceSlotPorts } from "../host-ports.js";
import type { PortSpec, Project, Step } from "../model.js";

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
  /**
   * The ids of the last RECENT_OPS operations started, oldest first, across
   * lives: a command carrying one of them was decided already (a request
   * answered by a server that died before it could say so, asked again with
   * its Idempotency-Key) and decides nothing.
   */
  recentOps?: string[];
  /** Host ports of each slot, by service, for the ports written without one (see host-ports.ts); absent in states folded before there were any. */
  slotPorts?: Record<string, ServiceSlotPorts>;
  /**
   * Hosts whose pull of an image failed, by the image as written, for images
   * no registry pinned (built or loaded on some hosts: see placeService);
   * a host's later pull that succeeds takes it off. Absent: none.
   */
  lacking?: Record<string, string[]>;
}

/**
 * The shape of StackState, for snapshots (a cache of folded state): a
 * snapshot of another shape is not read, the log is folded afresh. Raise it
 * with every change to what a fold produces.
 */
export const stateFormat = 8;

/** How many operation ids a stack remembers (StackState.recentOps). */
export const RECENT_OPS = 32;

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
