import type { StackEvent } from "../events.js";
import {
  containerExited,
  containerHealth,
  containerLost,
  containerWaiting,
  cronFired,
  cronRunFinished,
  stepFailed,
  stepPlanned,
  stepResent,
  stepSucceeded,
} from "./containers.js";
import {
  operationFailed,
  operationStarted,
  operationSucceeded,
  revisionCommitted,
  serviceFailed,
  serviceScaled,
  slotPortsAssigned,
  stackCreated,
  stackRemoved,
  wavePlanned,
} from "./lifecycle.js";
import type { StackState } from "./types.js";
import { rollbackFinished, upgradeConfirmed, upgradeFinished, upgradePaused, upgradeStarted } from "./upgrades.js";

/** The maps of a state that events change entry by entry. */
export type MapKey = "steps" | "containers" | "inflight" | "errors" | "services" | "revisions" | "cron" | "upgrades";
const fresh: MapKey[] = ["steps", "containers", "inflight", "errors", "services", "revisions", "cron", "upgrades"];

/** The event of one type. */
export type On<K extends StackEvent["type"]> = Extract<StackEvent, { type: K }>;

/**
 * What an event's handler may do to the state being folded: set its plain
 * fields, and change its maps without touching the state the draft started
 * from.
 */
export interface Fold {
  /** The state so far (a `reset` replaces it). */
  readonly state: StackState;
  /** A map of the state, copied on its first change. */
  mut<K extends MapKey>(key: K): StackState[K];
  /** Put a map in the state: `own` when the handler made it (changed in place from now on), not when it is another's (an event's: copied before any change). */
  set<K extends MapKey>(key: K, map: StackState[K], own: boolean): void;
  /** Whether a map is the draft's own (already copied, or made by a handler). */
  owns(key: MapKey): boolean;
  /** Start over from a state built from scratch: its maps are the draft's own, except those it kept. */
  reset(state: StackState, kept: MapKey[]): void;
}

/** A Fold over one state: which of its maps the draft owns. */
class Folding implements Fold {
  #own = new Set<MapKey>();

  constructor(public state: StackState) {}

  mut<K extends MapKey>(key: K): StackState[K] {
    if (!this.#own.has(key)) {
      this.state[key] = { ...this.state[key] };
      this.#own.add(key);
    }
    return this.state[key];
  }

  set<K extends MapKey>(key: K, map: StackState[K], own: boolean): void {
    this.state[key] = map;
    if (own) this.#own.add(key);
    else this.#own.delete(key);
  }

  owns(key: MapKey): boolean {
    return this.#own.has(key);
  }

  reset(state: StackState, kept: MapKey[]): void {
    this.state = state;
    this.#own = new Set(fresh.filter((k) => !kept.includes(k)));
  }
}

/** How each type of event changes the state: a new event type does not compile until it has its handler here. */
const handlers = {
  StackCreated: stackCreated,
  RevisionCommitted: revisionCommitted,
  OperationStarted: operationStarted,
  ServiceScaled: serviceScaled,
  SlotPortsAssigned: slotPortsAssigned,
  WavePlanned: wavePlanned,
  StepPlanned: stepPlanned,
  StepResent: stepResent,
  StepSucceeded: stepSucceeded,
  CronFired: cronFired,
  CronRunFinished: cronRunFinished,
  ServiceFailed: serviceFailed,
  ContainerHealth: containerHealth,
  StepFailed: stepFailed,
  ContainerExited: containerExited,
  ContainerLost: containerLost,
  ContainerWaiting: containerWaiting,
  OperationSucceeded: operationSucceeded,
  OperationFailed: operationFailed,
  StackRemoved: stackRemoved,
  UpgradeStarted: upgradeStarted,
  UpgradeFinished: upgradeFinished,
  UpgradePaused: upgradePaused,
  UpgradeConfirmed: upgradeConfirmed,
  RollbackFinished: rollbackFinished,
  ImagesChecked: () => {}, // what up told the user: nothing in the state changes
} satisfies { [K in StackEvent["type"]]: (f: Fold, event: On<K>) => void };

/**
 * Events folded into a state in place, on copies the draft owns: each map of
 * the state it started from is copied at most once however many events
 * follow, so folding n events is linear in n (a copy of the steps map per
 * StepPlanned made planning quadratic). The state it started from is never
 * changed; `state` is the state so far, and changes as events are applied.
 */
export class Draft {
  readonly #fold: Folding;

  constructor(state: StackState) {
    this.#fold = new Folding({ ...state });
  }

  get state(): StackState {
    return this.#fold.state;
  }

  applyAll(events: Iterable<StackEvent>): this {
    for (const e of events) this.apply(e);
    return this;
  }

  /** The version of the last commit folded in. */
  stamp(version: number): this {
    this.#fold.state.version = version;
    return this;
  }

  apply(event: StackEvent): this {
    // the table pairs each type with the handler of that type's event; TypeScript cannot follow the pair through an index
    const handle = handlers[event.type] as (f: Fold, event: StackEvent) => void;
    handle(this.#fold, event);
    return this;
  }
}
