import type { HostState } from "./placement.js";

/** What an admin sets on a host: `active` takes new containers, `draining` keeps what it runs and takes none, `inactive` takes none. */
export type AdminHostState = Exclude<HostState, "disconnected">;
export const adminHostStates: readonly AdminHostState[] = ["active", "draining", "inactive"];

/** A host label's key: letters, digits and `._/-`, 1 to 63 characters (Docker's and Rancher's label keys fit). */
export const hostLabelKeyPattern = /^[a-zA-Z0-9._/-]{1,63}$/;
/** A host label's value: up to 63 printable characters, no spaces. */
export const hostLabelValuePattern = /^[\x21-\x7e]{0,63}$/;
/** The most labels a host carries. */
export const MAX_HOST_LABELS = 64;

/** Why `key=value` cannot be a host label, or undefined when it can. corral's own keys (io.corral.*) are the control plane's. */
export function hostLabelProblem(key: string, value: string): string | undefined {
  if (!hostLabelKeyPattern.test(key)) return `label key "${key.slice(0, 80)}": 1 to 63 characters of a-z A-Z 0-9 . _ / -`;
  if (/^io\.corral\./i.test(key)) return `label key "${key}": io.corral.* keys are corral's own`;
  if (!hostLabelValuePattern.test(value)) return `label ${key}: the value is up to 63 printable characters without spaces`;
  return undefined;
}

/** `k=v` as a label (the first '=' splits), or the reason it is not one. */
export function parseHostLabel(text: string): { key: string; value: string } | { problem: string } {
  const at = text.indexOf("=");
  if (at < 0) return { problem: `label "${text.slice(0, 80)}": write KEY=VALUE` };
  const key = text.slice(0, at);
  const value = text.slice(at + 1);
  const problem = hostLabelProblem(key, value);
  return problem ? { problem } : { key, value };
}

/**
 * A host's state as placement sees it: `disconnected` when its last
 * heartbeat is `staleMs` old or older (whatever the admin set: nothing
 * lands on a host nobody hears from), else the admin's state.
 */
export function hostState(admin: AdminHostState | undefined, lastSeen: number, now: number, staleMs: number): HostState {
  if (now - lastSeen >= staleMs) return "disconnected";
  return admin ?? "active";
}

/**
 * When a host was last heard of, for its state: its last heartbeat, or when
 * the control plane started (`heardSince`) if that came later. A control
 * plane that was down heard nobody, which says nothing of the hosts: each
 * gets its timeout from the start to beat again, before it counts as
 * disconnected and its containers move.
 */
export function lastHeard(lastSeen: number, heardSince: number | undefined): number {
  return heardSince === undefined ? lastSeen : Math.max(lastSeen, heardSince);
}

/** `3s ago`, `5m ago`, `2h ago`, `4d ago`; `never` for no time. */
export function ago(then: number | undefined, now: number): string {
  if (!then) return "never";
  const s = Math.max(0, Math.floor((now - then) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}
