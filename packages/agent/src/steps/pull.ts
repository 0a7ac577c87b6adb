import { registryOf, repositoryOf, shortDigest, splitImage, type PulledImage, type Step } from "@corral/core/host";
import { statusOf } from "../engine-errors.js";
import type { AgentOptions } from "../options.js";
import type { StepHandler } from "./types.js";

/** A repository as registries name it, so that `docker.io/library/nginx` and `nginx` are one. */
const sameRepository = (a: string, b: string) => {
  const [x, y] = [splitImage(a), splitImage(b)];
  return x.registry === y.registry && x.repository === y.repository;
};

type Identity = NonNullable<Awaited<ReturnType<AgentOptions["runtime"]["imageIdentity"]>>>;

/** What the host has under the image: its id, and the digest the step's repository knows it by (RepoDigests). */
export async function pulledImage(step: Step, o: AgentOptions, known?: Identity): Promise<PulledImage | undefined> {
  const found = known ?? (await o.runtime.imageIdentity(step.pinned ?? step.image));
  if (!found) return undefined;
  const repository = repositoryOf(step.image);
  const digest = found.repoDigests.map((d) => d.split("@")).find(([repo, dg]) => repo && dg && sameRepository(repo, repository))?.[1];
  return { id: found.id, ...(digest ? { digest } : {}) };
}

/**
 * Make sure a step's image is on the host, exactly the revision's once it
 * is pinned (REPOSITORY@DIGEST, or the image id this host ran it as):
 * pulled when missing or forced, and always from a private registry (one
 * corral holds logins for), with the login the API gives this host for
 * this step, if any. `had`: what the host had under it when nothing was
 * pulled (one look at the engine, which the pull step reports from).
 */
export async function ensureImage(step: Step, force: boolean, o: AgentOptions): Promise<{ pulled: false; had: Identity } | { pulled: true }> {
  const wanted = step.pinned ?? step.image;
  if (step.pinned?.startsWith("sha256:")) {
    // a local image's id: no registry can give it back
    const had = await o.runtime.imageIdentity(wanted);
    if (had) return { pulled: false, had };
    throw new Error(
      `image ${step.image} of revision ${step.revision} ran as ${shortDigest(wanted)} on this host, which no longer has it; an image without a registry digest cannot be pulled again ` +
        `(push it to a registry, or load it on this host again and run 'corral up --upgrade --pull')`,
    );
  }
  const access = o.registryAuth ? await o.registryAuth(step, registryOf(step.image)) : undefined;
  if (access === "reported") {
    // this host pulled it for this very step, with its login, and said so: a message that came again (to a process
    // restarted since); what it pulled then is what the steps after it run
    const had = await o.runtime.imageIdentity(wanted);
    if (had) return { pulled: false, had };
    throw new Error(`image ${step.image}, pulled on this host for step ${step.id} and reported, is no longer here (removed since): run 'corral up --upgrade --pull'`);
  }
  const had = !force && access === undefined ? await o.runtime.imageIdentity(wanted) : undefined;
  if (had) return { pulled: false, had };
  try {
    await o.runtime.pull(wanted, typeof access === "object" ? access : undefined);
  } catch (e) {
    // (the engine's error names the registry it asked, not the image: said with it, as a user wrote it)
    if (!step.pinned) throw statusOf(e) ? new Error(`image ${step.image} is not on this host and could not be pulled: ${(e as Error).message}`) : e;
    const digest = step.pinned.split("@")[1] ?? step.pinned;
    throw new Error(`image ${step.image} at ${shortDigest(digest)} (revision ${step.revision}'s exact image) is not on this host and could not be pulled: ${(e as Error).message}`);
  }
  return { pulled: true };
}

export const pull: StepHandler<"pull"> = async (step, { options }) => {
  const got = await ensureImage(step, step.forcePull ?? false, options);
  const image = await pulledImage(step, options, got.pulled ? undefined : got.had);
  return { ok: true, ...(got.pulled ? {} : { alreadyDone: true }), ...(image ? { image } : {}) };
};
