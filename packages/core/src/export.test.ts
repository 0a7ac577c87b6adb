import { readFileSync } from "node:fs";
import fc from "fast-check";
import { stringify } from "yaml";
import { describe, expect, it } from "vitest";
import { ComposeError, parseComposeYaml, parseProject } from "./compose.js";
import { toComposeDocuments } from "./export.js";
import { configHash } from "./hash.js";
import { checkPolicy, defaultPolicy } from "./policy.js";
import { loadProject } from "./project.js";
import { resolveComposeFiles } from "./resolve.js";

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8");

describe("export", () => {
  it("round-trips: the exported files parse to the same project and the same config hashes", () => {
    const { project } = loadProject({
      files: [{ name: "docker-compose.yml", document: parseComposeYaml(fixture("every-key.yml")) }],
      rancher: { name: "rancher-compose.yml", document: { services: { app: { scale: 2, health_check: { port: 80, request_line: "GET / HTTP/1.0" } } } } },
    });
    const { compose, rancher } = toComposeDocuments(project);
    const again = loadProject({
      files: [{ name: "docker-compose.yml", document: parseComposeYaml(stringify(compose)) }],
      rancher: { name: "rancher-compose.yml", document: parseComposeYaml(stringify(rancher)) },
    }).project;
    expect(again).toEqual(project);
    for (const [name, spec] of Object.entries(project.services)) expect(configHash(again.services[name]!)).toBe(configHash(spec));
  });

  it("writes $ as $$, so that the file reads back to the same text", () => {
    const { project } = loadProject({ files: [{ name: "c.yml", document: { services: { web: { image: "x", command: ["sh", "-c", "wait $!; echo $HOME"] } } } }] });
    const { compose } = toComposeDocuments(project);
    const text = stringify(compose);
    expect(text).toContain("wait $$!; echo $$HOME");
    const back = resolveComposeFiles({ files: [{ name: "c.yml", path: "/c.yml", text }], env: { HOME: "/root" }, home: "/root", readFile: () => undefined });
    expect(loadProject({ files: back }).project.services.web!.command).toEqual(["sh", "-c", "wait $!; echo $HOME"]);
  });

  it("writes a volume as a file may declare it: no io.corral.* label, an external one without the driver corral looked up", () => {
    const { project } = loadProject({ files: [{ name: "c.yml", document: { services: { db: { image: "x", cap_drop: ["ALL"], volumes: ["db.s:/d"] }, cache: { image: "x", cap_drop: ["ALL"], volumes: ["cache.s:/c"] } }, volumes: { "db.s": { external: true }, "cache.s": { labels: { team: "a" } } } } }] });
    // as the API admits it: the stored volume's driver and options, and corral's label
    project.volumes["db.s"] = { ...project.volumes["db.s"], name: "db.s", driver: "local", driver_opts: { type: "nfs", o: "addr=10.0.0.1", device: ":/x" }, labels: { "io.corral.volume": "db.s" } };
    const { compose } = toComposeDocuments(project);
    expect(compose.volumes).toEqual({ "db.s": { name: "db.s", external: true }, "cache.s": { labels: { team: "a" } } });
    const again = loadProject({ files: [{ name: "c.yml", document: parseComposeYaml(stringify(compose)) }] }).project;
    expect(checkPolicy(again, defaultPolicy, { stack: "s", file: "c.yml" })).toEqual([]);
  });

  it("keeps secret references, never values", () => {
    const { compose } = toComposeDocuments(parseProject(parseComposeYaml(fixture("every-key.yml"))).project);
    expect(compose.secrets).toEqual({ "app.mystack.pw": { file: "/home/me/pw.txt" }, "app.mystack.key": { external: true } });
  });
});

// Random and mutated compose documents: the parser answers with a project or a
// typed ComposeError, never anything else; and a forbidden setting never passes policy.
const key = fc.constantFrom("image", "command", "ports", "volumes", "environment", "cap_add", "cap_drop", "privileged", "user", "healthcheck", "deploy", "devices", "build", "network_mode", "x-a", "scale", "secrets", "tmpfs", "ulimits", "restart");
const leaf = fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.constantFrom("${X}", "$$", "80:80", "/a:/b:ro", "ALL", "host", "1m", "0440"));
const value = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: "small" }, leaf, fc.array(tie("node"), { maxLength: 3 }), fc.dictionary(fc.oneof(key, fc.string()), tie("node"), { maxKeys: 3 })),
})).node;

describe("parser and policy under random input", () => {
  it("never crash: a project or a ComposeError", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.dictionary(key, value, { maxKeys: 6 }), { maxKeys: 3 }), fc.option(value), (services, top) => {
        const doc: Record<string, unknown> = { services };
        if (top !== null) doc.volumes = top;
        try {
          parseProject(doc);
        } catch (e) {
          if (!(e instanceof ComposeError)) throw e;
          expect(e.issues.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: Number(process.env.FC_RUNS ?? 2000) },
    );
  });

  // Not the port pattern (mutations are short): the time goes to the YAML parser, some 4-6 ms a
  // document on a busy 2-core machine, so 1000 runs need more than vitest's default 5 s.
  it("never crash on mutated text of a real file", { timeout: 60_000 }, () => {
    const text = fixture("every-key.yml");
    fc.assert(
      fc.property(fc.nat(text.length - 1), fc.nat(40), fc.string({ maxLength: 6 }), (at, cut, insert) => {
        const mutated = text.slice(0, at) + insert + text.slice(at + cut);
        try {
          parseProject(parseComposeYaml(mutated));
        } catch (e) {
          if (!(e instanceof ComposeError)) throw e;
        }
      }),
      { numRuns: Number(process.env.FC_RUNS ?? 1000) },
    );
  });

  it("no document with a forbidden setting passes policy", () => {
    const forbidden = fc.constantFrom(
      { privileged: true },
      { cap_add: ["SYS_ADMIN"] },
      { network_mode: "host" },
      { pid: "host" },
      { ipc: "host" },
      { build: "." },
      { ports: ["22:22"] },
      { cap_drop: ["NET_RAW"] },
      { volumes: ["/etc:/etc"], user: "0:0" },
    );
    const benign = fc.record({ environment: fc.dictionary(fc.stringMatching(/^[A-Z]{1,5}$/), fc.string(), { maxKeys: 2 }), labels: fc.dictionary(fc.stringMatching(/^[a-z]{1,5}$/), fc.string(), { maxKeys: 2 }) }, { requiredKeys: [] });
    fc.assert(
      fc.property(forbidden, benign, (bad, extra) => {
        const doc = { services: { web: { image: "x", cap_drop: ["ALL"], ...extra, ...bad } } };
        let project;
        try {
          project = parseProject(doc).project;
        } catch (e) {
          if (e instanceof ComposeError) return; // refused at parse: also not admitted
          throw e;
        }
        expect(checkPolicy(project, defaultPolicy, { stack: "s", file: "f.yml" }).length).toBeGreaterThan(0);
      }),
      { numRuns: 500 },
    );
  });
});
