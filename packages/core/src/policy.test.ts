import { describe, expect, it } from "vitest";
import { parseComposeYaml, parseProject } from "./compose.js";
import { assignPorts, checkPolicy, defaultPolicy, registryOf, sitePolicySchema } from "./policy.js";

const project = (yaml: string) => parseProject(parseComposeYaml(yaml)).project;
const ctx = { stack: "mystack", file: "docker-compose.yml" };
const violations = (yaml: string, policy = defaultPolicy) => checkPolicy(project(yaml), policy, ctx).map((i) => `${i.file}: ${i.path}: ${i.reason}`);
const ok = "    cap_drop: [ALL]\n";

describe("site policy", () => {
  it("accepts a compliant service", () => {
    expect(violations(`services:\n  web:\n    image: x\n${ok}    cap_add: [NET_BIND_SERVICE]\n    ports: ['60010:80']\n`)).toEqual([]);
  });

  it.each([
    ["cap_drop without ALL", "services:\n  web:\n    image: x\n", "docker-compose.yml: services.web.cap_drop: must include ALL (cap_drop: [ALL]), then add back what the service needs with cap_add"],
    ["cap_add outside the allow-list", `services:\n  db:\n    image: x\n${ok}    cap_add: [SYS_ADMIN]\n`, "docker-compose.yml: services.db.cap_add: SYS_ADMIN is not allowed (allowed: CHOWN, SETGID, SETUID, DAC_OVERRIDE, NET_BIND_SERVICE, FOWNER, KILL, SETPCAP)"],
    ["privileged", `services:\n  web:\n    image: x\n${ok}    privileged: true\n`, "docker-compose.yml: services.web.privileged: is not allowed"],
    ["host network", `services:\n  web:\n    image: x\n${ok}    network_mode: host\n`, "docker-compose.yml: services.web.network_mode: host is not allowed (allowed: bridge, none)"],
    ["host pid", `services:\n  web:\n    image: x\n${ok}    pid: host\n`, "docker-compose.yml: services.web.pid: host is not allowed: containers keep their own process namespace"],
    ["host ipc", `services:\n  web:\n    image: x\n${ok}    ipc: host\n`, "docker-compose.yml: services.web.ipc: host is not allowed (allowed: private, shareable, none)"],
    ["build", `services:\n  web:\n    build: .\n${ok}`, "docker-compose.yml: services.web.build: is not allowed: images come from a registry; build and push the image, then name it in image:"],
    ["a port outside the range", `services:\n  web:\n    image: x\n${ok}    ports: ['8080:80']\n`, "docker-compose.yml: services.web.ports.0: published port 8080 is not allowed (allowed: 60000-60050)"],
    ["a bind mount (no roots)", `services:\n  web:\n    image: x\n${ok}    user: '1000:1000'\n    volumes: ['/etc:/host-etc']\n`, "docker-compose.yml: services.web.volumes.0: bind mount /etc is not under an allowed root (allowed: none)"],
    ["a volume named against the rule", `services:\n  web:\n    image: x\n${ok}    volumes: ['data:/d']\nvolumes:\n  data: {}\n`, "docker-compose.yml: volumes.data: the name data must be SERVICE.STACK (e.g. web.mystack)"],
    ["a secret named against the rule", `services:\n  web:\n    image: x\n${ok}    secrets: [pw]\nsecrets:\n  pw: {file: /x}\n`, "docker-compose.yml: secrets.pw: the name pw must be SERVICE.STACK.FILE (e.g. web.mystack.password)"],
    ["another stack's secret", `services:\n  web:\n    image: x\n${ok}    secrets: [web.other.pw]\nsecrets:\n  web.other.pw: {file: /x}\n`, "docker-compose.yml: secrets.web.other.pw: the name web.other.pw must be SERVICE.STACK.FILE (e.g. web.mystack.password)"],
  ])("refuses %s", (_name, yaml, message) => {
    expect(violations(yaml)).toEqual([message]);
  });

  it("bind mounts need an allowed root and a numeric user", () => {
    const policy = sitePolicySchema.parse({ bindRoots: ["/global/cfs/cdirs"] });
    const yaml = (user: string, source: string) => `services:\n  web:\n    image: x\n${ok}${user}    volumes: ['${source}:/data:ro']\n`;
    expect(violations(yaml("    user: '1000:1000'\n", "/global/cfs/cdirs/proj/data"), policy)).toEqual([]);
    expect(violations(yaml("    user: '1000:1000'\n", "/global/cfs/cdirs-evil/x"), policy)).toEqual([
      "docker-compose.yml: services.web.volumes.0: bind mount /global/cfs/cdirs-evil/x is not under an allowed root (allowed: /global/cfs/cdirs)",
    ]);
    expect(violations(yaml("", "/global/cfs/cdirs/proj/../../../../etc"), policy)).toHaveLength(2);
    for (const root of ["/global/cfs/cdirs", "/global/cfs/cdirs/", "/global/cfs/cdirs/proj/.."]) {
      expect(violations(yaml("    user: '1000:1000'\n", root), policy), root).toEqual([
        `docker-compose.yml: services.web.volumes.0: bind mount ${root} is not under an allowed root (allowed: /global/cfs/cdirs)`,
      ]);
    }
    expect(violations(yaml("    user: www-data\n", "/global/cfs/cdirs/p"), policy)).toEqual([
      'docker-compose.yml: services.web.user: a service with bind mounts must run as a numeric user: UID:GID (not "www-data")',
    ]);
  });

  it("limits registries when the site lists them", () => {
    const policy = sitePolicySchema.parse({ registries: ["registry.nersc.gov"] });
    expect(violations(`services:\n  web:\n    image: registry.nersc.gov/p/app:1\n${ok}`, policy)).toEqual([]);
    expect(violations(`services:\n  web:\n    image: nginx\n${ok}`, policy)).toEqual(["docker-compose.yml: services.web.image: registry docker.io is not allowed (allowed: registry.nersc.gov)"]);
    expect(registryOf("localhost:5000/x")).toBe("localhost:5000");
    expect(registryOf("library/nginx:1")).toBe("docker.io");
  });

  it("reports every violation at once", () => {
    expect(violations(`services:\n  a:\n    image: x\n    privileged: true\n  b:\n    build: .\n${ok}    ports: ['80:80']\n`)).toHaveLength(4);
  });

  it("public ports and the range come from the policy file", () => {
    const policy = sitePolicySchema.parse({ portRange: "61000-61010", publicPorts: [443] });
    expect(violations(`services:\n  web:\n    image: x\n${ok}    ports: ['443:443', '61005:80']\n`, policy)).toEqual([]);
    expect(() => sitePolicySchema.parse({ portrange: "1-2" })).toThrow();
  });
});

describe("port assignment", () => {
  it("gives '- 80' the lowest free port, and keeps the one a service had", () => {
    const p = project(`services:\n  web:\n    image: x\n    ports: [80, '60000:81']\n  api:\n    image: x\n    ports: [8080]\n`);
    const first = assignPorts(p, defaultPolicy, new Set([60001]), {}, ctx);
    expect(first.project.services.web!.ports.map((x) => x.published)).toEqual([60002, 60000]);
    expect(first.project.services.api!.ports.map((x) => x.published)).toEqual([60003]);
    const again = assignPorts(p, defaultPolicy, new Set([60001]), { api: first.project.services.api!.ports }, ctx);
    expect(again.project.services.api!.ports[0]!.published).toBe(60003);
  });

  it("says so when the range is full", () => {
    const p = project(`services:\n  web:\n    image: x\n    ports: [80]\n`);
    const full = new Set(Array.from({ length: 51 }, (_, i) => 60000 + i));
    expect(assignPorts(p, defaultPolicy, full, {}, ctx).issues[0]?.reason).toBe("no free port left in 60000-60050");
  });
});
