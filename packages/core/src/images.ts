import type { RevisionService } from "./events.js";

/*
 * Exact revisions: a revision keeps each service's image as written and
 * what that reference meant when the revision was made, its content digest
 * (the registry's manifest digest, the same bytes on every host), or, for an
 * image no registry knows (built or loaded on a host), its image id on each
 * host that ran it. Every container of the revision is made from that.
 */

export const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** The registry an image comes from, as Docker reads a reference. */
export function registryOf(image: string): string {
  const first = image.split("/")[0]!;
  if (image.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost")) return first;
  return "docker.io";
}

/** What the control plane learnt of an image reference at `up`: its digest, or why it could not tell. */
export type ImageCheck = { digest: string } | { unchecked: string };

/** The image's repository as written, without its tag or digest: `reg:5000/app/web:2@sha256:..` → `reg:5000/app/web`. */
export function repositoryOf(image: string): string {
  const [rest] = image.split("@") as [string];
  const slash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  return colon > slash ? rest.slice(0, colon) : rest;
}

/** The tag a reference names (`latest` when it names none); undefined for a reference by digest only. */
export function tagOf(image: string): string | undefined {
  const [rest, digest] = image.split("@") as [string, string?];
  const slash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > slash) return rest.slice(colon + 1);
  return digest ? undefined : "latest";
}

/** A digest written in the reference itself (`app@sha256:...`): pinned as written. */
export function writtenDigest(image: string): string | undefined {
  const digest = image.split("@")[1];
  return digest && DIGEST.test(digest) ? digest : undefined;
}

/** The digest a revision's service runs at: the registry's, else one written in the reference; undefined for an image no registry gave (pinned by image id, or not yet). */
export const pinnedDigest = (service: Pick<RevisionService, "spec" | "digest">): string | undefined => service.digest ?? writtenDigest(service.spec.image);

/**
 * The image a container of this revision is made from on `host`: the
 * repository at its digest (the engine pulls exactly that), else the image
 * id that host ran it with; undefined when nothing is pinned yet (the first
 * pull pins it).
 */
export function exactImage(service: Pick<RevisionService, "spec" | "digest" | "ids">, host: string): string | undefined {
  const digest = pinnedDigest(service);
  if (digest) return `${repositoryOf(service.spec.image)}@${digest}`;
  return service.ids?.[host];
}

/** The short form people read: `sha256:8ddf0c1a2b3c`. */
export const shortDigest = (digest: string) => digest.slice(0, "sha256:".length + 12);
