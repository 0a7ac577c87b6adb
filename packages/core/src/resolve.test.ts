import { describe, expect, it } from "vitest";
import { ComposeError } from "./compose.js";
import { loadProject } from "./project.js";
import { resolveComposeFiles } from "./resolve.js";

const files: Record<string, string> = {
  "/app/.env": "TAG=from-dotenv\nONLY_DOTENV=yes\n",
  "/app/common.env": "A=from-file\nB=from-file\n",
  "/app/labels.txt": "team=science\n",
};
const readFile = (p: string) => files[p];

function resolve(text: string, env: Record<string, string> = {}, more: Array<{ name: string; text: string }> = []) {
  return resolveComposeFiles({
    files: [{ name: "docker-compose.yml", path: "/app/docker-compose.yml", text }, ...more.map((m) => ({ name: m.name, path: `/app/${m.name}`, text: m.text }))],
    env,
    home: "/home/me",
    readFile,
  });
}

describe("resolving files in the CLI", () => {
  it("takes variables from the environment over .env, and sends only what the file uses", () => {
    const [doc] = resolve("services:\n  web:\n    image: app:${TAG}\n    environment:\n      - X=${ONLY_DOTENV}\n", { TAG: "from-shell", SECRET_TOKEN: "never-sent" });
    expect(doc!.document).toEqual({ services: { web: { image: "app:from-shell", environment: { X: "yes" } } } });
    expect(JSON.stringify(doc)).not.toContain("never-sent");
  });

  it("folds env_file and label_file in, the service's own entries winning; a bare name takes the environment", () => {
    const [doc] = resolve(
      "services:\n  web:\n    image: x\n    env_file: [common.env, {path: missing.env, required: false}]\n    environment:\n      B: own\n      FROM_SHELL:\n      UNSET:\n    label_file: labels.txt\n    labels: {tier: web}\n",
      { FROM_SHELL: "shell" },
    );
    expect(doc!.document).toEqual({ services: { web: { image: "x", environment: { A: "from-file", B: "own", FROM_SHELL: "shell" }, labels: { team: "science", tier: "web" } } } });
  });

  it("refuses a required env_file that does not exist", () => {
    expect(() => resolve("services:\n  web:\n    image: x\n    env_file: nope.env\n")).toThrow("docker-compose.yml: services.web.env_file.0: nope.env: no such file");
  });

  it("makes relative and home paths absolute", () => {
    const [doc] = resolve("services:\n  web:\n    image: x\n    volumes: ['./site:/www:ro', '~/conf:/conf', 'data:/data', {type: bind, source: ../shared, target: /s}]\nsecrets:\n  pw:\n    file: ./pw.txt\n");
    const web = (doc!.document as { services: { web: { volumes: unknown[] } } }).services.web;
    expect(web.volumes).toEqual(["/app/site:/www:ro", "/home/me/conf:/conf", "data:/data", { type: "bind", source: "/shared", target: "/s" }]);
    expect((doc!.document as { secrets: { pw: { file: string } } }).secrets.pw.file).toBe("/app/pw.txt");
  });
});

describe("several -f files", () => {
  const base = `services:
  web:
    image: app:1
    command: ["serve", "--port", "80"]
    environment: [A=1, B=1]
    ports: ["60001:80"]
    volumes: ["data.web.s:/data", "/srv/a:/a"]
    cap_drop: [ALL]
    labels: {tier: web}
volumes:
  data.web.s: {}
`;
  const override = `services:
  web:
    image: app:2
    command: ["serve", "--debug"]
    environment: {B: "2", C: "3"}
    ports: ["60002:81"]
    volumes: ["/srv/b:/a"]
    labels: [owner=me]
  worker:
    image: worker:1
`;
  it("merge with the Compose Specification's override rules", () => {
    const docs = resolve(base, {}, [{ name: "docker-compose.override.yml", text: override }]);
    const { project, origins } = loadProject({ files: docs });
    const web = project.services.web!;
    expect(web.image).toBe("app:2");
    expect(web.command).toEqual(["serve", "--debug"]); // replaced
    expect(web.environment).toEqual({ A: "1", B: "2", C: "3" }); // merged
    expect(web.ports.map((p) => p.published)).toEqual([60001, 60002]); // appended
    expect(web.volumes?.map((v) => `${v.source}:${v.target}`)).toEqual(["data.web.s:/data", "/srv/b:/a"]); // replaced by target
    expect(web.labels).toEqual({ tier: "web", owner: "me" });
    expect(Object.keys(project.services)).toEqual(["web", "worker"]);
    expect(origins.web?.image).toBe("docker-compose.override.yml");
    expect(origins.web?.cap_drop).toBe("docker-compose.yml");
  });

  it("names the file a bad key came from", () => {
    const docs = resolve(base, {}, [{ name: "prod.yml", text: "services:\n  web:\n    mem_limit: lots\n" }]);
    let err: unknown;
    try {
      loadProject({ files: docs });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ComposeError);
    expect((err as ComposeError).message).toBe('prod.yml: services.web.mem_limit: invalid size "lots" (examples: 512m, 1g, 1048576)');
  });
});

describe("rancher-compose.yml", () => {
  it("brings scale, upgrade_strategy, health_check and retain_ip", () => {
    const docs = resolve("services:\n  web:\n    image: x\n    deploy: {update_config: {failure_action: rollback}}\n");
    const { project } = loadProject({
      files: docs,
      rancher: {
        name: "rancher-compose.yml",
        document: { version: "2", services: { web: { scale: 3, retain_ip: true, upgrade_strategy: { start_first: true, batch_size: 2, interval_millis: 5000 }, health_check: { port: 80, request_line: "GET /healthz HTTP/1.0", interval: 2000, unhealthy_threshold: 3 } } } },
      },
    });
    const web = project.services.web!;
    expect(web.scale).toBe(3);
    expect(web.retain_ip).toBe(true);
    expect(web.deploy?.update_config).toEqual({ failure_action: "rollback", parallelism: 2, delay: 5000, order: "start-first" });
    expect(web.health_check).toMatchObject({ port: 80, request_line: "GET /healthz HTTP/1.0" });
  });

  it("refuses unknown keys and services", () => {
    const docs = resolve("services:\n  web:\n    image: x\n");
    expect(() => loadProject({ files: docs, rancher: { name: "rancher-compose.yml", document: { services: { web: { lb_config: {} } } } } })).toThrow("rancher-compose.yml: services.web.lb_config: not supported");
    expect(() => loadProject({ files: docs, rancher: { name: "rancher-compose.yml", document: { services: { db: { scale: 2 } } } } })).toThrow("rancher-compose.yml: services.db: no such service in the compose file");
  });
});
