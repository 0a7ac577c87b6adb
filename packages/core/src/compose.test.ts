import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ComposeError, parseComposeDocument, parseComposeYaml } from "./compose.js";
import { configHash } from "./hash.js";

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8");
const parse = (yaml: string, file = "docker-compose.yml") => parseComposeDocument(parseComposeYaml(yaml, file), file);

function refusal(fn: () => unknown): ComposeError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ComposeError) return e;
    throw e;
  }
  throw new Error("expected a ComposeError");
}

describe("compose subset", () => {
  it("normalizes a two-service file", () => {
    const services = parse(fixture("two-services.yml"));
    expect(Object.keys(services)).toEqual(["web", "worker"]);
    const web = services.web!;
    expect(web.command).toEqual(["httpd", "-f", "-p", "80", "-h", "/www"]);
    expect(web.environment).toEqual({ GREETING: "hello" }); // EMPTY: unset, as no environment was given
    expect(web.ports).toEqual([
      { target: 80, published: 60010, protocol: "tcp" },
      { target: 81, host_ip: "127.0.0.1", protocol: "tcp" },
      { target: 53, protocol: "udp" },
    ]);
    expect(web.labels).toEqual({ team: "science" });
    expect(web).toMatchObject({ cap_drop: ["ALL"], cap_add: ["NET_BIND_SERVICE"], user: "1000", working_dir: "/www", restart: "always", scale: 1 });
    const worker = services.worker!;
    expect(worker.entrypoint).toEqual(["sh", "-c"]);
    expect(worker.command).toEqual(["echo", "a b", "c d;", "sleep", "1000"]);
    expect(worker.environment).toEqual({ MODE: "batch" });
    expect(worker.scale).toBe(2);
  });

  it("refuses an unknown key by file, service and key", () => {
    const e = refusal(() => parse("services:\n  web:\n    image: x\n    devices: ['/dev/sda']\n"));
    expect(e.message).toBe("docker-compose.yml: services.web.devices: not supported");
  });

  it("refuses a missing image", () => {
    expect(refusal(() => parse("services:\n  web:\n    command: x\n", "app.yml")).message).toBe("app.yml: services.web.image: is required");
  });

  it("refuses a bad port entry with its index", () => {
    expect(refusal(() => parse("services:\n  web:\n    image: x\n    ports: ['80:99999']\n")).message).toBe(
      "docker-compose.yml: services.web.ports.0: port 99999 out of range 1-65535",
    );
  });

  it("refuses reserved labels", () => {
    expect(refusal(() => parse("services:\n  web:\n    image: x\n    labels: {io.corral.stack: other}\n")).path).toBe("services.web.labels.io.corral.stack");
  });

  it("names the line of a YAML syntax error", () => {
    const e = refusal(() => parse("services:\n  web:\n    image: [x\n"));
    expect(e.message).toMatch(/^docker-compose.yml: line \d+: /);
  });

  it("refuses an empty or non-mapping document", () => {
    expect(refusal(() => parse("services: {}\n")).message).toBe("docker-compose.yml: services: no service is defined");
    expect(refusal(() => parse("- a\n")).message).toMatch(/must be a mapping/);
  });

  it("hashes independently of key order and scale", () => {
    const a = parse("services:\n  web:\n    image: x\n    environment: {A: '1', B: '2'}\n    scale: 1\n").web!;
    const b = parse("services:\n  web:\n    scale: 3\n    environment:\n      - B=2\n      - A=1\n    image: x\n").web!;
    expect(configHash(a)).toBe(configHash(b));
    const c = parse("services:\n  web:\n    image: y\n").web!;
    expect(configHash(c)).not.toBe(configHash(a));
  });
});
