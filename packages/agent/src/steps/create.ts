import { directPorts, labels as L, routedPorts, type ServiceSpec, type Step } from "@corral/core/host";
import { bindProblem, resolveBind } from "../binds.js";
import { engineMessage } from "../engine-errors.js";
import { stackNetwork } from "../names.js";
import type { AgentOptions } from "../options.js";
import type { MountRequest } from "../runtime.js";
import { createSpecOf } from "./create-spec.js";
import { secretMounts } from "./secret-mounts.js";
import type { StepHandler } from "./types.js";

/**
 * Labels under io.corral.* steer this agent on the host: the router holds
 * the ports in io.corral.routes of every container that has it, even after
 * a restart, and stack/service/step say whose a container is. The invariant:
 * only the agent sets them, at create, from the step. Docker gives a
 * container its image's labels too, so an image that carries any
 * io.corral.* label is refused, and so is a service whose own labels set
 * one of the agent's (io.corral.cron.* are the service's to set: the
 * control plane reads those from the spec, never from a container).
 */
async function reservedLabels(step: Step, spec: ServiceSpec, o: AgentOptions): Promise<string | undefined> {
  const own = new Set<string>(Object.values(L));
  const set = Object.keys({ ...spec.deploy?.labels, ...spec.labels }).filter((k) => own.has(k));
  if (set.length > 0) return `the label${set.length > 1 ? "s" : ""} ${set.join(", ")} ${set.length > 1 ? "are" : "is"} corral's own: a service may not set ${set.length > 1 ? "them" : "it"}`;
  const fromImage = Object.keys((await o.runtime.imageLabels(step.pinned ?? spec.image)) ?? {}).filter((k) => k.startsWith("io.corral."));
  if (fromImage.length > 0) {
    const them = fromImage.length > 1 ? "them" : "it";
    const carries = `image ${spec.image} carries the label${fromImage.length > 1 ? "s" : ""} ${fromImage.join(", ")}`;
    return `${carries}: io.corral.* labels are corral's own, and a container would inherit ${them}; rebuild the image without ${them}`;
  }
  return undefined;
}

/**
 * The image a container is made from: exactly the revision's once pinned.
 * At a digest, written as Swarm does (`REPOSITORY:TAG@sha256:...`: the
 * engine looks it up by the digest). A local image's id: by its reference
 * while the tag still names that image here (what `docker ps` shows stays
 * readable), else by the id, the bytes the revision ran.
 */
async function exactReference(step: Step, spec: ServiceSpec, o: AgentOptions): Promise<string> {
  const pinned = step.pinned;
  if (!pinned) return spec.image;
  if (pinned.startsWith("sha256:")) return (await o.runtime.imageIdentity(spec.image))?.id === pinned ? spec.image : pinned;
  return `${spec.image.split("@")[0]!}@${pinned.split("@")[1]!}`;
}

/** A port the control plane gave no host port: never left to the engine, which would pick one outside the site's range. */
function unassignedPorts(name: string, spec: ServiceSpec): string | undefined {
  const unassigned = directPorts(spec).filter((p) => p.published === undefined);
  if (unassigned.length === 0) return undefined;
  const ports = unassigned.map((p) => `${p.target}/${p.protocol}`).join(", ");
  return `port${unassigned.length > 1 ? "s" : ""} ${ports} of ${name} came without a host port: the control plane gives each container its own; refusing to let the engine choose one`;
}

/**
 * The service's volumes as mounts on this host: a bind's real path (checked
 * against the site's roots and the service's user), a named volume made
 * where it is missing. A problem stops at the first mount that has one.
 */
async function volumeMounts(step: Step, spec: ServiceSpec, o: AgentOptions): Promise<{ mounts: MountRequest[] } | { problem: string }> {
  const mounts: MountRequest[] = [];
  for (const m of spec.volumes ?? []) {
    let source = m.source;
    if (m.type === "bind" && m.source) {
      // the API checked the path as written; here, on the host, what it really points at: that is what gets mounted
      const bind = await resolveBind(m.source, o.bindRoots ?? []);
      if ("problem" in bind) return { problem: bind.problem };
      source = bind.path;
      const problem = await bindProblem(source, spec.user, spec.group_add);
      if (problem) return { problem };
    }
    const declared = m.type === "volume" && m.source ? step.volumes?.[m.source] : undefined;
    if (declared) source = declared.name ?? m.source;
    if (declared && source) {
      await o.runtime.ensureVolume({
        name: source,
        ...(declared.driver ? { driver: declared.driver } : {}),
        ...(declared.driver_opts ? { driverOpts: declared.driver_opts } : {}),
        labels: { ...declared.labels, [L.stack]: step.stack },
        // a volume made with 'corral volume create' is created here, where the container lands
        external: (declared.external ?? false) && !declared.labels?.["io.corral.volume"],
      });
    }
    mounts.push({
      type: m.type,
      target: m.target,
      ...(source ? { source } : {}),
      ...(m.read_only ? { readOnly: true } : {}),
      ...(m.tmpfs?.size !== undefined ? { tmpfsSize: m.tmpfs.size } : {}),
      ...(m.tmpfs?.mode !== undefined ? { tmpfsMode: m.tmpfs.mode } : {}),
      ...(m.volume?.nocopy ? { noCopy: true } : {}),
      ...(m.bind?.propagation ? { propagation: m.bind.propagation } : {}),
    });
  }
  return { mounts };
}

/** Routed ports held by the router before the container exists; undefined once held, else why not. */
async function claimRoutes(spec: ServiceSpec, o: AgentOptions): Promise<string | undefined> {
  const routes = routedPorts(spec);
  if (routes.length === 0) return undefined;
  if (!o.router) return `ports ${routes.map((p) => p.published).join(", ")} are routed, and this agent runs no port router`;
  return o.router.claim(routes.map((p) => ({ ...(p.host_ip ? { hostIp: p.host_ip } : {}), published: p.published!, target: p.target })));
}

/**
 * Make the container: done when one made by this very step is there; a
 * leftover of the same service under the name is removed first, anyone
 * else's refused. Then what it needs on the host: its network, mounts,
 * secret files and routed ports.
 */
export const create: StepHandler<"create"> = async (step, { options: o, ensureNetwork }) => {
  const rt = o.runtime;
  const name = step.container ?? "";
  const existing = await rt.inspect(name);
  if (existing?.labels[L.step] === step.id) return { ok: true, alreadyDone: true, containerId: existing.id };
  if (existing) {
    if (existing.labels[L.stack] !== step.stack || existing.labels[L.service] !== step.service) {
      return { ok: false, error: `the name ${name} is taken by a container that is not ${step.stack}/${step.service}'s (${existing.id.slice(0, 12)})` };
    }
    await rt.remove(name); // a leftover of this service that the log no longer knows
  }
  if (!step.spec) return { ok: false, error: "create step without a service spec" };
  const spec = step.spec;
  const refused = unassignedPorts(name, spec) ?? (await reservedLabels(step, spec, o));
  if (refused) return { ok: false, error: refused };
  const network = stackNetwork(step.stack);
  const assigned = await ensureNetwork(network, step.stack);
  const volumes = await volumeMounts(step, spec, o);
  if ("problem" in volumes) return { ok: false, error: volumes.problem };
  const mounts = [...volumes.mounts, ...(await secretMounts(step, o))];
  const taken = await claimRoutes(spec, o);
  if (taken) return { ok: false, error: taken };
  const request = createSpecOf(step, { ...spec, image: await exactReference(step, spec, o) }, { hostId: o.hostId, controlId: o.controlId, mounts, assigned });
  const id = await rt.create(request).catch(async (e: unknown) => {
    // the stack's network went away under us (a removal of the same stack, just before): make it again, once
    if (!/network .* not found/i.test(engineMessage(e))) throw e;
    await ensureNetwork(network, step.stack);
    return rt.create(request);
  });
  return { ok: true, containerId: id };
};
