import type { Commit, StackEvent } from "./events.js";
import type { Project } from "./model.js";
import { Draft } from "./state/draft.js";
import type { StackState } from "./state/types.js";

/*
 * The fold: a stack's state from its events. Its parts, in state/: types.ts
 * (the state's shape), draft.ts (folding in place, and the table of a
 * handler per event type), lifecycle.ts, upgrades.ts and containers.ts (the
 * handlers).
 */

export { Draft } from "./state/draft.js";
export { initialState, lostKey, stateFormat } from "./state/types.js";
export type {
  ContainerRecord,
  ContainerState,
  CronRun,
  CronState,
  Life,
  LostContainer,
  Operation,
  Removal,
  Revision,
  RollbackRecord,
  StackState,
  StepRecord,
  UpgradeState,
} from "./state/types.js";

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
export function currentProject(state: StackState, pinned = false): Project {
  // pinned: each image at the digest its revision pinned (`export --pinned`), where it has one
  const image = (s: StackState["services"][string]) => (pinned && s.digest && !s.spec.image.includes("@") ? { ...s.spec, image: `${s.spec.image}@${s.digest}` } : s.spec);
  return {
    services: Object.fromEntries(Object.entries(state.services).map(([n, s]) => [n, image(s)])),
    volumes: state.volumes,
    secrets: state.secrets,
  };
}
