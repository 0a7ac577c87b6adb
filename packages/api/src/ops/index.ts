import type { SitePolicy } from "@corral/core";
import type { ApiDeps } from "../deps.js";
import { admission } from "./admit.js";
import { deploys } from "./deploy.js";
import { stackLookups } from "./lookups.js";
import { hostPorts } from "./ports.js";
import { targets } from "./targets.js";

export { namedHosts, type HostNames } from "./lookups.js";
export { newOpId, opOf, type UpAnswer, type UpExtra } from "./deploy.js";
export { registryResolver, type ImageResolver, type LoginLookup, type ResolverOptions } from "./digests.js";
export type { Target } from "./targets.js";

export type OpsDeps = Pick<ApiDeps, "store" | "hosts" | "volumes" | "secrets" | "registries" | "resolveImage" | "sender" | "controlQueueUrl" | "leases" | "heardSince"> & {
  policy: SitePolicy;
  clock: () => number;
  hostStaleMs: number;
};

/**
 * What the routes do with stacks, made once from the API's deps: look them
 * up for a caller, admit compose files, give host ports, and change them
 * through the command handler. Route factories take what they need of it.
 */
export function stackOps(deps: OpsDeps) {
  const lookups = stackLookups(deps);
  const ports = hostPorts({ policy: deps.policy, ...(deps.leases ? { leases: deps.leases } : {}), existingStacks: lookups.existingStacks });
  const { admit } = admission({ policy: deps.policy, volumes: deps.volumes, secrets: deps.secrets, portsInUse: ports.portsInUse, holderOf: lookups.holderOf });
  const verbs = deploys({ ...deps, admit, mayTouch: lookups.mayTouch, liveHosts: lookups.liveHosts, ...ports });
  return { ...lookups, ...targets(lookups), ...ports, admit, ...verbs };
}

export type StackOps = ReturnType<typeof stackOps>;
