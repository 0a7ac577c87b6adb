import { z } from "zod";
import type { Step } from "@corral/core";
import { httpCall } from "./http.js";
import type { RegistryAccess } from "./options.js";

/**
 * What the API gives a host for a pull: a login, or to pull without one even
 * over a copy already here, or word that this host has reported the pull
 * done (a message that came again): no login, and nothing to pull.
 */
const registryAccess = z.union([
  z.object({ server: z.string().max(300), username: z.string().max(256), password: z.string().max(16 * 1024) }),
  z.object({ server: z.string().max(300), anonymous: z.literal(true) }),
  z.object({ server: z.string().max(300), reported: z.literal(true) }),
]);


/**
 * Ask the control plane for the login of a pull planned on this host (the
 * host's own token). 404 is the one answer that means "nobody has a login
 * for this registry": the pull goes as any public image's. "reported": this
 * host has reported this very pull done (see ensureImage). Anything else
 * that is not a login fails the pull, saying so; above all 409, the pull no
 * longer planned here (a newer plan replaced it): the host does not go on
 * to pull without the login it would have had.
 */
export function registryAuthFrom(apiUrl: string, hostId: string, token: () => string, reuseMs = 2_000) {
  // the steps of one stack pulling from one registry at once (ten services of one image) ask once: the answer
  // depends on the stack's owner and the registry, and each of those steps is one the control plane signed
  // for this host; a failure is never reused, and nothing is kept longer than reuseMs. "reported" is about one
  // step alone: never kept, and a step that shared the question of another asks for itself
  const recent = new Map<string, { at: number; stepId: string; answer: Promise<RegistryAccess | undefined> }>();
  return (step: Pick<Step, "id" | "stack">, server: string): Promise<RegistryAccess | undefined> => {
    const key = `${step.stack}\n${server}`;
    const now = Date.now();
    for (const [k, r] of recent) if (now - r.at > reuseMs) recent.delete(k);
    const kept = recent.get(key);
    if (kept) return kept.stepId === step.id ? kept.answer : kept.answer.then((a) => (a === "reported" ? ask(step, server) : a));
    const answer = ask(step, server);
    const entry = { at: now, stepId: step.id, answer };
    recent.set(key, entry);
    const forget = () => recent.get(key) === entry && recent.delete(key);
    answer.then((a) => a === "reported" && forget(), forget);
    return answer;
  };

  async function ask(step: Pick<Step, "id" | "stack">, server: string): Promise<RegistryAccess | undefined> {
    const q = new URLSearchParams({ stack: step.stack, step: step.id, server });
    const res = await httpCall(`${apiUrl}/v1/hosts/${encodeURIComponent(hostId)}/registry-auth?${q}`, { headers: { authorization: `Bearer ${token()}` } }, 30_000, 64 * 1024);
    const text = res.text;
    if (res.status === 404) return undefined;
    if (res.status < 200 || res.status > 299) {
      const said = (() => {
        try {
          return String((JSON.parse(text) as { message?: unknown }).message ?? text);
        } catch {
          return text;
        }
      })();
      throw new Error(`the login for registry ${server}: ${res.status} ${said.slice(0, 300)}`);
    }
    const access = registryAccess.parse(JSON.parse(text));
    return "password" in access ? access : "reported" in access ? "reported" : "anonymous";
  }
}
