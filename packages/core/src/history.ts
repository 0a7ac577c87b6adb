import { changedKeys } from "./diff.js";
import type { RevisionService, Source } from "./events.js";
import { pinnedDigest } from "./images.js";
import type { Removal, Revision, RollbackRecord, StackState } from "./state.js";

/**
 * A line of `corral history`: an operation that changed what runs. Either a
 * revision committed (by `up`, `up --upgrade`, `rm --type service`, ...) or
 * a rollback that brought an earlier revision back without committing one.
 * The keys are the table's columns in lower case.
 */
export interface HistoryRow {
  /** The revision that runs after this entry (for a rollback: the one it went back to). */
  revision: number;
  /** The entry that put in place what runs now (one at most, and none for a removed stack). */
  current: boolean;
  /** When (ISO 8601), or null when the log did not say. */
  time: string | null;
  by: string;
  source: Source;
  /** Services this entry changed, with the top-level keys of each ("added", "removed", "secret versions"). */
  changed: Array<{ service: string; keys: string[] }>;
  /** A rollback's note: "rollback to 3" (or, for a revision a rollback committed, its own note); null otherwise. */
  rollback: string | null;
  /** The exact image each service runs after the entry: its registry digest, or (an image no registry knows) its id on each host. */
  images: Record<string, { digest?: string; ids?: Record<string, string> }>;
}

/** One life of a stack: from its creation to its removal (or now). Revisions count from 1 in each. */
export interface HistoryLife {
  life: number;
  /** The stack as it is now (not removed). */
  current: boolean;
  removed: { time: string | null; by: string | null } | null;
  rows: HistoryRow[];
}

const iso = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : null);

/** A revision's exact images, by service (those pinned so far). */
const imagesOf = (r: Revision | undefined): HistoryRow["images"] =>
  Object.fromEntries(
    Object.entries(r?.services ?? {}).flatMap(([n, s]): Array<[string, HistoryRow["images"][string]]> => {
      const digest = pinnedDigest(s);
      return digest ? [[n, { digest }]] : s.ids ? [[n, { ids: s.ids }]] : [];
    }),
  );

/** The keys that changed between two versions of a service; a new hash with the same keys means new secret versions. */
export function whatChanged(before: RevisionService | undefined, after: RevisionService | undefined, forced?: boolean): string[] {
  const keys = changedKeys(before?.spec, after?.spec);
  if (keys.length > 0) return keys;
  // the same reference, other bytes: the tag moved (or a revision deployed again)
  if (before?.digest && after?.digest && before.digest !== after.digest) return ["image digest"];
  if (before && after && before.hash !== after.hash) return ["secret versions"];
  return forced ? ["forced"] : [];
}

/** The services whose configuration differs between two revisions (a rollback's changes), in the later one's order. */
function differences(from: Revision | undefined, to: Revision | undefined): Array<{ service: string; keys: string[] }> {
  const names = [...new Set([...Object.keys(to?.services ?? {}), ...Object.keys(from?.services ?? {})])];
  return names.filter((n) => from?.services[n]?.hash !== to?.services[n]?.hash).map((service) => ({ service, keys: whatChanged(from?.services[service], to?.services[service]) }));
}

/** The rows of one life, oldest first: its revisions, each followed by the rollbacks that happened before the next one. */
function lifeRows(revisions: Record<number, Revision>, rollbacks: RollbackRecord[], current: number | undefined): HistoryRow[] {
  const rows: HistoryRow[] = [];
  let running: Revision | undefined; // what ran when the entry was made: changes are told against it
  for (const r of Object.values(revisions).sort((a, b) => a.revision - b.revision)) {
    rows.push({
      revision: r.revision,
      current: false,
      time: iso(r.at),
      by: r.by,
      source: r.source,
      changed: r.changed.map((service) => ({ service, keys: whatChanged(running?.services[service], r.services[service]) })),
      rollback: r.rollback ?? null,
      images: imagesOf(r),
    });
    running = r;
    for (const b of rollbacks.filter((x) => x.after === r.revision)) {
      const back = revisions[b.to];
      const changed = differences(revisions[b.from], back);
      rows.push({ revision: b.to, current: false, time: iso(b.at), by: b.by, source: b.source, changed, rollback: `rollback to ${b.to}`, images: imagesOf(back) });
      running = back;
    }
  }
  const mark = current === undefined ? -1 : rows.map((r) => r.revision).lastIndexOf(current);
  if (mark >= 0) rows[mark] = { ...rows[mark]!, current: true };
  return rows;
}

const removal = (r: Removal | undefined) => (r ? { time: iso(r.at), by: r.by ?? null } : null);

/**
 * A stack's history: its current (or, once removed, its last) life; with
 * `all`, every earlier life before it, oldest first. An earlier life's
 * revisions are history only: `up --rollback --to-revision` reaches the
 * current life's.
 */
export function stackHistory(state: StackState, { all = false }: { all?: boolean } = {}): HistoryLife[] {
  const earlier: HistoryLife[] = all
    ? state.earlier.map((l) => ({
        life: l.generation,
        current: false,
        removed: removal(l.removed) ?? { time: null, by: null },
        rows: lifeRows(l.revisions, l.rollbacks, undefined),
      }))
    : [];
  const generation = state.generation || (Object.keys(state.revisions).length > 0 ? 1 : 0);
  if (generation === 0) return earlier;
  const last: HistoryLife = {
    life: generation,
    current: state.exists,
    removed: state.exists ? null : (removal(state.removed) ?? { time: null, by: null }),
    rows: lifeRows(state.revisions, state.rollbacks, state.exists ? state.revision : undefined),
  };
  return [...earlier, last];
}
