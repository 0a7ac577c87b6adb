import { cronLabels } from "../cron.js";
import { perContainerPorts } from "../host-ports.js";
import type { ServiceSpec } from "../model.js";
import { isSchedulingLabel, placementRules } from "../placement.js";
import { isRecord, type Collector } from "./issues.js";
import { serviceKeys } from "./service-keys.js";

/** The io.corral.* labels a user may set on purpose (scheduled jobs); every other one is corral's own, on every label source. */
const userCorralLabels: ReadonlySet<string> = new Set(Object.values(cronLabels));

/**
 * io.corral.* labels are corral's own, except the scheduled jobs' and, on a
 * service's own labels (`scheduling`), the scheduler's (io.corral.scheduler.*):
 * those only steer where the control plane places containers, which the
 * user may choose; nothing on a host reads them.
 */
export function reservedLabels(c: Collector, labels: Record<string, string> | undefined, path: string, scheduling = false) {
  for (const key of Object.keys(labels ?? {})) {
    if (key.toLowerCase().startsWith("io.corral.") && !userCorralLabels.has(key) && !(scheduling && isSchedulingLabel(key))) {
      c.fail(`${path}.${key}`, `the io.corral. prefix is reserved for corral (a user may set ${[...userCorralLabels].join(" and ")}${scheduling ? ", and io.corral.scheduler.* on a service" : ""})`);
    }
  }
}

/**
 * A service's placement, as the scheduler reads it (scheduling labels,
 * deploy.placement, deploy.mode): each bad rule refused at its key. A
 * global service's ports need their host port: it has no slots to give
 * each container its own from the range.
 */
function placementProblems(c: Collector, name: string, spec: ServiceSpec, base: string) {
  const rules = placementRules(spec, { stack: "stack", service: name });
  if ("problems" in rules) {
    for (const problem of rules.problems) {
      const at = problem.indexOf(": ");
      const key = problem.slice(0, at).replace(/\[(\d+)\]/g, ".$1");
      // a constraint or preference corral cannot read is one it does not support (a lenient parse goes on); a bad label is an error
      if (key.startsWith("deploy.placement.")) c.unknown(`${base}.${key}`, problem.slice(at + 2));
      else c.fail(`${base}.${key}`, problem.slice(at + 2));
    }
    return;
  }
  if (rules.global) {
    const index = spec.ports.findIndex((p) => perContainerPorts(spec).includes(p));
    if (index >= 0) c.fail(`${base}.ports.${index}`, `a global service's port needs a host port (write "8080:${spec.ports[index]!.target}"): it runs one container per host`);
  }
}

/** One service as the model holds it: each key read by its handler (serviceKeys), then what holds across keys. */
export function normalizeService(c: Collector, name: string, raw: unknown): ServiceSpec | undefined {
  const base = `services.${name}`;
  if (!isRecord(raw)) {
    c.fail(base, "must be a mapping");
    return undefined;
  }
  const spec: Partial<ServiceSpec> = {};
  const extensions: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (key.startsWith("x-")) {
      extensions[key] = value;
      continue;
    }
    // own keys only: "constructor" or "__proto__" is no key of a service, whatever Object.prototype holds
    const handler = Object.hasOwn(serviceKeys, key) ? serviceKeys[key] : undefined;
    if (!handler) {
      c.unknown(`${base}.${key}`);
      continue;
    }
    if (value === null && key !== "image") continue; // `key:` with nothing is as good as absent
    handler(c, spec, value, `${base}.${key}`);
  }
  // an image written but refused has said so already
  if (spec.image === undefined && spec.build === undefined && (raw.image === undefined || raw.image === null)) c.fail(`${base}.image`, "is required");
  reservedLabels(c, spec.labels, `${base}.labels`, true);
  reservedLabels(c, spec.deploy?.labels, `${base}.deploy.labels`);
  const scale = spec.deploy?.replicas ?? spec.scale ?? 1;
  if (spec.deploy?.replicas !== undefined && spec.scale !== undefined && spec.deploy.replicas !== spec.scale) {
    c.fail(`${base}.scale`, `scale (${spec.scale}) and deploy.replicas (${spec.deploy.replicas}) disagree`);
  }
  const out: ServiceSpec = {
    ...spec,
    image: spec.image ?? "",
    environment: spec.environment ?? {},
    labels: spec.labels ?? {},
    ports: spec.ports ?? [],
    cap_add: spec.cap_add ?? [],
    cap_drop: spec.cap_drop ?? [],
    scale,
  };
  if (Object.keys(extensions).length > 0) out.extensions = extensions;
  placementProblems(c, name, out, base);
  return out;
}
