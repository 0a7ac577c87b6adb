/**
 * A create step's container, in the runtime's words (CreateSpec): what the
 * service spec asks for, with the labels corral steers the host by. Pure:
 * what the step readied on the host (mounts, the overlay's network) comes in.
 */

import { directPorts, effectiveHealthcheck, labels as L, restartOf, routedPorts, routesLabel, type ServiceSpec, type Step } from "@corral/core/host";
import { stackNetwork } from "../names.js";
import type { CreateSpec, MountRequest, NetworkAssignment } from "../runtime.js";

/** Where the container is made, and what the create step readied for it on the host. */
export interface CreatePlace {
  hostId: string;
  /** The control plane's fingerprint, a label on the container (see controlFingerprint). */
  controlId?: string;
  /** Its volumes and binds, resolved on the host, and its secret files. */
  mounts: MountRequest[];
  /** The stack network's subnet and gateway on the overlay, when this host is on it. */
  assigned?: NetworkAssignment;
}

/** The service's own labels, then corral's (io.corral.*), which say whose the container is and which ports the router holds for it. */
function labelsOf(step: Step, spec: ServiceSpec, at: CreatePlace): Record<string, string> {
  return {
    ...spec.deploy?.labels,
    ...spec.labels,
    [L.stack]: step.stack,
    [L.service]: step.service,
    [L.slot]: String(step.slot ?? 1),
    [L.revision]: String(step.revision),
    [L.step]: step.id,
    [L.hash]: step.hash ?? "",
    [L.host]: at.hostId,
    ...(at.controlId ? { [L.control]: at.controlId } : {}),
    ...(routedPorts(spec).length > 0 ? { [L.routes]: routesLabel(spec) } : {}),
  };
}

/** The container a create step makes, from its service spec. */
export function createSpecOf(step: Step, spec: ServiceSpec, at: CreatePlace): CreateSpec {
  const name = step.container ?? "";
  const network = stackNetwork(step.stack);
  const healthcheck = effectiveHealthcheck(spec);
  return {
    name,
    image: spec.image,
    ...(spec.command ? { command: spec.command } : {}),
    ...(spec.entrypoint ? { entrypoint: spec.entrypoint } : {}),
    env: spec.environment,
    // the agent's own io.corral.* labels, from the step alone: no image label and no user label of those names gets here (reservedLabels in create.ts)
    labels: labelsOf(step, spec, at),
    ports: directPorts(spec),
    capAdd: spec.cap_add,
    capDrop: spec.cap_drop,
    ...(spec.user ? { user: spec.user } : {}),
    ...(spec.working_dir ? { workingDir: spec.working_dir } : {}),
    ...(restartOf(spec) ? { restart: restartOf(spec)! } : {}),
    ...(spec.deploy?.resources?.reservations?.memory !== undefined ? { memoryReservation: spec.deploy.resources.reservations.memory } : {}),
    ...(spec.deploy?.resources?.limits?.pids !== undefined ? { pidsLimit: spec.deploy.resources.limits.pids } : {}),
    ...(at.mounts.length ? { mounts: at.mounts } : {}),
    ...(healthcheck ? { healthcheck } : {}),
    ...(spec.stop_signal ? { stopSignal: spec.stop_signal } : {}),
    ...(spec.stop_grace_period !== undefined ? { stopGraceMs: spec.stop_grace_period } : {}),
    ...(spec.read_only !== undefined ? { readOnly: spec.read_only } : {}),
    ...(spec.tmpfs ? { tmpfs: spec.tmpfs } : {}),
    ...(spec.ulimits ? { ulimits: spec.ulimits } : {}),
    ...(spec.mem_limit !== undefined || spec.deploy?.resources?.limits?.memory !== undefined ? { memory: spec.mem_limit ?? spec.deploy?.resources?.limits?.memory } : {}),
    ...(spec.cpus !== undefined || spec.deploy?.resources?.limits?.cpus !== undefined ? { nanoCpus: Math.round((spec.cpus ?? spec.deploy?.resources?.limits?.cpus ?? 0) * 1e9) } : {}),
    ...(spec.shm_size !== undefined ? { shmSize: spec.shm_size } : {}),
    ...(spec.sysctls ? { sysctls: spec.sysctls } : {}),
    ...(spec.init !== undefined ? { init: spec.init } : {}),
    ...(spec.hostname ? { hostname: spec.hostname } : {}),
    // on the overlay, names are the stack's name server's (on the network's gateway), which Docker's own resolver asks
    ...(at.assigned ? { dns: [at.assigned.gateway, ...(spec.dns ?? [])] } : spec.dns ? { dns: spec.dns } : {}),
    ...(spec.extra_hosts ? { extraHosts: spec.extra_hosts } : {}),
    ...(spec.logging ? { logging: spec.logging } : {}),
    ...(spec.group_add ? { groupAdd: spec.group_add } : {}),
    ...(spec.expose ? { expose: spec.expose } : {}),
    ...(spec.privileged !== undefined ? { privileged: spec.privileged } : {}),
    ...(spec.network_mode ? { networkMode: spec.network_mode } : {}),
    network,
    // an alias would have Docker answer the service's name with this host's containers alone
    aliases: at.assigned ? [] : [step.service],
    ...(step.ip ? { ipv4Address: step.ip } : {}),
  };
}
