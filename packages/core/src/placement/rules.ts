import type { ServiceSpec } from "../model.js";
import { directPorts, routedPorts } from "../ports.js";
import type { Placed, PlacementRules, Rule } from "./types.js";

// reading a service's placement rules from its labels and deploy section

const prefixes = ["io.corral.scheduler.", "io.rancher.scheduler."] as const;
const affinityKinds = ["host_label", "host_label_ne", "host_label_soft", "host_label_soft_ne", "container_label", "container_label_ne", "container_label_soft", "container_label_soft_ne"] as const;

/** Is this a scheduling label (for compose validation: a user may set these io.corral.* keys)? */
export const isSchedulingLabel = (key: string): boolean => prefixes.some((p) => key.startsWith(p));

/** The scheduling labels corral understands, in its own spelling. */
export const schedulingLabels: readonly string[] = ["io.corral.scheduler.global", ...affinityKinds.map((k) => `io.corral.scheduler.affinity:${k}`)];

/**
 * The labels a container is matched on by container-label rules: its own
 * labels, then corral's, which win over any of the same name:
 * `io.corral.stack=STACK`, `io.corral.service=SERVICE` and
 * `io.corral.stack_service=STACK/SERVICE`.
 *
 * In a rule, `io.corral.service=db` means service db of the rule's own stack
 * (it is read as `io.corral.stack_service=STACK/db`), `io.corral.service=other/db`
 * names another stack's; Rancher's `io.rancher.stack_service.name=STACK/SERVICE`
 * and `io.rancher.stack.name=STACK` are read as corral's.
 */
export function containerLabels(c: Pick<Placed, "stack" | "service" | "labels">): Record<string, string> {
  return { ...c.labels, "io.corral.stack": c.stack, "io.corral.service": c.service, "io.corral.stack_service": `${c.stack}/${c.service}` };
}

function containerRuleKey(key: string, value: string, stack: string): [string, string] {
  const qualified = (v: string) => (v.includes("/") ? v : `${stack}/${v}`);
  if (key === "io.corral.service" || key === "io.corral.stack_service" || key === "io.rancher.stack_service.name") return ["io.corral.stack_service", qualified(value)];
  if (key === "io.rancher.stack.name") return ["io.corral.stack", value];
  return [key, value];
}

/**
 * The placement rules of a service, from its labels and deploy section; bad
 * rule text gives problems, each naming its key (`labels.KEY` or
 * `deploy.placement.constraints[i]`) for the caller to prefix with file and service.
 */
export function placementRules(spec: ServiceSpec, names: { stack: string; service: string }): PlacementRules | { problems: string[] } {
  const problems: string[] = [];
  const required: Rule[] = [];
  const preferred: Rule[] = [];
  const substitute = (v: string) => v.replaceAll("${stack_name}", names.stack).replaceAll("${service_name}", names.service);
  let labelGlobal: boolean | undefined;
  let globalKey = "";

  for (const [key, raw] of Object.entries(spec.labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const prefix = prefixes.find((p) => key.startsWith(p));
    if (!prefix) continue;
    const from = `labels.${key}`;
    const name = key.slice(prefix.length);
    if (name === "global") {
      const v = raw.trim().toLowerCase();
      if (v !== "true" && v !== "false") problems.push(`${from}: must be "true" or "false", not "${raw}"`);
      else if (labelGlobal !== undefined && labelGlobal !== (v === "true")) problems.push(`${from}: says "${v}", but ${globalKey} says "${labelGlobal}"`);
      else {
        labelGlobal = v === "true";
        globalKey = from;
      }
      continue;
    }
    const kind = name.startsWith("affinity:") ? (affinityKinds as readonly string[]).find((k) => k === name.slice("affinity:".length)) : undefined;
    if (!kind) {
      problems.push(`${from}: unknown scheduling label (corral understands ${schedulingLabels.map((l) => l.slice("io.corral.scheduler.".length)).join(", ")})`);
      continue;
    }
    const pairs = raw.split(",").map((p) => p.trim()).filter((p) => p !== "");
    if (pairs.length === 0) problems.push(`${from}: needs key=value pairs, comma-separated`);
    for (const pair of pairs) {
      const eq = pair.indexOf("=");
      const k = eq < 0 ? "" : pair.slice(0, eq).trim();
      const v = eq < 0 ? "" : substitute(pair.slice(eq + 1).trim());
      if (!k || !v) {
        problems.push(`${from}: "${pair}" is not key=value`);
        continue;
      }
      const onContainer = kind.startsWith("container_label");
      const [rk, rv] = onContainer ? containerRuleKey(k, v, names.stack) : [k, v];
      const rule: Rule = { kind: onContainer ? "containerLabel" : "hostLabel", key: rk, value: rv, negate: kind.endsWith("_ne"), text: `${k}=${v}`, from };
      (kind.includes("_soft") ? preferred : required).push(rule);
    }
  }

  const placement = spec.deploy?.placement;
  (placement?.constraints ?? []).forEach((c, i) => {
    const from = `deploy.placement.constraints[${i}]`;
    const rule = parseConstraint(c, from);
    if (typeof rule === "string") problems.push(`${from}: ${rule}`);
    else required.push(rule);
  });

  const spreadOver: string[] = [];
  (placement?.preferences ?? []).forEach((p, i) => {
    const m = /^\s*(?:node|engine)\.labels\.([^\s=!]+)\s*$/.exec(p.spread);
    if (m) spreadOver.push(m[1]!);
    else problems.push(`deploy.placement.preferences[${i}].spread: "${p.spread}" is not node.labels.KEY`);
  });

  const max = placement?.max_replicas_per_node;
  if (max !== undefined && max < 0) problems.push(`deploy.placement.max_replicas_per_node: must be 0 (no limit) or more, not ${max}`);

  const mode = spec.deploy?.mode;
  if (labelGlobal === true && mode === "replicated") problems.push(`deploy.mode: replicated, but ${globalKey} says "true"`);
  if (labelGlobal === false && mode === "global") problems.push(`deploy.mode: global, but ${globalKey} says "false"`);

  if (problems.length) return { problems };
  const published = (ps: ServiceSpec["ports"]) => [...new Set(ps.flatMap((p) => (p.published === undefined ? [] : [p.published])))].sort((a, b) => a - b);
  return {
    required,
    preferred,
    spreadOver,
    ...(max ? { maxPerHost: max } : {}),
    global: labelGlobal ?? mode === "global",
    ports: published(directPorts(spec)),
    routedPorts: published(routedPorts(spec)),
    labels: Object.fromEntries(Object.entries(spec.labels ?? {}).filter(([k]) => !isSchedulingLabel(k))),
  };
}

const attrs: ReadonlyMap<string, string> = new Map([
  ["node.id", "id"],
  ["node.hostname", "hostname"],
  ["node.role", "role"],
  ["node.platform.os", "platform.os"],
  ["node.platform.arch", "platform.arch"],
]);

function parseConstraint(text: string, from: string): Rule | string {
  const m = /^\s*([^\s=!]+)\s*(==|!=)\s*(\S(?:.*\S)?)\s*$/.exec(text);
  if (!m) return `"${text}" is not a constraint (write node.labels.KEY==VALUE, node.hostname!=NAME, node.role==manager, ...)`;
  const [, attr, op, value] = m as unknown as [string, string, string, string];
  const negate = op === "!=";
  const label = /^(?:node|engine)\.labels\.(.+)$/.exec(attr);
  if (label) return { kind: "hostLabel", key: label[1]!, value, negate, text: text.trim(), from };
  const a = attrs.get(attr);
  if (!a) return `"${attr}" is not a constraint corral knows (node.labels.KEY, engine.labels.KEY, ${[...attrs.keys()].join(", ")})`;
  if (a === "role" && value !== "manager" && value !== "worker") return `node.role is manager or worker, not "${value}"`;
  return { kind: "hostAttr", key: a, value, negate, text: text.trim(), from };
}
