import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ComposeError, parseComposeDocument, parseComposeYaml, parseProject } from "./compose.js";
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

  it("refuses io.corral.* in every label source: labels, deploy.labels, volume labels; the cron labels pass", () => {
    const yaml = [
      "services:",
      "  web:",
      "    image: x",
      "    labels: [io.corral.cron.schedule=* * * * *, io.corral.cron.overlap=allow, IO.Corral.Slot=9]",
      "    deploy: {labels: {io.corral.routes: '60000:80', io.corral.cron.schedule: '* * * * *', io.corral.cron.other: x}}",
      "    volumes: [data:/d]",
      "volumes:",
      "  data: {labels: {io.corral.stack: other, team: science}}",
      "",
    ].join("\n");
    const reserved = "the io.corral. prefix is reserved for corral (a user may set io.corral.cron.schedule and io.corral.cron.overlap)";
    expect(refusal(() => parse(yaml)).issues).toEqual([
      { file: "docker-compose.yml", path: "services.web.labels.IO.Corral.Slot", reason: reserved.replace(")", ", and io.corral.scheduler.* on a service)") },
      { file: "docker-compose.yml", path: "services.web.deploy.labels.io.corral.routes", reason: reserved },
      { file: "docker-compose.yml", path: "services.web.deploy.labels.io.corral.cron.other", reason: reserved },
      { file: "docker-compose.yml", path: "volumes.data.labels.io.corral.stack", reason: reserved },
    ]);
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

describe("every supported key, short and long forms", () => {
  const { project } = parseProject(parseComposeYaml(fixture("every-key.yml")));
  const app = project.services.app!;
  const db = project.services.db!;

  it.each([
    ["command", app.command, ["python", "app.py"]],
    ["entrypoint (string)", app.entrypoint, ["/entry.sh", "--verbose"]],
    ["environment (numbers and booleans as text)", app.environment, { A: "1", N: "2", T: "true" }],
    ["expose", app.expose, ["3000", "4000"]],
    ["cap_add", app.cap_add, ["CHOWN", "SETUID"]],
    ["group_add", app.group_add, ["wheel", "1001"]],
    ["labels (list, bare name empty)", app.labels, { a: "b", empty: "" }],
    ["restart", app.restart, "on-failure:3"],
    ["stop_grace_period", app.stop_grace_period, 90_000],
    ["tmpfs (string)", app.tmpfs, ["/run"]],
    ["ulimits", app.ulimits, { nproc: 512, nofile: { soft: 1024, hard: 2048 } }],
    ["mem_limit", app.mem_limit, 512 * 1024 ** 2],
    ["cpus (string)", app.cpus, 0.5],
    ["shm_size", app.shm_size, 64 * 1024 ** 2],
    ["sysctls", app.sysctls, { "net.core.somaxconn": "1024" }],
    ["dns (string)", app.dns, ["8.8.8.8"]],
    ["extra_hosts (mapping)", app.extra_hosts, ["db.example=10.0.0.5"]],
    ["logging", app.logging, { driver: "json-file", options: { "max-size": "10m" } }],
    ["depends_on (long)", app.depends_on, { db: { condition: "service_healthy", required: true } }],
    ["depends_on (short)", project.services.worker!.depends_on, { app: { condition: "service_started", required: true } }],
    ["x-* kept", app.extensions, { "x-team": "science" }],
    ["scale from deploy.replicas", db.scale, 2],
  ])("%s", (_name, got, want) => {
    expect(got).toEqual(want);
  });

  it("ports: short, range and long", () => {
    expect(app.ports).toEqual([
      { target: 80, published: 60001, protocol: "tcp" },
      { target: 8000, published: 60002, protocol: "tcp" },
      { target: 8001, published: 60003, protocol: "tcp" },
      { target: 443, published: 60004, host_ip: "127.0.0.1", protocol: "tcp", mode: "host" },
    ]);
  });

  it("volumes: bind with :ro, named, tmpfs, long bind", () => {
    expect(app.volumes).toEqual([
      { type: "bind", source: "/global/cfs/cdirs/myproject/data", target: "/data", read_only: true, bind: {} },
      { type: "volume", source: "app.mystack", target: "/var/lib/app", volume: {} },
      { type: "tmpfs", target: "/scratch", tmpfs: { size: 64 * 1024 ** 2, mode: 1777 } },
      { type: "bind", source: "/global/cfs/cdirs/myproject/conf", target: "/conf", read_only: true },
    ]);
  });

  it("secrets: short and long, mode as octal", () => {
    expect(app.secrets).toEqual([{ source: "app.mystack.pw" }, { source: "app.mystack.key", target: "key.pem", uid: "1000", gid: "1000", mode: 0o400 }]);
  });

  it("healthcheck: list and string forms, durations", () => {
    expect(app.healthcheck).toEqual({ test: ["CMD", "wget", "-q", "http://127.0.0.1/"], interval: 10_000, timeout: 2_000, retries: 3, start_period: 60_000 });
    expect(db.healthcheck).toEqual({ test: ["CMD-SHELL", "mysqladmin ping"] });
  });

  it("deploy", () => {
    expect(db.deploy).toEqual({
      replicas: 2,
      update_config: { parallelism: 1, delay: 5_000, order: "start-first", failure_action: "rollback", monitor: 30_000, max_failure_ratio: 0.2 },
      rollback_config: { parallelism: 2 },
      restart_policy: { condition: "on-failure", max_attempts: 5, window: 120_000 },
      resources: { limits: { cpus: 1.5, memory: 1024 ** 3 }, reservations: { memory: 256 * 1024 ** 2 } },
      placement: { constraints: ["node.hostname==h1"] },
    });
  });

  it("top-level volumes and secrets", () => {
    expect(project.volumes).toEqual({ "app.mystack": { driver: "local", driver_opts: { type: "nfs", o: "addr=10.0.0.1" } }, "db.mystack": { external: true } });
    expect(project.secrets).toEqual({ "app.mystack.pw": { file: "/home/me/pw.txt" }, "app.mystack.key": { external: true } });
  });

  it("healthcheck NONE and disable turn it off", () => {
    const off = parse('services:\n  a:\n    image: x\n    healthcheck: {test: ["NONE"]}\n  b:\n    image: x\n    healthcheck: {disable: true}\n');
    expect(off.a!.healthcheck).toEqual({ disable: true });
    expect(off.b!.healthcheck).toEqual({ disable: true });
  });
});

describe("bounded input", () => {
  const doc = (web: Record<string, unknown>, top: Record<string, unknown> = {}) => ({ services: { web: { image: "x", ...web } }, ...top });
  const refused = (d: unknown) => refusal(() => parseProject(d)).issues.map((i) => `${i.path}: ${i.reason}`);

  it("parses every short port form without backtracking", () => {
    const ports = (entry: string) => parseProject(doc({ ports: [entry] })).project.services.web!.ports;
    expect(ports("80")).toEqual([{ target: 80, protocol: "tcp" }]);
    expect(ports("60000:80/udp")).toEqual([{ target: 80, published: 60000, protocol: "udp" }]);
    expect(ports("127.0.0.1::80")).toEqual([{ target: 80, host_ip: "127.0.0.1", protocol: "tcp" }]);
    expect(ports("[::1]:60000:80")).toEqual([{ target: 80, published: 60000, host_ip: "::1", protocol: "tcp" }]);
    expect(ports("fe80::1:60000:80")).toEqual([{ target: 80, published: 60000, host_ip: "fe80::1", protocol: "tcp" }]);
    expect(ports("::1::80")).toEqual([{ target: 80, host_ip: "::1", protocol: "tcp" }]);
    expect(ports("60000-60001:80-81")).toEqual([
      { target: 80, published: 60000, protocol: "tcp" },
      { target: 81, published: 60001, protocol: "tcp" },
    ]);
    for (const bad of ["", ":", "80:", "a:80", "1.2.3.4:x:80", "[::1:80", "80/tcp/udp", "80-", "-80", "1:2:3:4", "80/icmp", "1-5000"]) {
      expect(refused(doc({ ports: [bad] }))[0], bad).toMatch(/^services\.web\.ports\.0: (invalid port|port range)/);
    }
  });

  it("refuses a pathological port string (16,000 characters) at once, as a bad port", () => {
    // the old pattern backtracked quadratically on these: seconds each
    for (const text of [":".repeat(16_000), "1:".repeat(8_000), "1::".repeat(5_000) + "x"]) {
      expect(refused(doc({ ports: [text] }))).toEqual([expect.stringMatching(/^services\.web\.ports\.0: invalid port ".{0,40}\.\.\." \(at most 64 characters/)]);
    }
  });

  it("caps the length of every string, short ones for names and references", () => {
    const long = (n: number) => "a".repeat(n);
    expect(refused(doc({ environment: { BIG: long(70_000) } }))).toEqual(["services.web.environment.BIG: is 70000 characters long (at most 65536)"]);
    expect(refused(doc({ image: long(2000) }))).toEqual(["services.web.image: is 2000 characters long (at most 1024)"]);
    expect(refused(doc({ user: long(100) }))).toEqual(["services.web.user: is 100 characters long (at most 64)"]);
    expect(refused(doc({ "x-note": [long(70_000)] }))).toEqual(["services.web.x-note.0: is 70000 characters long (at most 65536)"]);
    expect(refused(doc({ labels: { [long(2000)]: "v" } }))).toEqual([`services.web.labels: a key is 2000 characters long (at most 1024)`]);
    expect(refused(doc({}, { volumes: { [`web.${long(300)}`]: {} } }))).toEqual([`volumes: a key is 304 characters long (at most 256)`]);
    // a long command or environment value is fine
    expect(parseProject(doc({ command: ["sh", "-c", long(60_000)], environment: { BIG: long(60_000) } })).project.services.web!.command![2]).toHaveLength(60_000);
  });

  it("refuses nesting deeper than any compose file needs", () => {
    let deep: unknown = "x";
    for (let i = 0; i < 10_000; i++) deep = [deep];
    expect(refused(doc({ "x-deep": deep }))[0]).toMatch(/^services\.web\.x-deep(\.0)+: nested deeper than 32 levels$/);
  });
});

describe("refusals name file, service and key, all at once", () => {
  it.each([
    ["services:\n  web:\n    image: x\n    ports: ['80:99999']\n", "docker-compose.yml: services.web.ports.0: port 99999 out of range 1-65535"],
    ["services:\n  web:\n    image: x\n    ports: ['1-3:1-2']\n", 'docker-compose.yml: services.web.ports.0: port ranges "1-3:1-2" differ in length'],
    ["services:\n  web:\n    image: x\n    stop_grace_period: soon\n", 'docker-compose.yml: services.web.stop_grace_period: invalid duration "soon" (examples: 10s, 1m30s, 500ms)'],
    ["services:\n  web:\n    image: x\n    restart: sometimes\n", "docker-compose.yml: services.web.restart: must be one of no, always, on-failure[:N], unless-stopped"],
    ["services:\n  web:\n    image: x\n    volumes: ['data:/d']\n", 'docker-compose.yml: services.web.volumes.0: volume "data" is not declared under the top-level volumes:'],
    ["services:\n  web:\n    image: x\n    secrets: [pw]\n", 'docker-compose.yml: services.web.secrets.0: secret "pw" is not declared under the top-level secrets:'],
    ["services:\n  web:\n    image: x\n    depends_on: [db]\n", 'docker-compose.yml: services.web.depends_on: service "db" is not defined'],
    ['services:\n  web:\n    image: ""\n', "docker-compose.yml: services.web.image: not an image reference: expected [registry/]name[:tag][@digest], the name in lowercase"],
    ["services:\n  web:\n    image: My App:1\n", "docker-compose.yml: services.web.image: not an image reference: expected [registry/]name[:tag][@digest], the name in lowercase"],
    ["services:\n  web:\n    image: x\n    constructor: 1\n", "docker-compose.yml: services.web.constructor: not supported"],
    ["services:\n  web:\n    image: x\n    user: -5\n", "docker-compose.yml: services.web.user: expected a user name or uid, optionally with :group or :gid"],
    ["services:\n  web:\n    image: x\n    healthcheck: {test: [echo, hi]}\n", 'docker-compose.yml: services.web.healthcheck.test: a list must start with "CMD", "CMD-SHELL" or "NONE"'],
    ["services:\n  web:\n    image: x\n    networks: [front]\n", "docker-compose.yml: services.web.networks.front: not supported: a stack has one network, default"],
    ["services:\n  web:\n    image: x\n    scale: 2\n    deploy: {replicas: 3}\n", "docker-compose.yml: services.web.scale: scale (2) and deploy.replicas (3) disagree"],
    ["services:\n  web:\n    image: x\n    deploy: {mode: global, replicas: 2}\n", "docker-compose.yml: services.web.deploy.replicas: a global service runs one container per host: it takes no replicas"],
    ["services:\n  web:\n    image: x\n    ports: ['80']\n    deploy: {mode: global}\n", 'docker-compose.yml: services.web.ports.0: a global service\'s port needs a host port (write "8080:80"): it runs one container per host'],
    ["services:\n  web:\n    image: x\n    labels: {io.corral.scheduler.affinity:host_label: zone}\n", 'docker-compose.yml: services.web.labels.io.corral.scheduler.affinity:host_label: "zone" is not key=value'],
    ["services:\n  web:\n    image: x\n    labels: {io.corral.scheduler.affinity:hots_label: a=b}\n", "docker-compose.yml: services.web.labels.io.corral.scheduler.affinity:hots_label: unknown scheduling label (corral understands global, affinity:host_label, affinity:host_label_ne, affinity:host_label_soft, affinity:host_label_soft_ne, affinity:container_label, affinity:container_label_ne, affinity:container_label_soft, affinity:container_label_soft_ne)"],
    ["services:\n  web:\n    image: x\n    labels: {io.corral.scheduler.global: 'true'}\n    deploy: {mode: replicated}\n", 'docker-compose.yml: services.web.deploy.mode: replicated, but labels.io.corral.scheduler.global says "true"'],
    ["services:\n  web:\n    image: x\n    deploy: {placement: {max_replicas_per_node: -1}}\n", "docker-compose.yml: services.web.deploy.placement.max_replicas_per_node: not supported: must be 0 (no limit) or more, not -1"],
    ["services:\n  web:\n    image: x\n    cpus: [1]\n", "docker-compose.yml: services.web.cpus: has an unexpected form"],
    ["configs: {}\nservices:\n  web:\n    image: x\n", "docker-compose.yml: configs: not supported"],
    ["services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n", "docker-compose.yml: services.a.depends_on: dependency cycle a → b → a"],
    ["services:\n  web:\n    image: x\n    deploy: {placement: {constraints: [node.role==boss]}}\n", 'docker-compose.yml: services.web.deploy.placement.constraints.0: not supported: node.role is manager or worker, not "boss"'],
    ["services:\n  web:\n    image: x\n    deploy: {placement: {constraints: [node.ip==1.2.3.4]}}\n", 'docker-compose.yml: services.web.deploy.placement.constraints.0: not supported: "node.ip" is not a constraint corral knows (node.labels.KEY, engine.labels.KEY, node.id, node.hostname, node.role, node.platform.os, node.platform.arch)'],
  ])("%s", (yaml, message) => {
    expect(refusal(() => parse(yaml)).message).toBe(message);
  });

  it("reports several problems in one answer", () => {
    const e = refusal(() => parse("services:\n  web:\n    image: x\n    devices: [a]\n    tty: true\n  db:\n    command: x\n"));
    expect(e.issues.map((i) => i.path)).toEqual(["services.web.devices", "services.web.tty", "services.db.image"]);
  });
});

describe("placement in a compose file", () => {
  it("takes the scheduling labels, Swarm's placement and global mode, as the scheduler reads them", () => {
    const yaml = [
      "services:",
      "  web:",
      "    image: x",
      "    labels: {io.corral.scheduler.affinity:host_label: 'zone=a', io.rancher.scheduler.affinity:container_label_ne: 'io.corral.service=web', team: science}",
      "    deploy:",
      "      placement: {constraints: [node.labels.disk==ssd, node.hostname!=h3, node.role==worker], preferences: [{spread: node.labels.zone}], max_replicas_per_node: 2}",
      "  agent:",
      "    image: y",
      "    ports: ['9100:9100']",
      "    deploy: {mode: global}",
      "",
    ].join("\n");
    const services = parse(yaml);
    expect(services.web!.labels["io.corral.scheduler.affinity:host_label"]).toBe("zone=a");
    expect(services.web!.deploy?.placement).toEqual({ constraints: ["node.labels.disk==ssd", "node.hostname!=h3", "node.role==worker"], preferences: [{ spread: "node.labels.zone" }], max_replicas_per_node: 2 });
    expect(services.agent!.deploy?.mode).toBe("global");
  });

  it("still refuses every other io.corral.* label, and scheduling labels where they would not steer the scheduler", () => {
    const yaml = "services:\n  web:\n    image: x\n    labels: {io.corral.scheduler.global: 'true', io.corral.stack: other}\n    deploy: {labels: {io.corral.scheduler.global: 'true'}}\n";
    expect(refusal(() => parse(yaml)).issues.map((i) => i.path)).toEqual(["services.web.labels.io.corral.stack", "services.web.deploy.labels.io.corral.scheduler.global"]);
  });
});
