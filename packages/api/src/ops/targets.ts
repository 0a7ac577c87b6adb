import { containerId, displayName, invalid, notFound, type ContainerRecord, type StackState } from "@corral/core";
import type { Principal } from "../auth.js";
import type { StackLookups } from "./lookups.js";

export type Target = { stack: StackState; service?: string; container?: ContainerRecord };

/** What a logs, exec, inspect or rm target names, among what the caller may see. */
export function targets({ existing, existingStacks }: Pick<StackLookups, "existing" | "existingStacks">) {
  /** STACK, STACK/SERVICE or CONTAINER, among what the caller may see; anything else answers 404. */
  async function resolveTarget(target: string, p: Principal): Promise<Target> {
    if (target.includes("/")) {
      const [stackName, service] = target.split("/", 2) as [string, string];
      const s = await existing(stackName, p);
      if (!s.services[service]) throw notFound(`stack ${s.name} has no service ${service} (services: ${Object.keys(s.services).join(", ")})`);
      return { stack: s, service };
    }
    const visible = await existingStacks(p);
    const stack = visible.find((s) => s.name === target);
    if (stack) return { stack };
    // a container by the name users see (STACK-SERVICE-N) or by the engine's: two stacks may show the same name
    // (a-b/c and a/b-c both show a-b-c-1; their engine names differ), so a name that fits more than one is refused
    // (or by its id, as ps shows it: the one way to name an upgrade's previous container, listed under its slot's name)
    const named = (c: ContainerRecord) => c.name === target || displayName(c.name) === target || containerId(c) === target;
    const found = visible.flatMap((s) => Object.values(s.containers).filter(named).map((container) => ({ stack: s, container })));
    if (found.length === 1) return found[0]!;
    if (found.length > 1) {
      // never a guess: logs or exec in another tenant's container because two names look alike
      const which = found.map((f) => `${f.stack.name}/${f.container.service} (engine name ${f.container.name})`).join(", ");
      throw invalid(`the name ${target} fits containers of several stacks: ${which}; name the service (STACK/SERVICE)`, "target");
    }
    throw notFound(`no stack, service or container named ${target}`);
  }

  /** The containers a logs or exec target names: a stack's, a service's (one slot for exec), or one container. */
  async function resolveContainers(target: string, p: Principal, slot?: number): Promise<{ containers: ContainerRecord[]; of: "stack" | "service" | "container" }> {
    const t = await resolveTarget(target, p);
    if (t.container) return { containers: [t.container], of: "container" };
    if (!t.service && slot !== undefined) throw invalid(`exec needs a service or a container, not the stack ${target}: '${target}/SERVICE' or a container name`, "target");
    const all = Object.values(t.stack.containers)
      .filter((x) => (!t.service || x.service === t.service) && !x.previousOf)
      .sort((a, b) => (a.service === b.service ? a.slot - b.slot : a.service < b.service ? -1 : 1));
    const chosen = slot === undefined ? all : all.filter((x) => x.slot === slot);
    if (chosen.length === 0) {
      const what = t.service ? `service ${target}` : `stack ${target}`;
      throw notFound(slot === undefined ? `${what} has no containers` : `${what} has no container in slot ${slot} (slots: ${all.map((x) => x.slot).join(", ") || "none"})`);
    }
    return { containers: chosen, of: t.service ? "service" : "stack" };
  }

  return { resolveTarget, resolveContainers };
}
