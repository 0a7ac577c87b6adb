import type { PortSpec, SecretSpec, ServiceSpec, Step, VolumeSpec } from "./model.js";

export type Source = "cli" | "api" | "webhook" | "chatops";

export interface RevisionService {
  spec: ServiceSpec;
  hash: string;
}

/** Every change to a stack is one of these, appended to its log. */
export type StackEvent =
  | { type: "StackCreated"; stack: string; by: string }
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
    }
  | { type: "OperationStarted"; op: string; kind: "up" | "rm"; revision: number; by: string; source: Source }
  /** A wave of services planned (their depends_on have come up). */
  | { type: "WavePlanned"; op: string; services: string[] }
  | { type: "StepPlanned"; step: Step; at: number }
  | { type: "StepResent"; stepId: string; attempt: number; at: number }
  | { type: "StepSucceeded"; stepId: string; containerId?: string; alreadyDone?: boolean; ports?: PortSpec[]; ip?: string }
  | { type: "StepFailed"; stepId: string; error: string }
  | { type: "OperationSucceeded"; op: string }
  | { type: "OperationFailed"; op: string; reason: string }
  | { type: "StackRemoved"; op: string };

export type StackEventType = StackEvent["type"];

/** A committed batch of events, as the store returns it. */
export interface Commit {
  stack: string;
  version: number;
  at: number;
  events: StackEvent[];
}
