import fc from "fast-check";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { testServer } from "../support.js";
import { fuzzRuns, fuzzSeed, record } from "./profile.js";

/**
 * Fuzz the HTTP API with generated compose documents and request bodies
 * (fast-check, seeded; the seed is printed, and CORRAL_FUZZ_SEED repeats a
 * run). Every one must answer 4xx with a path or a message that names what
 * is wrong, nothing may be written, and the server must still answer as fast
 * as before.
 */

type Server = Awaited<ReturnType<typeof testServer>>;
let server: Server;

beforeAll(async () => {
  // the per-token limit on changes (300 a minute) would answer most of the fuzz 429: raised for this server
  server = await testServer({ hostId: "fuzz-host", mutationsPerMinute: 1_000_000 });
  console.log(`fuzz: seed ${fuzzSeed}, ${fuzzRuns} runs per property (CORRAL_FUZZ_SEED=${fuzzSeed} repeats this run)`);
});
afterAll(async () => {
  await server?.stop();
});

const api = (method: string, path: string, body?: string) =>
  fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body }),
  });

/** The median time of a few cheap reads, in ms. */
async function readLatency(): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 15; i++) {
    const t = performance.now();
    expect((await api("GET", "/v1/stacks")).status).toBe(200);
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b)[7]!;
}

const base = () => ({
  services: {
    web: {
      image: "corral-hello:latest",
      cap_drop: ["ALL"],
      ports: ["80"],
      environment: { GREETING: "hi" },
      healthcheck: { test: ["CMD", "true"], interval: "1s", retries: 3 },
      deploy: { replicas: 2, resources: { limits: { memory: "64M" } } },
    },
  },
});

const knownKeys = new Set([
  ...["image", "build", "command", "entrypoint", "environment", "labels", "sysctls", "ports", "expose", "volumes", "secrets", "cap_add", "cap_drop"],
  ...["user", "group_add", "working_dir", "healthcheck", "restart", "stop_signal", "stop_grace_period", "read_only", "tmpfs", "ulimits", "mem_limit"],
  ...["shm_size", "cpus", "init", "hostname", "dns", "extra_hosts", "logging", "depends_on", "scale", "deploy", "retain_ip", "privileged"],
  ...["network_mode", "pid", "ipc", "networks", "env_file", "container_name", "devices", "links", "external_links", "volumes_from", "platform"],
]);

const notAString = fc.oneof(fc.integer(), fc.boolean(), fc.array(fc.integer(), { minLength: 1, maxLength: 3 }), fc.dictionary(fc.string(), fc.integer(), { minKeys: 1 }));
const notANumber = fc.oneof(fc.constantFrom("lots", "three", "1e", "-"), fc.boolean(), fc.array(fc.integer(), { minLength: 1 }));

/** One bad value at one key of a good service: [key path under services.web, value]. */
const mutations: fc.Arbitrary<{ path: readonly string[]; value: unknown }> = fc.oneof(
  fc.record({ path: fc.constant(["image"]), value: fc.oneof(notAString, fc.constant(""), fc.string({ minLength: 1025, maxLength: 1100 })) }),
  fc.record({
    path: fc.constant(["ports"]),
    value: fc.array(fc.oneof(fc.integer({ min: 65_536 }), fc.integer({ max: 0 }), fc.constantFrom("abc", "1:2:3:4", "80-70:80", "-1", "80/sctp-ish")), { minLength: 1, maxLength: 3 }),
  }),
  fc.record({ path: fc.constant(["deploy", "replicas"]), value: fc.oneof(fc.integer({ max: -1 }), fc.double({ min: 0.1, max: 10, noInteger: true }), notANumber) }),
  fc.record({ path: fc.constant(["healthcheck", "interval"]), value: fc.constantFrom("soon", "5 parsecs", "-1s", "1x", "") }),
  fc.record({ path: fc.constant(["healthcheck", "retries"]), value: fc.oneof(fc.integer({ max: -1 }), notANumber) }),
  fc.record({ path: fc.constant(["environment"]), value: fc.oneof(fc.integer(), fc.boolean(), fc.constant("A=1")) }),
  fc.record({ path: fc.constant(["deploy", "resources", "limits", "memory"]), value: fc.constantFrom("lots", "12 parsecs", "-5M", true) }),
  fc.record({ path: fc.constant(["cap_add"]), value: fc.constantFrom(["SYS_ADMIN"], ["NET_ADMIN"], ["ALL"], "SYS_ADMIN") }),
  fc.record({ path: fc.constant(["privileged"]), value: fc.constantFrom(true, "yes please", 1) }),
  fc.record({ path: fc.constant(["volumes"]), value: fc.constantFrom(["/:/host"], ["/etc:/etc"], ["/var/run/docker.sock:/var/run/docker.sock"], [42]) }),
  fc.record({ path: fc.constant(["labels"]), value: fc.string({ maxLength: 20 }).map((v) => ({ "io.corral.stack": v })) }),
  // a uid is a number; anything else must be NAME[:GROUP]
  fc.record({
    path: fc.constant(["user"]),
    value: fc.oneof(fc.boolean(), fc.integer({ max: -1 }), fc.constantFrom("a b", "-x", "root:", ":0", "x;rm"), fc.string({ minLength: 65, maxLength: 80 })),
  }),
  fc.record({ path: fc.constant(["networks"]), value: fc.oneof(fc.constantFrom(["other"], 5, "default")) }),
  fc.record({ path: fc.constant(["devices"]), value: fc.constant(["/dev/sda"]) }),
  fc.record({
    path: fc.string({ minLength: 1, maxLength: 30 }).filter((k) => !knownKeys.has(k) && !k.startsWith("x-") && !k.includes(".")).map((k) => [k]),
    value: fc.jsonValue().filter((v) => v !== null),
  }),
);

function withValue(doc: ReturnType<typeof base>, path: readonly string[], value: unknown) {
  let at: Record<string, unknown> = doc.services.web;
  for (const key of path.slice(0, -1)) {
    if (typeof at[key] !== "object" || at[key] === null) at[key] = {};
    at = at[key] as Record<string, unknown>;
  }
  // an own property, whatever its name ("__proto__" set by assignment would be no key of the JSON sent)
  Object.defineProperty(at, path[path.length - 1]!, { value, enumerable: true, writable: true, configurable: true });
  return doc;
}

interface ErrorBody {
  error?: string;
  message?: string;
  path?: string;
  issues?: Array<{ path: string; reason: string }>;
}

const up = (document: unknown) => api("POST", "/v1/stacks/fuzz/up", JSON.stringify({ files: [{ name: "docker-compose.yml", document }] }));

describe("fuzz: generated input gets a 4xx naming what is wrong, and writes nothing", () => {
  let before = 0;
  // each property collects what went wrong rather than throwing: a request that wrongly succeeded changes what the
  // next ones see, so fast-check's shrinking (which replays) would report a different, innocent input
  let failures: string[] = [];
  beforeEach(() => {
    failures = [];
  });
  beforeAll(async () => {
    before = await readLatency();
  });

  it("a good compose file with one bad key: 400 naming the file, the service and the key", async () => {
    const started = performance.now();
    await fc.assert(
      fc.asyncProperty(mutations, async ({ path, value }) => {
        const res = await up(withValue(base(), path, value));
        const body = (await res.json()) as ErrorBody;
        const key = `services.web.${path.join(".")}`;
        const named = [body.path, ...(body.issues ?? []).map((i) => i.path)].some((p) => p !== undefined && (p.startsWith(key) || key.startsWith(p)));
        if (res.status !== 400 || !named || !body.message?.includes("docker-compose.yml")) {
          failures.push(`${key} = ${JSON.stringify(value)}: ${res.status} ${JSON.stringify(body)}`);
        }
      }),
      { seed: fuzzSeed, numRuns: fuzzRuns },
    );
    expect(failures.slice(0, 10)).toEqual([]);
    record("fuzz: compose key", fuzzRuns, performance.now() - started);
  });

  it("a document that is not a compose file at all: 400 naming the file", async () => {
    const started = performance.now();
    const notCompose = fc.oneof(
      fc.anything(),
      fc.dictionary(fc.string(), fc.jsonValue()),
      fc.record({ services: fc.oneof(fc.jsonValue(), fc.dictionary(fc.string(), fc.jsonValue(), { minKeys: 1 })) }),
    );
    await fc.assert(
      fc.asyncProperty(notCompose, async (document) => {
        const res = await up(document);
        const body = (await res.json()) as ErrorBody;
        if (res.status !== 400 || !body.message?.includes("docker-compose.yml")) failures.push(`${JSON.stringify(document)}: ${res.status} ${JSON.stringify(body)}`);
      }),
      { seed: fuzzSeed + 1, numRuns: fuzzRuns },
    );
    expect(failures.slice(0, 10)).toEqual([]);
    record("fuzz: compose document", fuzzRuns, performance.now() - started);
  });

  it("every mutating route given a generated body: 4xx with a message, never 5xx or success", async () => {
    const started = performance.now();
    const routes: Array<[string, string]> = [
      ["POST", "/v1/stacks/fuzz/up"],
      ["POST", "/v1/stacks/fuzz/render"],
      ["POST", "/v1/stacks"],
      ["POST", "/v1/stacks/fuzz/scale"],
      ["POST", "/v1/stacks/fuzz/stop"],
      ["POST", "/v1/stacks/fuzz/restart"],
      ["POST", "/v1/services"],
      ["POST", "/v1/stacks/fuzz/services/web/update"],
      ["POST", "/v1/stacks/fuzz/services/web/rollback"],
      ["POST", "/v1/secrets/fuzz-secret"],
      ["POST", "/v1/volumes"],
      ["POST", "/v1/users"],
      ["POST", "/v1/sessions"],
      ["POST", "/v1/hooks"],
      ["POST", "/v1/registries"],
      ["PUT", "/v1/chat/config"],
      ["PUT", "/v1/chat/users/U123"],
    ];
    const bodies = fc.oneof(
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.string({ maxLength: 200 }),
      fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString("latin1")),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), bodies, async ([method, path], body) => {
        const res = await api(method, path, body);
        const answer = (await res.json().catch(() => ({}))) as ErrorBody;
        if (res.status < 400 || res.status >= 500 || !answer.message) failures.push(`${method} ${path} ${JSON.stringify(body)}: ${res.status} ${JSON.stringify(answer)}`);
      }),
      { seed: fuzzSeed + 2, numRuns: fuzzRuns },
    );
    expect(failures.slice(0, 10)).toEqual([]);
    record("fuzz: request bodies", fuzzRuns, performance.now() - started);
  });

  it("wrote nothing, and still answers as fast as before", async () => {
    for (const path of ["/v1/stacks", "/v1/secrets", "/v1/volumes", "/v1/hooks", "/v1/registries"]) {
      const res = await api("GET", path);
      expect([path, res.status, await res.json()]).toEqual([path, 200, []]);
    }
    expect(((await (await api("GET", "/v1/users")).json()) as unknown[]).length).toBe(0);
    expect((await api("GET", "/v1/stacks/fuzz")).status).toBe(404);
    const after = await readLatency();
    console.log(`fuzz: GET /v1/stacks median ${before.toFixed(1)} ms before, ${after.toFixed(1)} ms after`);
    // not a timing test: a server that choked on what it was fed (a leak, a wedged lock) is slower by orders of magnitude
    expect(after).toBeLessThan(Math.max(10 * before, 250));
  });
});
