import type { Fold, On } from "./draft.js";
import type { RollbackRecord, StackState, UpgradeState } from "./types.js";

/*
 * Pending upgrades (UpgradeState) and rollbacks: how their events fold into
 * the state.
 */

/** The services whose pending upgrade an operation made. */
function ofOp(s: StackState, op: string): string[] {
  return Object.entries(s.upgrades).flatMap(([service, u]) => (u.op === op ? [service] : []));
}

/** Change the pending upgrades of these services (all of them when undefined); undefined removes one. */
export function setUpgrades(f: Fold, services: string[] | undefined, change: (u: UpgradeState) => UpgradeState | undefined): void {
  const names = services ?? Object.keys(f.state.upgrades);
  if (!names.some((n) => n in f.state.upgrades)) return;
  const upgrades = f.mut("upgrades");
  for (const name of names) {
    const u = upgrades[name];
    if (!u) continue;
    const next = change(u);
    if (next) upgrades[name] = next;
    else delete upgrades[name];
  }
}

export function upgradeStarted(f: Fold, event: On<"UpgradeStarted">): void {
  for (const service of event.services) {
    f.mut("upgrades")[service] = {
      op: event.op,
      from: event.from,
      to: event.to,
      status: "upgrading",
      confirm: event.confirm,
      ...(event.autoConfirmMs ? { autoConfirmMs: event.autoConfirmMs } : {}),
    };
  }
}

export function upgradeFinished(f: Fold, event: On<"UpgradeFinished">): void {
  setUpgrades(f, ofOp(f.state, event.op), (u) => ({ ...u, status: "upgraded", ...(event.at ? { finishedAt: event.at } : {}) }));
}

export function upgradePaused(f: Fold, event: On<"UpgradePaused">): void {
  setUpgrades(f, ofOp(f.state, event.op), (u) => ({ ...u, status: "paused", reason: event.reason }));
}

export function upgradeConfirmed(f: Fold, event: On<"UpgradeConfirmed">): void {
  setUpgrades(f, event.services, () => undefined);
}

export function rollbackFinished(f: Fold, event: On<"RollbackFinished">): void {
  setUpgrades(f, event.services, () => undefined);
  const s = f.state;
  const back = s.revisions[event.revision];
  if (!back) return;
  // (a rollback that made a revision of its own is in history as that revision)
  if (s.revision !== event.revision) s.rollbacks = [...s.rollbacks, rollbackRecord(s, event)];
  s.revision = event.revision;
  // a service's scale is not part of a revision (scaling is not an upgrade): it stays
  const services: StackState["services"] = {};
  for (const [name, r] of Object.entries(back.services)) {
    const scale = s.services[name]?.spec.scale;
    services[name] = scale === undefined || scale === r.spec.scale ? r : { ...r, spec: { ...r.spec, scale } };
  }
  f.set("services", services, true);
  s.volumes = back.volumes;
  s.secrets = back.secrets;
  s.secretVersions = back.secretVersions;
}

/** History's entry for a rollback that moved the revision back. */
function rollbackRecord(s: StackState, event: On<"RollbackFinished">): RollbackRecord {
  const op = s.op?.id === event.op ? s.op : undefined;
  return { from: s.revision, to: event.revision, after: s.lastRevision, ...(event.at ? { at: event.at } : {}), by: op?.by ?? "corral", source: op?.source ?? "api" };
}
