export type HostState = "active" | "disconnected" | "draining" | "inactive";

export interface PlacementHost {
  id: string;
  name?: string;
  state: HostState;
  labels: Record<string, string>;
}

/** A container that exists (or will, planned) and stays where it is. */
export interface Placed {
  stack: string;
  service: string;
  slot: number;
  host: string;
  /** The container's own labels (its service's); corral's io.corral.* ones are derived, see containerLabels. */
  labels: Record<string, string>;
  /** Host ports the container publishes itself: no other container on the host may publish them. */
  ports: number[];
  /** Host ports the agent routes to the service's containers on this host: shared by that service only. */
  routedPorts?: number[];
}

/**
 * One requirement or preference. `hostLabel`: a host label; `hostAttr`: a
 * host attribute (`id`, `hostname`, `role`, `platform.os`, `platform.arch`);
 * `containerLabel`: a label of some container on the host. `negate` turns
 * "has" into "has not". `text` is the rule as written, `from` the key it came from.
 */
export interface Rule {
  kind: "hostLabel" | "hostAttr" | "containerLabel";
  key: string;
  value: string;
  negate: boolean;
  text: string;
  from: string;
}

export interface PlacementRules {
  required: Rule[];
  preferred: Rule[];
  /** Host label keys to spread over, outermost first. */
  spreadOver: string[];
  maxPerHost?: number;
  global: boolean;
  /** Host ports each container publishes itself. */
  ports: number[];
  /** Host ports the agent routes to the service (shared between its containers on a host). */
  routedPorts: number[];
  /** The labels the service's new containers carry (for container-label rules of later placements). */
  labels: Record<string, string>;
}

export interface LocalImage {
  on: string[];
  lacking: string[];
}

export interface Placement {
  slot: number;
  host: string;
  why: string;
}

export interface PlaceRequest {
  stack: string;
  service: string;
  slots: number[];
  rules: PlacementRules;
  /**
   * For an image no registry gives (built or loaded on some hosts), once a
   * host's pull of it failed: `lacking` those hosts, `on` the hosts it ran on
   * (the revision pins it by image id there). Hosts it ran on rank first, then
   * the hosts not known either way, those that lack it last; before preferences.
   */
  localImage?: LocalImage;
}

export interface PlaceResult {
  placements: Placement[];
  /** The first slot that fits on no host; the slots after it are not placed either. */
  unplaced?: { slot: number; reason: string };
}

export interface GlobalPlan {
  /** New containers: one for each host that fits and has none, with the lowest free slot numbers in host id order. */
  placements: Placement[];
  /** Hosts that get none, and why (not active, a rule, a port). */
  skipped: Array<{ host: string; reason: string }>;
  /** Containers of the service that should go: a second one on a host, or one on a host that no longer fits its rules. */
  surplus: Array<{ slot: number; host: string; reason: string }>;
}
