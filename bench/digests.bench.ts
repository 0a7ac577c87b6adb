/**
 * `npm run bench` (and `npx tsx bench/digests.bench.ts` alone): what pinning
 * digests adds to `up`. The control plane asks each distinct image's registry
 * once per `up` (at most 8 at a time): here a real registry on loopback
 * (Debian's docker-registry, htpasswd logins), 1 and 10 distinct images,
 * beside the registry's own answer to one HEAD with the login, in the same
 * run; medians of BENCH_RUNS.
 */
import { registryResolver } from "@corral/api";
import { pushImage, registryUnavailable, startRegistry } from "../test/registry.js";
import { docker, IMAGE, median } from "./support.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 9);
const why = await registryUnavailable();
if (why) {
  console.log(`digests bench skipped: ${why}`);
  process.exit(0);
}
const login = { username: "bench", password: "bench-Registry-1" };
const registry = await startRegistry("127.0.0.1", { [login.username]: login.password });
try {
  const images = Array.from({ length: 10 }, (_, i) => `${registry.server}/bench/app${i}:latest`);
  for (const ref of images) await pushImage(docker, IMAGE, ref, { ...login, serveraddress: registry.server });
  const resolve = registryResolver({ insecure: [registry.server] });
  const auth = `Basic ${Buffer.from(`${login.username}:${login.password}`).toString("base64")}`;
  const time = async (f: () => Promise<unknown>) => {
    const t = process.hrtime.bigint();
    await f();
    return Number(process.hrtime.bigint() - t) / 1e6;
  };
  const rows = { bare: [] as number[], one: [] as number[], ten: [] as number[] };
  for (let i = 0; i < RUNS; i++) {
    rows.bare.push(await time(() => fetch(`http://${registry.server}/v2/bench/app0/manifests/latest`, { method: "HEAD", headers: { authorization: auth } })));
    rows.one.push(await time(() => resolve(images[0]!, login)));
    rows.ten.push(await time(() => Promise.all(images.slice(0, 8).map((im) => resolve(im, login))).then(() => Promise.all(images.slice(8).map((im) => resolve(im, login))))));
  }
  const bare = median(rows.bare);
  console.log(`\nDigest pinning at up, median of ${RUNS} runs (wall time, loopback registry with htpasswd logins):`);
  console.table([
    { case: "registry: one HEAD with the login", "median ms": bare.toFixed(1), "× one HEAD": "1.00" },
    { case: "corral: 1 image resolved", "median ms": median(rows.one).toFixed(1), "× one HEAD": (median(rows.one) / bare).toFixed(2) },
    { case: "corral: 10 images resolved (8 at a time)", "median ms": median(rows.ten).toFixed(1), "× one HEAD": (median(rows.ten) / bare).toFixed(2) },
  ]);
  for (const ref of images) await docker.getImage(ref).remove().catch(() => undefined);
} finally {
  await registry.stop();
}
