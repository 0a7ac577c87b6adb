/**
 * Engine names of a stack's containers: unambiguous across stacks, with
 * Rancher's `STACK-SERVICE-N` look wherever that look is unambiguous.
 *
 * A stack name is [a-z0-9-] (stackNamePattern), a service name a DNS label
 * [a-z0-9-] (serviceNamePattern: it is the first label of SERVICE.STACK.ENV.DOMAIN),
 * so neither holds '_' or '.'. With a dash in both, `a-b` + `c` and `a` + `b-c`
 * would both read `a-b-c-1`, so one side has to say where the stack ends:
 *
 * - a service without a dash: `STACK-SERVICE-N` (the last dash before the
 *   slot starts the service; the stack may hold dashes);
 * - a service with a dash: `STACK_SERVICE-N` (the underscore ends the stack);
 * - an old container kept aside by an upgrade: its slot's name + `-rREVISION`
 *   (a slot's name ends in digits, never in `-r` and digits);
 * - a scheduled job's run: `STACK-SERVICE.run-N` (or `STACK_SERVICE.run-N`):
 *   only a run's name holds a dot.
 *
 * parseEngineName reads every such name back: the names are one-to-one
 * (names.test.ts checks it as a property). Users see `STACK-SERVICE-N` for
 * every container (displayName); the engine's name may differ, as the
 * interface contract allows.
 */
/** A stack's name: a DNS label of lower-case letters, digits and '-' (model.ts re-exports it). */
export const stackNamePattern = /^[a-z0-9][a-z0-9-]{0,62}$/;

export const serviceNamePattern = /^[a-z0-9][a-z0-9-]{0,62}$/;

const stackEnd = (service: string) => (service.includes("-") ? "_" : "-");

/** A service's container in a slot. */
export const containerName = (stack: string, service: string, slot: number): string => `${stack}${stackEnd(service)}${service}-${slot}`;

/** An old container renamed aside by an upgrade (kept, stopped, until confirm or rollback). */
export const asideName = (name: string, revision: number): string => `${name}-r${revision}`;

/** A scheduled job's one-shot container, for its run number `run`. */
export const runContainerName = (stack: string, service: string, run: number): string => `${stack}${stackEnd(service)}${service}.run-${run}`;

/** The name users see and type: always `STACK-SERVICE-N` (and `-rR`, `.run-N`), whatever separator the engine's name needed. */
export const displayName = (engineName: string): string => (parseEngineName(engineName) ? engineName.replace("_", "-") : engineName);

export type EngineName =
  | { kind: "slot"; stack: string; service: string; slot: number }
  | { kind: "aside"; stack: string; service: string; slot: number; revision: number }
  | { kind: "run"; stack: string; service: string; run: number };

/** What an engine name made by the functions above stands for; undefined for any other name. */
export function parseEngineName(name: string): EngineName | undefined {
  const base = (b: string) => {
    const under = b.indexOf("_");
    const cut = under >= 0 ? under : b.lastIndexOf("-");
    if (cut <= 0) return undefined;
    const [stack, service] = [b.slice(0, cut), b.slice(cut + 1)];
    const valid = stackNamePattern.test(stack) && serviceNamePattern.test(service) && stackEnd(service) === b[cut];
    return valid ? { stack, service } : undefined;
  };
  const run = /^(.+)\.run-(\d+)$/.exec(name);
  if (run) {
    const b = base(run[1]!);
    return b && { kind: "run", ...b, run: Number(run[2]) };
  }
  const slot = /^(.+)-(\d+)(?:-r(\d+))?$/.exec(name);
  const b = slot && base(slot[1]!);
  if (!slot || !b) return undefined;
  return slot[3] === undefined ? { kind: "slot", ...b, slot: Number(slot[2]) } : { kind: "aside", ...b, slot: Number(slot[2]), revision: Number(slot[3]) };
}
