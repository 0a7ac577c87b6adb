import { isIP } from "node:net";
import { DIGEST, splitImage, type ImageCheck } from "@corral/core";

/**
 * What an image reference names now, asked of its registry: the manifest's
 * content digest (Docker-Content-Digest of a HEAD on /v2/NAME/manifests/TAG,
 * accepting manifest lists and OCI indexes, so it is the digest `docker pull`
 * records), with the stack's login when there is one (Basic, or a Bearer
 * token from the registry's realm). A reference the registry cannot be
 * asked about is `unchecked`, with why: the revision then pins what the
 * first pull gets (see core's images.ts).
 *
 * The control plane makes these requests from its own network, for
 * references a user wrote: HTTPS only, no redirects, and no loopback,
 * link-local or private address (written, or as a token realm), unless the
 * site lists that registry as insecure (`insecureRegistries`, as Docker's).
 */
export type ImageResolver = (image: string, login?: LoginLookup) => Promise<ImageCheck>;

/**
 * The stack's login for the image's registry, looked up only once the
 * registry asks for one (a 401): an `up` whose registry answers without
 * one, or is known unreachable, reads no login (two store reads) at all.
 */
export type LoginLookup = () => Promise<{ username: string; password: string } | undefined>;

const ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

/** Addresses a request a user steers must not reach: the control plane's own machine and network. */
function internal(host: string): boolean {
  const name = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (name === "localhost" || name.endsWith(".localhost") || name.endsWith(".internal")) return true;
  const v = isIP(name);
  if (v === 4) {
    const [a, b] = name.split(".").map(Number) as [number, number];
    const privateNet = a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127) || (a === 198 && (b === 18 || b === 19));
    return a === 0 || a === 127 || (a === 169 && b === 254) || privateNet;
  }
  if (v === 6) return name === "::1" || name === "::" || /^f[cd]/.test(name) || /^fe[89ab]/.test(name) || name.startsWith("::ffff:");
  return false;
}

export interface ResolverOptions {
  /** Registries (HOST or HOST:PORT) asked over plain HTTP, and allowed on internal addresses. */
  insecure?: string[];
  timeoutMs?: number;
  /** How long a registry that could not be reached is not asked again (default 30 s). */
  downForMs?: number;
  clock?: () => number;
  fetch?: typeof fetch;
}

export function registryResolver(options: ResolverOptions = {}): ImageResolver {
  const insecure = new Set((options.insecure ?? []).map((r) => r.toLowerCase()));
  const timeoutMs = options.timeoutMs ?? 3000;
  const downForMs = options.downForMs ?? 30_000;
  const clock = options.clock ?? Date.now;
  const get = options.fetch ?? fetch;
  const down = new Map<string, { until: number; why: string }>();
  const listed = (hostPort: string) => insecure.has(hostPort.toLowerCase()) || insecure.has(hostPort.toLowerCase().replace(/:\d+$/, ""));
  /** The URL a request may go to, or why not. */
  const allowed = (url: URL, registry: string): string | undefined => {
    const mayBeInternal = listed(registry) && url.host.toLowerCase() === registry.toLowerCase();
    if (url.protocol === "http:" && !listed(url.host)) return `${url.host} is not an insecure registry of this site: asked over HTTPS only`;
    if (url.protocol !== "https:" && url.protocol !== "http:") return `${url.protocol} is no registry's scheme`;
    if (internal(url.hostname) && !mayBeInternal) return `${url.hostname} is a private address the control plane does not ask (a site lists such a registry in insecureRegistries)`;
    return undefined;
  };
  const request = (url: URL, headers: Record<string, string>, method: "HEAD" | "GET") =>
    get(url, { method, headers, redirect: "manual", signal: AbortSignal.timeout(timeoutMs) });

  async function token(challenge: string, registry: string, repo: string, login?: { username: string; password: string }): Promise<string | { problem: string }> {
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!.toLowerCase(), m[2]!]));
    if (!params.realm) return { problem: "its login challenge names no realm" };
    let realm: URL;
    try {
      realm = new URL(params.realm);
    } catch {
      return { problem: "its login realm is no URL" };
    }
    const refused = allowed(realm, registry);
    if (refused) return { problem: `its login realm: ${refused}` };
    if (params.service) realm.searchParams.set("service", params.service);
    realm.searchParams.set("scope", params.scope ?? `repository:${repo}:pull`);
    const headers: Record<string, string> = login ? { authorization: `Basic ${Buffer.from(`${login.username}:${login.password}`).toString("base64")}` } : {};
    const res = await request(realm, headers, "GET");
    if (!res.ok) return { problem: `its login realm answered ${res.status}` };
    const text = await res.text();
    if (text.length > 64 * 1024) return { problem: "its login realm's answer is too large" };
    let body: { token?: unknown; access_token?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      return { problem: "its login realm's answer is not JSON" };
    }
    const t = typeof body.token === "string" ? body.token : typeof body.access_token === "string" ? body.access_token : undefined;
    return t ?? { problem: "its login realm gave no token" };
  }

  return async (image, lookup) => {
    const ref = splitImage(image);
    const registry = ref.registry ?? "registry-1.docker.io";
    const repo = ref.registry ? ref.repository : ref.repository.includes("/") ? ref.repository : `library/${ref.repository}`;
    const shown = ref.registry ?? "docker.io";
    const known = down.get(registry);
    if (known && known.until > clock()) return { unchecked: known.why };
    let url: URL;
    try {
      url = new URL(`${listed(registry) ? "http" : "https"}://${registry}/v2/${repo}/manifests/${ref.tag ?? "latest"}`);
    } catch {
      return { unchecked: `${image} names no registry address` };
    }
    const refused = allowed(url, registry);
    if (refused) return { unchecked: refused };
    try {
      let res = await request(url, { accept: ACCEPT }, "HEAD");
      let login: { username: string; password: string } | undefined;
      if (res.status === 401) {
        login = lookup ? await lookup().catch(() => undefined) : undefined;
        const challenge = res.headers.get("www-authenticate") ?? "";
        if (/^bearer /i.test(challenge)) {
          const t = await token(challenge, registry, repo, login);
          if (typeof t !== "string") return { unchecked: `registry ${shown}: ${t.problem}` };
          res = await request(url, { accept: ACCEPT, authorization: `Bearer ${t}` }, "HEAD");
        } else if (/^basic /i.test(challenge) && login) {
          res = await request(url, { accept: ACCEPT, authorization: `Basic ${Buffer.from(`${login.username}:${login.password}`).toString("base64")}` }, "HEAD");
        }
      }
      const who = login ? "the stack's login" : "to answer without a login ('corral registry add')";
      if (res.status === 401 || res.status === 403) return { unchecked: `registry ${shown} refused ${who} (${res.status})` };
      if (res.status === 404) return { unchecked: `registry ${shown} has no ${repo}:${ref.tag ?? "latest"}` };
      if (!res.ok) return { unchecked: `registry ${shown} answered ${res.status}` };
      const digest = res.headers.get("docker-content-digest") ?? "";
      return DIGEST.test(digest) ? { digest } : { unchecked: `registry ${shown} gave no content digest` };
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).name;
      const why = `registry ${shown} could not be reached (${cause === "TimeoutError" ? `no answer in ${timeoutMs} ms` : cause})`;
      down.set(registry, { until: clock() + downForMs, why });
      return { unchecked: why };
    }
  };
}
