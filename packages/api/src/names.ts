import { invalid, stackNamePattern } from "@corral/core";
import { canSee, type Principal } from "./auth.js";

/**
 * Secrets are named SERVICE.STACK.FILE and volumes SERVICE.STACK: a name
 * belongs to whoever owns STACK (a removed stack keeps its owner), and while
 * nobody owns STACK, to whoever made the record first (anyone may create
 * STACK then). A record made before the stack had an owner, by someone who is
 * neither the stack's owner nor in its group, is stale: nobody but the admin
 * sees it, and the stack's owner may take the name over.
 */
export interface Holder {
  owner?: string;
  group?: string;
}

const servicePattern = /^[a-zA-Z0-9][a-zA-Z0-9_-]*$/;

/** The stack a secret's name names, or 400 when the name is not SERVICE.STACK.FILE. */
export function secretStack(name: string): string {
  const [service = "", stack = "", ...file] = name.split(".");
  if (name.length > 128 || !servicePattern.test(service) || !stackNamePattern.test(stack) || file.length === 0 || !/^[a-zA-Z0-9_.-]+$/.test(file.join("."))) {
    throw invalid(`invalid secret name "${name.slice(0, 130)}": a secret is named SERVICE.STACK.FILE (e.g. web.mystack.password), after the stack that mounts it`, "name");
  }
  return stack;
}

/** The stack a volume's name (SERVICE.STACK, checked by the route's schema) names. */
export const volumeStack = (name: string): string => name.split(".")[1] ?? "";

/** Whether a record (its owner and group) is the stack's: made by its owner or within its group, or while nobody owned it. */
export const belongsToStack = (record: Holder, stack: Holder): boolean =>
  stack.owner === undefined || record.owner === stack.owner || (record.group !== undefined && record.group === stack.group);

/** Whether `p` may see, mount, replace or remove a record named after a stack held by `stack`. */
export const mayUse = (p: Principal, record: Holder, stack: Holder): boolean =>
  p.admin || (canSee(p, record.owner, record.group) && belongsToStack(record, stack) && (stack.owner === undefined || canSee(p, stack.owner, stack.group)));

/** Whether `p` may create a record named after this stack: it is p's stack, or nobody's yet. */
export const mayName = (p: Principal, stack: Holder): boolean => stack.owner === undefined || canSee(p, stack.owner, stack.group);
