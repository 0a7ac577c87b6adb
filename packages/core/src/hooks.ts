import { z } from "zod";

/**
 * Webhook payloads as their senders send them, read into what corral acts
 * on: image pushes (repository, tag), a git push (a ref), or a generic
 * `{service, image}`. Pure: signatures are checked before this, by the API.
 */
export const hookKinds = ["registry", "dockerhub", "github", "generic"] as const;
export type HookKind = (typeof hookKinds)[number];

/** An image pushed: its repository path (`team/app`), the registry it went to when the sender says (`registry.example:5000`), its tag. */
export interface ImagePush {
  repository: string;
  registry?: string;
  tag: string;
}

export type Delivery =
  | { kind: "images"; pushes: ImagePush[]; callback?: string }
  | { kind: "git"; ref: string }
  | { kind: "generic"; service: string; image: string }
  | { kind: "ignored"; why: string };

const bounded = z.string().min(1).max(512);
const registryEnvelope = z.object({
  events: z
    .array(
      z.object({
        id: z.string().max(128).optional(),
        action: z.string().max(32),
        target: z.object({ repository: bounded, tag: z.string().max(128).optional(), mediaType: z.string().max(256).optional() }).passthrough(),
        request: z.object({ host: z.string().max(259).optional() }).passthrough().optional(),
      }).passthrough(),
    )
    .max(100),
});
const dockerHub = z.object({
  push_data: z.object({ tag: z.string().min(1).max(128) }).passthrough(),
  repository: z.object({ repo_name: bounded }).passthrough(),
  callback_url: z.string().max(2048).optional(),
});
const githubPackage = z.object({
  action: z.string().max(32),
  package: z
    .object({
      name: bounded,
      namespace: z.string().max(256).optional(),
      owner: z.object({ login: z.string().max(256) }).passthrough().optional(),
      package_type: z.string().max(64).optional(),
      package_version: z
        .object({
          container_metadata: z.object({ tag: z.object({ name: z.string().max(128) }).passthrough() }).passthrough().optional(),
          package_url: z.string().max(1024).optional(),
        })
        .passthrough()
        .optional(),
    })
    .passthrough(),
});
const githubPush = z.object({ ref: z.string().min(1).max(256) }).passthrough();
/** A generic body may carry when it was made (epoch seconds, signed with the rest): then it is good for 5 minutes only, and an old body sent again is refused. */
const generic = z.object({ service: z.string().min(1).max(63), image: z.string().min(1).max(512), timestamp: z.number().int().min(0).optional() }).strict();
export const GENERIC_WINDOW_S = 5 * 60;

const tagPattern = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** What a delivery asks for, or why it asks for nothing; a body that is none of the sender's shapes is an error (400). */
export function readDelivery(kind: HookKind, event: string | undefined, body: unknown, nowS = Math.floor(Date.now() / 1000)): Delivery | { error: string } {
  const fail = (e: z.ZodError) => ({ error: `not a ${kind} payload: ${e.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ")}` });
  switch (kind) {
    case "registry": {
      const p = registryEnvelope.safeParse(body);
      if (!p.success) return fail(p.error);
      const pushes = p.data.events
        .filter((e) => e.action === "push" && e.target.tag && tagPattern.test(e.target.tag))
        .map((e) => ({ repository: e.target.repository, tag: e.target.tag!, ...(e.request?.host ? { registry: e.request.host } : {}) }));
      return pushes.length ? { kind: "images", pushes } : { kind: "ignored", why: "no push of a tag" };
    }
    case "dockerhub": {
      const p = dockerHub.safeParse(body);
      if (!p.success) return fail(p.error);
      if (!tagPattern.test(p.data.push_data.tag)) return { error: `not a dockerhub payload: push_data.tag: "${p.data.push_data.tag.slice(0, 40)}" is not a tag` };
      const callback = dockerHubCallback(p.data.callback_url);
      return { kind: "images", pushes: [{ repository: p.data.repository.repo_name, registry: "docker.io", tag: p.data.push_data.tag }], ...(callback ? { callback } : {}) };
    }
    case "github": {
      if (event === "ping") return { kind: "ignored", why: "ping" };
      if (event === "push") {
        const p = githubPush.safeParse(body);
        return p.success ? { kind: "git", ref: p.data.ref } : fail(p.error);
      }
      if (event === "package" || event === "registry_package") {
        const p = githubPackage.safeParse(body);
        if (!p.success) return fail(p.error);
        if (p.data.action !== "published") return { kind: "ignored", why: `package ${p.data.action}` };
        const tag = p.data.package.package_version?.container_metadata?.tag.name;
        if (!tag || !tagPattern.test(tag)) return { kind: "ignored", why: "no container tag" };
        const owner = (p.data.package.owner?.login ?? p.data.package.namespace ?? "").toLowerCase();
        return { kind: "images", pushes: [{ repository: `${owner ? `${owner}/` : ""}${p.data.package.name.toLowerCase()}`, registry: "ghcr.io", tag }] };
      }
      return { kind: "ignored", why: `event ${String(event ?? "none").slice(0, 40)}` };
    }
    case "generic": {
      const p = generic.safeParse(body);
      if (!p.success) return fail(p.error);
      if (p.data.timestamp !== undefined && Math.abs(nowS - p.data.timestamp) > GENERIC_WINDOW_S) {
        return { error: `not a fresh generic payload: timestamp ${p.data.timestamp} is more than ${GENERIC_WINDOW_S} s from now` };
      }
      return { kind: "generic", service: p.data.service, image: p.data.image };
    }
  }
}

/** An image reference split: registry (none for Docker Hub's), repository path, tag (none: latest), digest. */
export function splitImage(image: string): { registry?: string; repository: string; tag?: string; digest?: string } {
  const [rest, digest] = image.split("@") as [string, string?];
  const slash = rest.indexOf("/");
  const first = slash < 0 ? "" : rest.slice(0, slash);
  const hasRegistry = slash >= 0 && (first.includes(".") || first.includes(":") || first === "localhost");
  const path = hasRegistry ? rest.slice(slash + 1) : rest;
  const colon = path.lastIndexOf(":");
  const repository = colon < 0 ? path : path.slice(0, colon);
  const tag = colon < 0 ? undefined : path.slice(colon + 1);
  let registry = hasRegistry ? first : undefined;
  let repo = repository;
  // Docker Hub's names: docker.io/library/nginx is nginx
  if (registry === "docker.io" || registry === "index.docker.io" || registry === "registry-1.docker.io") registry = undefined;
  if (!registry && repo.startsWith("library/")) repo = repo.slice("library/".length);
  return { ...(registry ? { registry } : {}), repository: repo, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** `v*`, `release-?.*`, `*`: a tag filter in shell glob syntax (no pattern: every tag). */
export function tagMatches(pattern: string | undefined, tag: string): boolean {
  if (!pattern) return true;
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);
  return re.test(tag);
}

/**
 * The services a push upgrades, and the image each goes to: those (of the
 * hook's, all when it names none) whose image is of the pushed repository
 * (and registry, when the sender names it), when the tag passes the hook's
 * filter. A service already on that image is left out (nothing to do).
 */
export function pushTargets(services: Record<string, { image: string }>, only: readonly string[], push: ImagePush, tagFilter?: string): Array<{ service: string; image: string }> {
  if (!tagMatches(tagFilter, push.tag)) return [];
  const wanted = splitImage(`${push.registry && push.registry !== "docker.io" ? `${push.registry}/` : ""}${push.repository}`);
  const out: Array<{ service: string; image: string }> = [];
  for (const [name, s] of Object.entries(services)) {
    if (only.length && !only.includes(name)) continue;
    const have = splitImage(s.image);
    if (have.repository !== wanted.repository) continue;
    // a registry notification names its host as clients reached it; a service's image may name it otherwise (no port): the repository decides then
    if (push.registry && have.registry !== wanted.registry && !(have.registry && wanted.registry && have.registry.split(":")[0] === wanted.registry.split(":")[0])) continue;
    const image = `${have.registry ? `${have.registry}/` : ""}${have.repository}:${push.tag}`;
    if (image !== s.image) out.push({ service: name, image });
  }
  return out;
}

/**
 * Docker Hub's callback_url, when it is Docker Hub's: HTTPS to
 * registry.hub.docker.com, nothing else (the payload is not signed: a URL
 * anyone could write must not make corral call elsewhere).
 */
export function dockerHubCallback(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const u = new URL(url);
    return u.protocol === "https:" && u.hostname === "registry.hub.docker.com" && u.port === "" && !u.username && !u.password ? u.toString() : undefined;
  } catch {
    return undefined;
  }
}
