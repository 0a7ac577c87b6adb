import { z } from "zod";
import type { ServiceSlotPorts } from "./host-ports.js";
import type { PortSpec, SecretSpec, ServiceSpec, Step, VolumeSpec } from "./model.js";

/** Who made a change, as the history shows it: one of these words, never a caller's free text. */
export const sourceSchema = z.enum(["cli", "api", "webhook", "chatops"]);
export type Source = z.infer<typeof sourceSchema>;

export type OperationKind = "up" | "rm" | "upgrade" | "confirm" | "rollback" | "scale" | "stop" | "start" | "restart" | "rm-service" | "rm-container" | "move" | "cleanup";

export interface RevisionService {
  spec: ServiceSpec;
  hash: string;
  /** What spec.image meant when this revision was made: the registry's content digest (sha256:...), the same bytes on every host. */
  digest?: string;
  /** An image no registry gave a digest for (built or loaded on a host): the image id each host ran it with (host → sha256:...). */
  ids?: Record<string, string>;
}

/** A pull's report of what the host has under the reference: the image id, and the registry digest if the engine knows one. */
export interface PulledImage {
  id: string;
  digest?: string;
}

/** Every change to a stack is one of these, appended to its log. */
export type StackEvent =
  | { type: "StackCreated"; stack: string; by: string; owner?: string; group?: string }
  | {
      type: "RevisionCommitted";
      revision: number;
      services: Record<string, RevisionService>;
      volumes?: Record<string, VolumeSpec>;
      secrets?: Record<string, SecretSpec>;
      /** Versions of the secrets the revision mounts (store name → version). */
      secretVersions?: Record<string, number>;
      changed: string[];
      by: string;
      source: Source;
      /** When (ms since the epoch), for history. */
      at?: number;
      /** History's note when a rollback committed this revision: "rollback to 3", "rollback of app, db". */
      rollback?: string;
      /**
       * A revision made by a rollback of pending upgrades that began at
       * different revisions (so that what runs afterwards is no earlier
       * revision): each service rolled back, and the revision it went back to.
       */
      rollbackTo?: Record<string, number>;
    }
  | {
      type: "OperationStarted";
      op: string;
      kind: OperationKind;
      revision: number;
      by: string;
      source: Source;
      batchSize?: number;
      intervalMs?: number;
      startFirst?: boolean;
      pull?: boolean;
      /** The services it acts on (a rollback: those it rolls back; unset: all). */
      services?: string[];
      containers?: string[];
      /** A move: the draining (or disconnected) hosts its containers leave; a cleanup: the hosts back whose stale containers go. */
      hosts?: string[];
      /** A move: those of its hosts that are disconnected (their containers are re-placed without being stopped first). */
      disconnected?: string[];
      /** Services whose pending upgrade it finishes first (their old containers go). */
      confirms?: string[];
    }
  /** `corral scale`: a service's number of slots, not a new revision of the config. */
  | { type: "ServiceScaled"; service: string; scale: number }
  /** The host ports each slot of a service has for its ports written without one (`- "8080"`): the whole map, slots that went are gone from it. */
  | { type: "SlotPortsAssigned"; service: string; slots: ServiceSlotPorts }
  /** An in-service upgrade from one revision to another, of these services. */
  | {
      type: "UpgradeStarted";
      op: string;
      from: number;
      to: number;
      services: string[];
      confirm: boolean;
      forced: boolean;
      autoConfirmMs?: number;
      /** Services upgraded because their tag names other bytes now: the tag, and its new digest. */
      moved?: Record<string, { tag: string; digest: string }>;
    }
  /** Every new container runs; the old ones wait, stopped, for confirm or rollback. */
  | { type: "UpgradeFinished"; op: string; at?: number }
  | { type: "UpgradePaused"; op: string; reason: string }
  /** The old containers are gone; the upgrades of these services (unset: every one pending) are settled. */
  | { type: "UpgradeConfirmed"; op: string; services?: string[] }
  /** The new containers of these services (unset: every one pending) are gone, the old ones run again; the stack is at `revision`. */
  | { type: "RollbackFinished"; op: string; revision: number; services?: string[]; at?: number }
  /** A wave of services planned (their depends_on have come up). */
  | { type: "WavePlanned"; op: string; services: string[] }
  | { type: "StepPlanned"; step: Step; at: number }
  | { type: "StepResent"; stepId: string; attempt: number; at: number }
  | { type: "StepSucceeded"; stepId: string; containerId?: string; alreadyDone?: boolean; ports?: PortSpec[]; ip?: string; health?: "healthy"; at?: number; image?: PulledImage }
  /**
   * What `up` learnt of its services' images: a tag that now names other
   * bytes than the revision pinned (`moved`: service → its tag and the new digest), and
   * images it could not ask a registry about (`unchecked`, service → why;
   * `kept` the digest they stay pinned to).
   */
  | { type: "ImagesChecked"; op: string; moved?: Record<string, { tag: string; digest: string }>; unchecked?: Record<string, { reason: string; kept?: string }> }
  /** A scheduled job's time came: a run (a one-shot container), or none when the last still runs (no overlap), or on first sight. */
  | { type: "CronFired"; service: string; at: number; run?: number; step?: Step; skipped?: "overlap" | "first" }
  /** A scheduled run ended: its exit code, or why it could not run. */
  | { type: "CronRunFinished"; service: string; run: number; at: number; exitCode?: number; error?: string }
  /** A service of the running operation failed for a reason no step reported (a monitor window). */
  | { type: "ServiceFailed"; service: string; reason: string }
  /** A running container's health check changed its verdict. */
  | { type: "ContainerHealth"; container: string; health: "healthy" | "unhealthy"; at: number }
  /** A running container's process ended, not by corral's doing (it crashed, was killed, `docker stop`): its host saw it exit with this code. */
  | { type: "ContainerExited"; container: string; host: string; exitCode: number; at: number }
  | { type: "StepFailed"; stepId: string; error: string }
  /**
   * A container on a disconnected host, re-placed by a move: its record leaves `containers` (it no longer counts as
   * live; the slot's new container takes its name) for `lost`, until a cleanup removes it from its host once back.
   */
  | { type: "ContainerLost"; op: string; container: string; host: string }
  /** A container on a disconnected host that cannot be re-placed (pinned to it, say): why it waits; no reason: it waits no more. */
  | { type: "ContainerWaiting"; container: string; host: string; reason?: string }
  | { type: "OperationSucceeded"; op: string }
  | { type: "OperationFailed"; op: string; reason: string }
  /** The stack is gone; its history stays, as an earlier life once a stack of the same name is made. */
  | { type: "StackRemoved"; op: string; at?: number };

export type StackEventType = StackEvent["type"];

/** A committed batch of events, as the store returns it. */
export interface Commit {
  stack: string;
  version: number;
  at: number;
  events: StackEvent[];
}
