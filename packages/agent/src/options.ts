import type { Logger, Step, StepReport } from "@corral/core";
import type { PortRouter } from "./router.js";
import type { ContainerRuntime, NetworkAssignment, RegistryAuth } from "./runtime.js";

/**
 * What the API says of a pull's registry: the stack's login, "anonymous" (a
 * private registry, no login for this stack), or "reported" (this host has
 * reported that very pull done: its message came again).
 */
export type RegistryAccess = RegistryAuth | "anonymous" | "reported";

/** What a StepRunner acts with on its host: the engine, the control plane's answers, and the site's limits. */
export interface AgentOptions {
  hostId: string;
  /** On the overlay: the stack network's subnet and bridge here, from the control plane (and, once made, tell the overlay). */
  stackNetwork?: (stack: string) => Promise<NetworkAssignment>;
  networkMade?: (stack: string) => Promise<void>;
  /** The control plane's fingerprint (see controlFingerprint): a label on every container, so that a reconcile takes only its own control plane's. */
  controlId?: string;
  runtime: ContainerRuntime;
  /**
   * Where reports go: the control queue, in `group`, the step's own queue
   * group (a slot of a service), kept for its report. `more`: other steps
   * of the same stack are still running here (their reports may go with it).
   */
  report: (report: StepReport, attempt: number, group: string, more?: boolean) => Promise<void>;
  /** Override every container's own stop grace period (stop_grace_period, else Docker's 10 s). */
  stopGraceSeconds?: number;
  /** A secret's value, asked of the API with this host's own token, for a create step. */
  fetchSecret?: (step: Step, name: string, version: number) => Promise<Buffer>;
  /**
   * The login for the registry a pull's image comes from (the stack owner's),
   * asked of the API with this host's own token for that very step: never on
   * the queue. "anonymous": a registry others hold logins for, the stack
   * none; the image is pulled without one even when the host has it (a copy
   * another stack's login pulled proves nothing). Undefined: a registry
   * corral knows no login for; pulled without one, when missing.
   */
  registryAuth?: (step: Step, server: string) => Promise<RegistryAccess | undefined>;
  /** Where secret files live on the host (a tmpfs), one folder per container. */
  secretsDir?: string;
  /** Holds routed host ports and forwards them to healthy containers (see router.ts). */
  router?: PortRouter;
  /** Override how long a start waits for a health verdict. */
  healthTimeoutMs?: number;
  /**
   * A start refused because a published host port is held (an outgoing
   * connection's source port for a moment, a process just letting go) is
   * tried again: this many times in all, the first pause this long, doubling
   * (default 5 attempts, 250 ms: about 4 s).
   */
  portRetry?: { attempts: number; delayMs: number };
  /**
   * The site policy's bindRoots (the API tells an agent at registration): a
   * bind mount's real path, symlinks resolved, must lie strictly under one.
   * None: no bind mounts, as the policy's default.
   */
  bindRoots?: readonly string[];
  /**
   * A step that cannot reach the engine (dockerd stopped or restarting) is
   * run again, from the top, every `retryMs`, for up to `waitMs` (default
   * 120 s: within the controller's patience, ten resends of 30 s); then it
   * fails, saying the engine could not be reached.
   */
  engineWait?: { waitMs: number; retryMs: number };
  log?: Logger;
}
