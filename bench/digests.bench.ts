/**
 * `npm run bench` (and `npx tsx bench/digests.bench.ts` alone): what pinning
 * digests adds to `up`. The control plane asks each distinct image's registry
 * once per `up` (at most 8 at a time): here a real registry on loopback
 * (Debian's docker-registry, htpasswd logins), 1 and 10 distinct images,
 * beside the registry's own answer to one HEAD with the login (the direct
 * column), in the same run.
 */
import { registryResolver } from "@corral/api";
import { pushImage, registryUnavailable, startRegistry } from "../test/registry.js";
import { row } from "./report.js";
import { docker, IMAGE, runsFor, type BenchOptions, type BenchPart } from "./support.js";

export async function digestsBench(o: BenchOptions): Promise<BenchPart> {
  const RUNS = runsFor(o, 5, 9);
  const why = await registryUnavailable();
  if (why) return { rows: [], notes: [`skipped (${why})`] };
  const login = { username: "bench", password: "bench-Registry-1" };
  const registry = await startRegistry("127.0.0.1", { [login.username]: login.password });
  try {
    const images = Array.from({ length: 10 }, (_, i) => `${registry.server}/bench/app${i}:latest`);
    for (const ref of images) await pushImage(docker, IMAGE, ref, { ...login, serveraddress: registry.server });
    const resolve = registryResolver({ insecure: [registry.server] });
    const auth = `Basic ${Buffer.from(`${login.username}:${login.password}`).toString("base64")}`;
    const lookup = async () => login;
    const time = async (f: () => Promise<unknown>) => {
      const t = process.hrtime.bigint();
      await f();
      return Number(process.hrtime.bigint() - t) / 1e6;
    };
    const t = { bare: [] as number[], one: [] as number[], ten: [] as number[] };
    for (let i = 0; i < RUNS; i++) {
      t.bare.push(await time(() => fetch(`http://${registry.server}/v2/bench/app0/manifests/latest`, { method: "HEAD", headers: { authorization: auth } })));
      t.one.push(await time(() => resolve(images[0]!, lookup)));
      t.ten.push(await time(() => Promise.all(images.slice(0, 8).map((im) => resolve(im, lookup))).then(() => Promise.all(images.slice(8).map((im) => resolve(im, lookup))))));
    }
    for (const ref of images) await docker.getImage(ref).remove().catch(() => undefined);
    const waits = "every image's digest known (the loopback registry's HEAD with its login)";
    return {
      rows: [row("pin digests at up", "1 image", waits, { corral: t.one, direct: t.bare }, "direct: one HEAD"), row("pin digests at up", "10 images", waits, { corral: t.ten, direct: t.bare }, "direct: one HEAD; corral asks 8 at a time")],
      notes: [],
    };
  } finally {
    await registry.stop();
  }
}
