import type { PulledImage, RevisionService } from "../events.js";
import { pinnedDigest } from "../images.js";
import type { Step } from "../model.js";
import type { Fold, On } from "./draft.js";
import { lostKey, type ContainerRecord, type CronRun, type LostContainer, type StepRecord } from "./types.js";

/*
 * Steps, the containers they make and change, and the runs of scheduled
 * jobs: how their events fold into the state.
 */

export function stepPlanned(f: Fold, event: On<"StepPlanned">): void {
  f.mut("steps")[event.step.id] = { step: event.step, status: "planned", plannedAt: event.at, attempt: 1 };
}

export function stepResent(f: Fold, event: On<"StepResent">): void {
  const record = f.state.steps[event.stepId];
  if (record) f.mut("steps")[event.stepId] = { ...record, attempt: event.attempt, plannedAt: event.at };
}

export function stepSucceeded(f: Fold, event: On<"StepSucceeded">): void {
  const record = f.state.steps[event.stepId];
  if (!record) return;
  stepDone(f, record, event);
  f.mut("steps")[event.stepId] = { ...record, status: "succeeded" };
}

/** What a step that succeeded did to its container. */
function stepDone(f: Fold, record: StepRecord, event: On<"StepSucceeded">): void {
  const { step } = record;
  if (step.action === "pull" && event.image) pinPulled(f, step, event.image);
  if (step.action === "pull") noteLacking(f, step, false);
  const name = step.container;
  if (!name) return;
  // a step acts on the container of that name on its own host: another host's of the same name (a lost one's successor) is not touched
  const found = f.state.containers[name];
  const existing = found && found.host === step.host ? found : undefined;
  switch (step.action) {
    case "create":
      f.mut("containers")[name] = {
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
      if (existing) f.mut("containers")[name] = started(existing, event);
      break;
    case "stop":
      if (existing) {
        const { health: _h, healthySince: _s, ...rest } = existing;
        f.mut("containers")[name] = { ...rest, state: "stopped" };
      }
      break;
    case "remove": {
      if (existing) delete f.mut("containers")[name];
      const s = f.state;
      if (s.lost?.[lostKey(name, step.host)]) {
        const { [lostKey(name, step.host)]: _l, ...rest } = s.lost;
        s.lost = rest;
      }
      if (name in s.inflight) delete f.mut("inflight")[name];
      break;
    }
    case "rename": {
      const to = step.renameTo ?? "";
      if (existing) {
        const containers = f.mut("containers");
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

/**
 * A pull pins the revision's image where nothing had: the registry digest
 * the engine knows it by (the same for every host from then on), else the
 * image id this host has (a local image: on that host only). In the
 * revision's record, and in what runs now when that is the same revision.
 */
function pinPulled(f: Fold, step: Step, image: PulledImage): void {
  const pin = (rs: RevisionService | undefined): RevisionService | undefined => {
    if (!rs || rs.spec.image !== step.image || pinnedDigest(rs)) return undefined;
    if (image.digest) return { ...rs, digest: image.digest };
    if (rs.ids?.[step.host]) return undefined;
    return { ...rs, ids: { ...rs.ids, [step.host]: image.id } };
  };
  const revision = f.state.revisions[step.revision];
  const pinned = pin(revision?.services[step.service]);
  if (revision && pinned) f.mut("revisions")[step.revision] = { ...revision, services: { ...revision.services, [step.service]: pinned } };
  const now = f.state.revision === step.revision ? pin(f.state.services[step.service]) : undefined;
  if (now) f.mut("services")[step.service] = now;
}

/**
 * A pull of an image no registry pinned (no digest: built or loaded on some
 * hosts) that failed on a host: that host lacks it, and placement keeps new
 * containers off it (see placeService); one that succeeded there takes it off.
 */
function noteLacking(f: Fold, step: Step, failed: boolean): void {
  const s = f.state;
  const rs = s.revisions[step.revision]?.services[step.service];
  if (!rs || pinnedDigest(rs) || step.pinned?.includes("@")) return;
  const before = s.lacking?.[step.image] ?? [];
  if (failed === before.includes(step.host)) return;
  const hosts = failed ? [...before, step.host].sort() : before.filter((h) => h !== step.host);
  const { [step.image]: _old, ...rest } = s.lacking ?? {};
  const lacking = hosts.length > 0 ? { ...rest, [step.image]: hosts } : rest;
  if (Object.keys(lacking).length > 0) s.lacking = lacking;
  else delete s.lacking;
}

/** A container after its start step succeeded: running, with what its host reported. */
function started(existing: ContainerRecord, event: On<"StepSucceeded">): ContainerRecord {
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
  return running;
}

export function stepFailed(f: Fold, event: On<"StepFailed">): void {
  const record = f.state.steps[event.stepId];
  if (!record) return;
  const service = record.step.service;
  if (record.step.action === "pull") noteLacking(f, record.step, true);
  if (!f.state.errors[service]) f.mut("errors")[service] = event.error;
  f.mut("steps")[event.stepId] = { ...record, status: "failed", error: event.error };
}

export function containerHealth(f: Fold, event: On<"ContainerHealth">): void {
  const c = f.state.containers[event.container];
  if (!c) return;
  const healthySince = event.health === "healthy" ? (c.health === "healthy" ? c.healthySince : event.at) : undefined;
  const { healthySince: _old, ...rest } = c;
  f.mut("containers")[event.container] = { ...rest, health: event.health, ...(healthySince !== undefined ? { healthySince } : {}) };
}

export function containerExited(f: Fold, event: On<"ContainerExited">): void {
  const c = f.state.containers[event.container];
  if (!c || c.host !== event.host) return;
  const { health: _h, healthySince: _s, ...rest } = c;
  f.mut("containers")[event.container] = { ...rest, state: "stopped", exited: { code: event.exitCode, at: event.at } };
}

export function containerLost(f: Fold, event: On<"ContainerLost">): void {
  const s = f.state;
  const c = s.containers[event.container];
  if (!c || c.host !== event.host) return;
  delete f.mut("containers")[event.container];
  const lost: LostContainer = {
    name: c.name,
    host: c.host,
    service: c.service,
    slot: c.slot,
    revision: c.revision,
    image: c.image,
    ...(c.dockerId ? { dockerId: c.dockerId } : {}),
    ...(c.createdBy ? { createdBy: c.createdBy } : {}),
  };
  s.lost = { ...s.lost, [lostKey(c.name, c.host)]: lost };
  if (s.waiting?.[event.container]) {
    const { [event.container]: _w, ...rest } = s.waiting;
    s.waiting = rest;
  }
}

export function containerWaiting(f: Fold, event: On<"ContainerWaiting">): void {
  const s = f.state;
  const { [event.container]: _w, ...rest } = s.waiting ?? {};
  s.waiting = event.reason ? { ...rest, [event.container]: { host: event.host, reason: event.reason } } : rest;
}

export function cronFired(f: Fold, event: On<"CronFired">): void {
  const c = f.state.cron[event.service] ?? { last: 0, count: 0, runs: [] };
  const { run, step } = event;
  const fired: CronRun | undefined = run && step ? { run, at: event.at, stepId: step.id, container: step.container ?? "", host: step.host, status: "running" } : undefined;
  const runs = fired ? [...c.runs, fired].slice(-5) : c.runs;
  f.mut("cron")[event.service] = { last: event.at, count: event.run ?? c.count, runs };
}

export function cronRunFinished(f: Fold, event: On<"CronRunFinished">): void {
  const c = f.state.cron[event.service];
  if (!c) return;
  const finished = (r: CronRun): CronRun => ({
    ...r,
    status: event.exitCode === 0 ? "succeeded" : "failed",
    finishedAt: event.at,
    ...(event.exitCode !== undefined ? { exitCode: event.exitCode } : {}),
    ...(event.error ? { error: event.error } : {}),
  });
  const runs = c.runs.map((r) => (r.run !== event.run ? r : finished(r)));
  f.mut("cron")[event.service] = { ...c, runs };
}
