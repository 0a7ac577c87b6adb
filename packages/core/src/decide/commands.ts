import type { RevisionService, Source } from "../events.js";
import type { ImageCheck } from "../images.js";
import type { Project, ServiceSpec, StepReport } from "../model.js";
import type { PortPool } from "../host-ports.js";
import type { Placed } from "../placement.js";

export interface HostInfo {
  id: string;
  name?: string;
  /** Unset reads as active. */
  state?: "active" | "disconnected" | "draining" | "inactive";
  labels?: Record<string, string>;
}

export type Command =
  | {
      type: "Up";
      stack: string;
      op: string;
      services: Record<string, ServiceSpec>;
      volumes?: Project["volumes"];
      secrets?: Project["secrets"];
      /** Latest versions of the secrets the project mounts (store name → version). */
      secretVersions?: Record<string, number>;
      by: string;
      source: Source;
      /** up --upgrade, --force-upgrade, --confirm-upgrade, --rollback [--to-revision N], --batch-size. */
      upgrade?: boolean;
      force?: boolean;
      confirm?: boolean;
      rollback?: boolean;
      toRevision?: number;
      batchSize?: number;
      intervalMs?: number;
      startFirst?: boolean;
      autoConfirmMs?: number;
      pull?: boolean;
      /** When, for history. */
      now?: number;
      /** The group a new stack belongs to (the creator's primary group). */
      group?: string;
      /** History's rollback note for the revision it commits (set by --rollback --to-revision). */
      note?: string;
      /** With rollback: only these services' pending upgrades (`service rollback STACK/SERVICE`); the others stay as they are. */
      rollbackServices?: string[];
      /** The site's range and the host ports other stacks hold: each slot's ports written without a host port come from it. */
      ports?: PortPool;
      /** What a registry said each image reference (as written) names now, or why it could not be asked: the revision pins it. */
      pins?: Record<string, ImageCheck>;
      /** A revision deployed again: each service's image exactly as that revision had it. */
      exact?: Record<string, Pick<RevisionService, "digest" | "ids">>;
    }
  | { type: "Remove"; stack: string; op: string; by: string; source: Source }
  /** `corral stack create --empty NAME`: a stack with no services yet, owned by its creator. */
  | { type: "Create"; stack: string; by: string; group?: string }
  /** `corral rm --type service STACK/SERVICE`: a new revision without it; its containers go. */
  | { type: "RemoveService"; stack: string; op: string; service: string; by: string; source: Source; now?: number }
  /** `corral rm --type container NAME`: the container goes; its slot is made anew (unless scaled down). */
  | { type: "RemoveContainer"; stack: string; op: string; container: string; by: string; source: Source }
  /** `corral scale STACK/SERVICE=N ...`: add or remove slots (highest first); not a new revision. */
  | {
      type: "Scale";
      stack: string;
      op: string;
      scales: Record<string, number>;
      by: string;
      source: Source;
      /** As for Up: new slots get their host ports from it. */
      ports?: PortPool;
      /** The live hosts: a scale that cannot be placed on them is refused, and changes nothing. */
      hosts?: HostInfo[];
      /** The other stacks' containers (see stackPlaced): ports and container labels span stacks. */
      placed?: Placed[];
    }
  /** `corral stop|start|restart STACK[/SERVICE]`: restart goes in batches, with an interval, as Rancher's did. */
  | { type: "Lifecycle"; stack: string; op: string; action: "stop" | "start" | "restart"; services?: string[]; batchSize?: number; intervalMs?: number; by: string; source: Source }
  /** Plan the steps of the operation in progress, on the live hosts. */
  /**
   * `hosts`: every registered host (only active ones take new containers);
   * `placed`: the other stacks' containers (see stackPlaced), for host ports
   * and container-label rules, on every command that may place containers.
   */
  | { type: "Plan"; hosts: HostInfo[]; now: number; placed?: Placed[] }
  /** An agent's report on a step; the next wave is planned on `hosts`. */
  | { type: "Report"; report: StepReport; hosts: HostInfo[]; now: number; placed?: Placed[] }
  /**
   * Time passes: an upgrade that has run long enough confirms by itself
   * (--auto-confirm), scheduled jobs run, and a global service with no
   * operation in progress gets a container on each host that has come to fit
   * (and loses those on hosts that no longer do).
   */
  | { type: "Tick"; now: number; hosts: HostInfo[]; placed?: Placed[] }
  /** A container's health check changed its verdict. */
  /** `host`: the host that vouched for the verdict (its signature); a verdict about a container on another host is nobody's to give. */
  | { type: "Health"; host: string; container: string; dockerId: string; health: "healthy" | "unhealthy"; now: number }
  /**
   * A container's process ended on its host (Docker's die event, or the agent's reconcile finding it exited), as
   * `host` vouches: recorded for a container the log has running, there, with that engine id, and no step of corral's
   * own in flight for it (a stop, a removal, a rename, a start: those are corral's doing, or will say how they went).
   */
  | { type: "Exited"; host: string; container: string; dockerId: string; exitCode: number; now: number }
  /** Re-drive steps planned and not reported within the timeout; fail them after `maxAttempts`. */
  /** `host`: that host's agent started again; its unreported steps are re-sent now, whatever their age. */
  | { type: "Resend"; now: number; timeoutMs: number; maxAttempts?: number; host?: string; hosts?: HostInfo[]; placed?: Placed[] }
  /**
   * The controller cannot carry on the operation in progress for a reason
   * that a retry would meet again (its decision does not fit in the store):
   * it fails with the reason; an upgrade pauses, so that rollback and
   * confirm stay open.
   */
  | { type: "Abandon"; reason: string };

/** One kind of command, by its type. */
export type CommandOf<T extends Command["type"]> = Extract<Command, { type: T }>;
