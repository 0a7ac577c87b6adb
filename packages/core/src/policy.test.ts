import { describe, expect, it } from "vitest";
import { parseComposeYaml, parseProject } from "./compose.js";
import { registryOf } from "./images.js";
import { applySiteDefaults, assignPorts, checkPolicy, defaultPolicy, sitePolicySchema, volumeProblems } from "./policy.js";
import { loadProject } from "./project.js";

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
        `docker-compose.yml: services.web.volumes.0: bind mount ${root} is an allowed root itself: mount a folder inside it`,
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
    expect(() => sitePolicySchema.parse({ portRange: "61010-61000" })).toThrow("a range of ports from low to high");
    expect(() => sitePolicySchema.parse({ portRange: [0, 70000] })).toThrow("within 1-65535");
  });
});

describe("port assignment", () => {
  const ingress = (target: number) => `{target: ${target}, mode: ingress}`;
  it("gives a routed port without a host port the lowest free port, and keeps the one a service had", () => {
    const p = project(`services:\n  web:\n    image: x\n    ports: [${ingress(80)}, '60000:81']\n  api:\n    image: x\n    ports: [${ingress(8080)}]\n`);
    const first = assignPorts(p, defaultPolicy, new Set([60001]), {}, ctx);
    expect(first.project.services.web!.ports.map((x) => x.published)).toEqual([60002, 60000]);
    expect(first.project.services.api!.ports.map((x) => x.published)).toEqual([60003]);
    const again = assignPorts(p, defaultPolicy, new Set([60001]), { api: first.project.services.api!.ports }, ctx);
    expect(again.project.services.api!.ports[0]!.published).toBe(60003);
  });

  it("leaves '- 80' without a host port: each container gets its own (assignSlotPorts)", () => {
    const p = project(`services:\n  web:\n    image: x\n    ports: [80]\n`);
    expect(assignPorts(p, defaultPolicy, new Set(), {}, ctx).project.services.web!.ports).toEqual([{ target: 80, protocol: "tcp" }]);
  });

  it("says so when the range is full", () => {
    const p = project(`services:\n  web:\n    image: x\n    ports: [${ingress(80)}]\n`);
    const full = new Set(Array.from({ length: 51 }, (_, i) => 60000 + i));
    expect(assignPorts(p, defaultPolicy, full, {}, ctx).issues[0]?.reason).toBe("no free port left in 60000-60050");
  });
});

describe("volume drivers and options belong to the site", () => {
  const nfsPolicy = sitePolicySchema.parse({ nfsServers: ["10.0.0.1"] });
  const withVolume = (spec: string) => `services:\n  db:\n    image: x\n${ok}    volumes: ['db.mystack:/d']\nvolumes:\n  db.mystack: ${spec}\n`;
  const nfsForm = "the local driver takes no options but an NFS mount (type: nfs, o: addr=SERVER, device: :/PATH)";

  it("accepts local without options, and NFS to a server the site names with its options", () => {
    expect(violations(withVolume("{}"))).toEqual([]);
    expect(violations(withVolume("{driver: local}"))).toEqual([]);
    expect(violations(withVolume("{driver_opts: {type: nfs, o: 'addr=10.0.0.1,vers=4.1,ro,nosuid', device: ':/exports/site'}}"), nfsPolicy)).toEqual([]);
    expect(violations(withVolume("{external: true}"))).toEqual([]); // checked when 'corral volume create' made it
  });

  it.each([
    ["a bind mount of the host's root", "{driver_opts: {type: none, o: bind, device: /}}", `docker-compose.yml: volumes.db.mystack.driver_opts.type: none is not allowed: ${nfsForm}`],
    ["a raw disk", "{driver: local, driver_opts: {type: ext4, device: /dev/sda1}}", `docker-compose.yml: volumes.db.mystack.driver_opts.type: ext4 is not allowed: ${nfsForm}`],
    ["options without a type", "{driver_opts: {device: /, o: bind}}", `docker-compose.yml: volumes.db.mystack.driver_opts.device: is not allowed: ${nfsForm}`],
    ["a plugin driver", "{driver: rexray/ebs, driver_opts: {size: 10}}", "docker-compose.yml: volumes.db.mystack.driver: rexray/ebs is not allowed (allowed: local)"],
    ["NFS to a server the site does not name", "{driver_opts: {type: nfs, o: addr=10.9.9.9, device: ':/x'}}", "docker-compose.yml: volumes.db.mystack.driver_opts.o: NFS server 10.9.9.9 is not allowed (allowed: 10.0.0.1)"],
    ["NFS without a server", "{driver_opts: {type: nfs, device: ':/x'}}", "docker-compose.yml: volumes.db.mystack.driver_opts.o: must name one NFS server as addr=SERVER (allowed: 10.0.0.1)"],
    ["NFS with two servers", "{driver_opts: {type: nfs, o: 'addr=10.0.0.1,addr=10.9.9.9', device: ':/x'}}", "docker-compose.yml: volumes.db.mystack.driver_opts.o: must name one NFS server as addr=SERVER (allowed: 10.0.0.1)"],
    ["NFS with bind in o=", "{driver_opts: {type: nfs, o: 'addr=10.0.0.1,bind', device: ':/x'}}", expect.stringMatching(/^docker-compose\.yml: volumes\.db\.mystack\.driver_opts\.o: bind is not an allowed NFS option \(allowed: addr, vers, /)],
    ["NFS with suid in o=", "{driver_opts: {type: nfs, o: 'addr=10.0.0.1,suid', device: ':/x'}}", expect.stringMatching(/driver_opts\.o: suid is not an allowed NFS option/)],
    ["NFS with a device that is not a server path", "{driver_opts: {type: nfs, o: addr=10.0.0.1, device: /dev/sda1}}", 'docker-compose.yml: volumes.db.mystack.driver_opts.device: "/dev/sda1" must be the server\'s path as :/PATH'],
    ["NFS with another option", "{driver_opts: {type: nfs, o: addr=10.0.0.1, device: ':/x', mountpoint: /}}", "docker-compose.yml: volumes.db.mystack.driver_opts.mountpoint: is not an NFS option (allowed: type, o, device)"],
  ])("refuses %s", (_name, spec, message) => {
    expect(violations(withVolume(spec), nfsPolicy)).toEqual([message]);
  });

  it("the default names no NFS server; a site may add a plugin driver it vouches for", () => {
    expect(violations(withVolume("{driver_opts: {type: nfs, o: addr=10.0.0.1, device: ':/x'}}"))).toEqual([
      "docker-compose.yml: volumes.db.mystack.driver_opts.o: NFS server 10.0.0.1 is not allowed (allowed: none)",
    ]);
    expect(violations(withVolume("{driver: rexray/ebs, driver_opts: {size: 10}}"), sitePolicySchema.parse({ volumeDrivers: ["local", "rexray/ebs"] }))).toEqual([]);
  });

  it("volumeProblems serves 'volume create' too: Docker's words for the volume, each naming its key", () => {
    expect(volumeProblems("local", {}, defaultPolicy)).toEqual([]);
    expect(volumeProblems("local", { type: "none", o: "bind", device: "/" }, defaultPolicy)).toEqual([{ key: "driver_opts.type", reason: `none is not allowed: ${nfsForm}` }]);
    expect(volumeProblems("local", { type: "nfs", o: "addr=10.0.0.1", device: ":/x" }, nfsPolicy)).toEqual([]);
  });
});

describe("scale is bounded by the site", () => {
  it.each([
    ["compose scale", "    scale: 101\n", "docker-compose.yml: services.web.scale: 101 containers is above the site's limit of 100 per service"],
    ["deploy.replicas", "    deploy: {replicas: 10000}\n", "docker-compose.yml: services.web.deploy.replicas: 10000 containers is above the site's limit of 100 per service"],
  ])("refuses %s above maxScale", (_name, extra, message) => {
    expect(violations(`services:\n  web:\n    image: x\n${ok}${extra}`)).toEqual([message]);
    expect(violations(`services:\n  web:\n    image: x\n${ok}${extra.replace(/\d+/, "100")}`)).toEqual([]);
  });

  it("refuses a rancher-compose scale naming rancher-compose.yml, and follows the policy's maxScale", () => {
    const loaded = loadProject({ files: [{ name: "docker-compose.yml", document: { services: { web: { image: "x", cap_drop: ["ALL"] } } } }], rancher: { name: "rancher-compose.yml", document: { services: { web: { scale: 6 } } } } });
    const policy = sitePolicySchema.parse({ maxScale: 5 });
    expect(checkPolicy(loaded.project, policy, { stack: "mystack", file: loaded.file, origins: loaded.origins })).toEqual([
      { file: "rancher-compose.yml", path: "services.web.scale", reason: "6 containers is above the site's limit of 5 per service" },
    ]);
    expect(checkPolicy(loaded.project, defaultPolicy, { stack: "mystack", file: loaded.file, origins: loaded.origins })).toEqual([]);
  });
});

describe("bind mounts: strictly under a root, as a uid and gids the caller may use", () => {
  const policy = sitePolicySchema.parse({ bindRoots: ["/global/cfs/cdirs"], bindIds: { users: { alice: "5000-5999", bob: { uids: "6001", gids: ["6001", "60100-60199"] } } } });
  const service = (user: string, extra = "", source = "/global/cfs/cdirs/proj") => `services:\n  web:\n    image: x\n${ok}    user: '${user}'\n${extra}    volumes: ['${source}:/data:ro']\n`;
  const check = (yaml: string, user?: string) => checkPolicy(project(yaml), policy, { ...ctx, ...(user ? { user } : {}) }).map((i) => `${i.path}: ${i.reason}`);

  it("refuses root, by uid, by gid and by group_add, by default", () => {
    expect(check(service("1000:1000"))).toEqual([]);
    expect(check(service("0:0"))).toEqual([
      "services.web.user: uid 0 is not allowed for a user with bind mounts (allowed: 1000-65535)",
      "services.web.user: gid 0 is not allowed for a user with bind mounts (allowed: 1000-65535)",
    ]);
    expect(check(service("1000:0"))).toEqual(["services.web.user: gid 0 is not allowed for a user with bind mounts (allowed: 1000-65535)"]);
    expect(check(service("1000:1000", "    group_add: ['0', '1001', wheel]\n"))).toEqual([
      "services.web.group_add.0: gid 0 is not allowed for a user with bind mounts (allowed: 1000-65535)",
      'services.web.group_add.2: a service with bind mounts adds groups by number (not "wheel")',
    ]);
  });

  it("ties the ids to the caller: a user's own ranges replace the default", () => {
    expect(check(service("5001:5001"), "alice")).toEqual([]);
    expect(check(service("1000:1000"), "alice")).toEqual([
      "services.web.user: uid 1000 is not allowed for user alice with bind mounts (allowed: 5000-5999)",
      "services.web.user: gid 1000 is not allowed for user alice with bind mounts (allowed: 5000-5999)",
    ]);
    expect(check(service("5001:5001"), "carol")).toEqual([]); // carol has no rule: the default
    expect(check(service("6001:60150", "    group_add: ['6001']\n"), "bob")).toEqual([]);
    expect(check(service("6002:6001"), "bob")).toEqual(["services.web.user: uid 6002 is not allowed for user bob with bind mounts (allowed: 6001)"]);
    expect(() => sitePolicySchema.parse({ bindIds: { default: "9-1" } })).toThrow();
    expect(() => sitePolicySchema.parse({ bindIds: { defaults: "1000" } })).toThrow();
  });

  it("refuses the root folder itself, with or without a trailing slash", () => {
    for (const source of ["/global/cfs/cdirs", "/global/cfs/cdirs/", "/global/cfs/cdirs/proj/.."]) {
      expect(check(service("1000:1000", "", source))).toEqual([`services.web.volumes.0: bind mount ${source} is an allowed root itself: mount a folder inside it`]);
    }
    const everything = sitePolicySchema.parse({ bindRoots: ["/"] });
    expect(checkPolicy(project(service("1000:1000", "", "/")), everything, ctx).map((i) => i.reason)).toEqual(["bind mount / is an allowed root itself: mount a folder inside it"]);
  });

  it("refuses propagation from the container to the host", () => {
    const mount = (propagation: string) =>
      `services:\n  web:\n    image: x\n${ok}    user: '1000:1000'\n    volumes:\n      - {type: bind, source: /global/cfs/cdirs/p, target: /d, bind: {propagation: ${propagation}}}\n`;
    expect(check(mount("rslave"))).toEqual([]);
    for (const p of ["rshared", "shared"]) {
      expect(check(mount(p))).toEqual([`services.web.volumes.0.bind.propagation: ${p} is not allowed: mounts must not propagate from the container to the host (allowed: private, rprivate, slave, rslave)`]);
    }
  });
});

describe("logging, limits, tmpfs and secret modes", () => {
  it.each([
    ["awslogs (the daemon's credentials)", "    logging: {driver: awslogs, options: {awslogs-group: g}}\n", "services.web.logging.driver: awslogs is not allowed (allowed: json-file, local, none)"],
    ["syslog to any address", "    logging: {driver: syslog, options: {syslog-address: 'udp://1.2.3.4:514'}}\n", "services.web.logging.driver: syslog is not allowed (allowed: json-file, local, none)"],
    ["gelf", "    logging: {driver: gelf}\n", "services.web.logging.driver: gelf is not allowed (allowed: json-file, local, none)"],
    ["a max-size above the cap", "    logging: {driver: json-file, options: {max-size: 1g}}\n", "services.web.logging.options.max-size: 1g is above the site's limit of 10m"],
    ["an unlimited max-size", "    logging: {options: {max-size: '-1'}}\n", 'services.web.logging.options.max-size: invalid size "-1" (examples: 10m, 512k)'],
    ["a max-file above the cap", "    logging: {driver: local, options: {max-file: 100}}\n", "services.web.logging.options.max-file: 100 is not allowed (allowed: 1-3)"],
    ["an option the driver does not bound", "    logging: {driver: local, options: {mode: non-blocking}}\n", "services.web.logging.options.mode: is not an option of the local driver corral allows (allowed: max-size, max-file, compress)"],
    ["a pids limit above the cap", "    deploy: {resources: {limits: {pids: 1000000}}}\n", "services.web.deploy.resources.limits.pids: 1000000 is not allowed (allowed: 1-32768 processes)"],
    ["an unlimited pids limit", "    deploy: {resources: {limits: {pids: -1}}}\n", "services.web.deploy.resources.limits.pids: -1 is not allowed (allowed: 1-32768 processes)"],
    ["a tmpfs with exec", "    tmpfs: ['/run:rw,exec']\n", "services.web.tmpfs.0: tmpfs /run: exec is not allowed (a tmpfs is mounted noexec,nosuid,nodev)"],
    ["a tmpfs with suid", "    tmpfs: /tmp:suid,size=1m\n", "services.web.tmpfs.0: tmpfs /tmp: suid is not allowed (a tmpfs is mounted noexec,nosuid,nodev)"],
    ["a setuid secret", "    secrets: [{source: web.mystack.pw, mode: '4755'}]\n", "services.web.secrets.0.mode: mode 4755 is not allowed: a secret's mode is permissions only, at most 0777 (no setuid, setgid or sticky bit)"],
  ])("refuses %s", (_name, extra, message) => {
    const top = extra.includes("secrets") ? "secrets:\n  web.mystack.pw: {file: /x}\n" : "";
    expect(checkPolicy(project(`services:\n  web:\n    image: x\n${ok}${extra}${top}`), defaultPolicy, ctx).map((i) => `${i.path}: ${i.reason}`)).toEqual([message]);
  });

  it("a tmpfs mount (long syntax) takes size and mode only: Docker mounts it noexec,nosuid,nodev, and exec or suid cannot be asked for", () => {
    const mount = (tmpfs: string) => `services:\n  web:\n    image: x\n${ok}    volumes:\n      - {type: tmpfs, target: /scratch, tmpfs: ${tmpfs}}\n`;
    expect(violations(mount("{size: 1m, mode: 1777}"))).toEqual([]);
    expect(() => project(mount("{size: 1m, exec: true}"))).toThrow("services.web.volumes.0.tmpfs.exec: not supported");
    expect(() => project(mount("{options: [suid]}"))).toThrow("services.web.volumes.0.tmpfs.options: not supported");
  });

  it("accepts bounded logs, a tmpfs without exec, and an ordinary secret mode", () => {
    expect(violations(`services:\n  web:\n    image: x\n${ok}    logging: {driver: json-file, options: {max-size: 5m, max-file: '2', tag: web}}\n    tmpfs: ['/run:rw,noexec,size=1m']\n`)).toEqual([]);
    expect(violations(`services:\n  web:\n    image: x\n${ok}    logging: {driver: none}\n`)).toEqual([]);
    const policy = sitePolicySchema.parse({ loggingDrivers: ["json-file", "syslog"] });
    expect(violations(`services:\n  web:\n    image: x\n${ok}    logging: {driver: syslog, options: {syslog-address: 'udp://logs:514'}}\n`, policy)).toEqual([]);
  });

  it("refuses memory above the site's maxMemory", () => {
    const policy = sitePolicySchema.parse({ maxMemory: "1g" });
    expect(violations(`services:\n  web:\n    image: x\n${ok}    mem_limit: 2g\n    deploy: {resources: {limits: {memory: 4g}}}\n`, policy)).toEqual([
      "docker-compose.yml: services.web.mem_limit: 2g is above the site's limit of 1g",
      "docker-compose.yml: services.web.deploy.resources.limits.memory: 4g is above the site's limit of 1g",
    ]);
  });

  it("applies the site's defaults where a service sets none, keeps what it set, and is idempotent", () => {
    const p = project(`services:\n  a:\n    image: x\n  b:\n    image: x\n    logging: {driver: local, options: {max-size: 1m}}\n    deploy: {resources: {limits: {pids: 64}}}\n  c:\n    image: x\n    logging: {driver: none}\n`);
    const once = applySiteDefaults(p, defaultPolicy);
    expect(once.services.a!.logging).toEqual({ driver: "json-file", options: { "max-size": "10m", "max-file": "3" } });
    expect(once.services.a!.deploy?.resources?.limits).toEqual({ pids: 1024 });
    expect(once.services.b!.logging).toEqual({ driver: "local", options: { "max-size": "1m", "max-file": "3" } });
    expect(once.services.b!.deploy?.resources?.limits).toEqual({ pids: 64 });
    expect(once.services.c!.logging).toEqual({ driver: "none" });
    expect(applySiteDefaults(once, defaultPolicy)).toEqual(once);
    expect(checkPolicy(once, defaultPolicy, ctx).filter((i) => !i.path.endsWith("cap_drop"))).toEqual([]);
    const memory = applySiteDefaults(p, sitePolicySchema.parse({ maxMemory: "2g", defaultMemory: "512m" }));
    expect(memory.services.a!.deploy?.resources?.limits).toEqual({ pids: 1024, memory: 512 * 1024 ** 2 });
    expect(() => sitePolicySchema.parse({ defaultPidsLimit: 100, maxPidsLimit: 10 })).toThrow();
  });
});
