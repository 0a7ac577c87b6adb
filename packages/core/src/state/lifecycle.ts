import type { Fold, On } from "./draft.js";
import { initialState, RECENT_OPS, type Life, type StackState } from "./types.js";
import { setUpgrades } from "./upgrades.js";

/*
 * A stack's life, its revisions and its operations: how the events that
 * make, change and remove them fold into the state.
 */

export function stackCreated(f: Fold, event: On<"StackCreated">): void {
  const s = f.state;
  // made again after a removal: a new life, numbered afresh from revision 1; the last one's history is kept apart
  const last = s.generation || (Object.keys(s.revisions).length > 0 ? 1 : 0); // a snapshot from before lives were counted: its one life
  const ended: Life[] = last > 0 ? [{ generation: last, revisions: s.revisions, rollbacks: s.rollbacks, ...(s.removed ? { removed: s.removed } : {}) }] : [];
  f.reset(
    {
      ...initialState(s.name),
      version: s.version,
      exists: true,
      ...(s.recentOps ? { recentOps: s.recentOps } : {}),
      generation: last + 1,
      earlier: [...s.earlier, ...ended],
      owner: event.owner ?? event.by,
      group: event.group ?? event.by,
    },
    [],
  );
}

export function revisionCommitted(f: Fold, event: On<"RevisionCommitted">): void {
  const s = f.state;
  s.revision = event.revision;
  s.lastRevision = Math.max(s.lastRevision, event.revision);
  f.mut("revisions")[event.revision] = {
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
  f.set("services", event.services, false); // the event's own object: copied before any change
  if (s.lacking) {
    // what an image no service runs any longer lacked is not kept
    const images = new Set(Object.values(event.services).map((x) => x.spec.image));
    const kept = Object.entries(s.lacking).filter(([image]) => images.has(image));
    if (kept.length > 0) s.lacking = Object.fromEntries(kept);
    else delete s.lacking;
  }
  s.volumes = event.volumes ?? {};
  s.secrets = event.secrets ?? {};
  s.secretVersions = event.secretVersions ?? {};
}

export function operationStarted(f: Fold, event: On<"OperationStarted">): void {
  const s = f.state;
  if (event.kind === "rollback") setUpgrades(f, event.services, (u) => ({ ...u, status: "rolling-back" }));
  // pending upgrades this operation finishes first: their old containers go in its first steps
  setUpgrades(f, event.confirms ?? [], (u) => (u.op === event.op ? u : undefined)); // (an upgrade of its own, just begun, stays)
  Object.assign(f.mut("inflight"), unreportedCreates(s));
  s.recentOps = [...(s.recentOps ?? []).filter((id) => id !== event.op), event.op].slice(-RECENT_OPS);
  if (event.kind === "stop") stoppedOnPurpose(f, event.services);
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
  f.set("steps", {}, true);
  f.set("errors", {}, true);
}

/** Containers the operation so far asked for and never heard back about (see StackState.inflight). */
function unreportedCreates(state: StackState): StackState["inflight"] {
  const out: StackState["inflight"] = {};
  for (const { step, status } of Object.values(state.steps)) {
    if (step.action === "create" && status === "planned" && step.container) {
      out[step.container] = { service: step.service, slot: step.slot ?? 1, host: step.host, image: step.image };
    }
  }
  return out;
}

export function serviceScaled(f: Fold, event: On<"ServiceScaled">): void {
  const current = f.state.services[event.service];
  if (current) f.mut("services")[event.service] = { ...current, spec: { ...current.spec, scale: event.scale } };
}

export function slotPortsAssigned(f: Fold, event: On<"SlotPortsAssigned">): void {
  const s = f.state;
  const { [event.service]: _before, ...rest } = s.slotPorts ?? {};
  s.slotPorts = Object.keys(event.slots).length > 0 ? { ...rest, [event.service]: event.slots } : rest;
}

export function wavePlanned(f: Fold, event: On<"WavePlanned">): void {
  const s = f.state;
  if (s.op?.id === event.op) s.op = { ...s.op, planned: true, waves: [...s.op.waves, ...event.services] };
}

export function serviceFailed(f: Fold, event: On<"ServiceFailed">): void {
  const s = f.state;
  if (!s.errors[event.service]) f.mut("errors")[event.service] = event.reason;
  if (s.op?.status === "running" && !s.op.halted) s.op = { ...s.op, halted: event.reason };
}

export function operationSucceeded(f: Fold, event: On<"OperationSucceeded">): void {
  const s = f.state;
  if (s.op?.id === event.op) s.op = { ...s.op, status: "succeeded" };
}

export function operationFailed(f: Fold, event: On<"OperationFailed">): void {
  const s = f.state;
  if (s.op?.id === event.op) s.op = { ...s.op, status: "failed", reason: event.reason };
}

export function stackRemoved(f: Fold, event: On<"StackRemoved">): void {
  const s = f.state;
  // the last operation stays readable (its progress lines), and history stays (until a new life starts); the stack is gone
  const { op, steps } = s;
  const by = op?.id === event.op ? op.by : undefined;
  f.reset(
    {
      ...initialState(s.name),
      version: s.version,
      revision: s.revision,
      lastRevision: s.lastRevision,
      revisions: s.revisions,
      rollbacks: s.rollbacks,
      generation: s.generation,
      earlier: s.earlier,
      ...(s.recentOps ? { recentOps: s.recentOps } : {}),
      removed: { ...(event.at ? { at: event.at } : {}), ...(by ? { by } : {}) },
      steps,
      ...(op ? { op } : {}),
      ...(s.owner ? { owner: s.owner } : {}),
      ...(s.group ? { group: s.group } : {}),
    },
    f.owns("steps") ? ["revisions"] : ["revisions", "steps"],
  );
}

/** A stop's services: their containers that had ended by themselves are stopped on purpose now (no restart policy brings them back: see healTick). */
function stoppedOnPurpose(f: Fold, services: string[] | undefined): void {
  const scope = services ? new Set(services) : undefined;
  for (const c of Object.values(f.state.containers)) {
    if (!c.exited || c.state === "running" || (scope && !scope.has(c.service))) continue;
    const { exited: _e, ...rest } = c;
    f.mut("containers")[c.name] = rest;
  }
}
