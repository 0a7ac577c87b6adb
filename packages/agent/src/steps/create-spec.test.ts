import { describe, expect, it } from "vitest";
import type { ServiceSpec, Step } from "@corral/core";
import { restartOf } from "@corral/core";
import { createSpecOf } from "./create-spec.js";

const spec = (extra: Partial<ServiceSpec> = {}): ServiceSpec => ({ image: "app:1", environment: {}, labels: {}, ports: [], cap_add: [], cap_drop: ["ALL"], scale: 1, ...extra });

/** A create step as the decider plans it (demo/web, slot 2, revision 3). */
const step = (extra: Partial<Step> = {}): Step => ({
  id: "demo.web.2.create.r3.op1",
  op: "op1",
  stack: "demo",
  service: "web",
  slot: 2,
  revision: 3,
  action: "create",
  host: "h1",
  image: "app:1",
  container: "demo-web-2",
  hash: "cafe",
  after: [],
  ...extra,
});

const here = { hostId: "h1", mounts: [] };

describe("a create step's container", () => {
  it("is named and labelled by the step: whose it is, which revision and create made it, on which host and control plane", () => {
    const c = createSpecOf(step(), spec(), { ...here, controlId: "0123456789abcdef" });
    expect(c.name).toBe("demo-web-2");
    expect(c.image).toBe("app:1");
    expect(c.labels).toEqual({
      "io.corral.stack": "demo",
      "io.corral.service": "web",
      "io.corral.slot": "2",
      "io.corral.revision": "3",
      "io.corral.step": "demo.web.2.create.r3.op1",
      "io.corral.config-hash": "cafe",
      "io.corral.host": "h1",
      "io.corral.control": "0123456789abcdef",
    });
  });

  it("keeps the service's own labels (deploy.labels under labels), and corral's win over them", () => {
    const c = createSpecOf(step({ slot: undefined, hash: undefined }), spec({ labels: { team: "a", "io.corral.stack": "other" }, deploy: { labels: { team: "b", tier: "web" } } }), here);
    expect(c.labels).toMatchObject({ team: "a", tier: "web", "io.corral.stack": "demo", "io.corral.slot": "1", "io.corral.config-hash": "" });
    expect(c.labels).not.toHaveProperty("io.corral.control");
    expect(c.labels).not.toHaveProperty("io.corral.routes");
  });

  it("binds its direct ports on the container; routed ones (ingress) only in io.corral.routes, for the router", () => {
    const ports: ServiceSpec["ports"] = [
      { target: 80, published: 60080, protocol: "tcp", mode: "ingress" },
      { target: 53, published: 60053, protocol: "udp" },
      { target: 9000, published: 60090, host_ip: "127.0.0.1", protocol: "tcp", mode: "host" },
    ];
    const c = createSpecOf(step(), spec({ ports, expose: ["7000"] }), here);
    expect(c.ports).toEqual([ports[1], ports[2]]);
    expect(c.labels["io.corral.routes"]).toBe("60080:80");
    expect(c.expose).toEqual(["7000"]);
  });

  it("takes the mounts the step readied on the host as they are", () => {
    const mounts = [
      { type: "bind" as const, source: "/srv/site", target: "/srv", readOnly: true },
      { type: "volume" as const, source: "db.demo", target: "/var/lib/db", noCopy: true },
    ];
    expect(createSpecOf(step(), spec(), { ...here, mounts }).mounts).toEqual(mounts);
    expect(createSpecOf(step(), spec(), here)).not.toHaveProperty("mounts");
  });

  it("has the service's health check, or Rancher's health_check as its equivalent", () => {
    const healthcheck = { test: ["CMD", "test", "-f", "/tmp/ok"], interval: 1000, timeout: 1000, retries: 1 };
    expect(createSpecOf(step(), spec({ healthcheck }), here).healthcheck).toEqual(healthcheck);
    expect(createSpecOf(step(), spec({ healthcheck: { disable: true } }), here).healthcheck).toEqual({ disable: true });
    const rancher = createSpecOf(step(), spec({ health_check: { port: 8080, request_line: "GET /healthz HTTP/1.0", interval: 2000, unhealthy_threshold: 3 } }), here);
    expect(rancher.healthcheck).toEqual({ test: ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:8080/healthz || exit 1"], interval: 2000, retries: 3 });
    expect(createSpecOf(step(), spec(), here)).not.toHaveProperty("healthcheck");
  });

});

describe("a create step's container settings", () => {
  it("has the limits of mem_limit and cpus, else of deploy.resources, and deploy's reservation and pids", () => {
    const deploy = { resources: { limits: { memory: 256 * 2 ** 20, cpus: 0.5, pids: 100 }, reservations: { memory: 64 * 2 ** 20 } } };
    expect(createSpecOf(step(), spec({ deploy }), here)).toMatchObject({ memory: 256 * 2 ** 20, nanoCpus: 500_000_000, pidsLimit: 100, memoryReservation: 64 * 2 ** 20 });
    expect(createSpecOf(step(), spec({ deploy, mem_limit: 2 ** 30, cpus: 1.25 }), here)).toMatchObject({ memory: 2 ** 30, nanoCpus: 1_250_000_000 });
    const bare = createSpecOf(step(), spec(), here);
    for (const key of ["memory", "nanoCpus", "pidsLimit", "memoryReservation"]) expect(bare).not.toHaveProperty(key);
  });

  it("carries the rest of the service's settings across under the runtime's names", () => {
    const c = createSpecOf(
      step(),
      spec({
        command: ["httpd", "-f"],
        entrypoint: ["/bin/sh", "-c"],
        environment: { GREETING: "hello" },
        cap_add: ["CHOWN"],
        user: "1000:1000",
        group_add: ["100"],
        working_dir: "/app",
        stop_signal: "SIGINT",
        stop_grace_period: 2500,
        read_only: true,
        tmpfs: ["/run:size=1m"],
        ulimits: { nofile: { soft: 1024, hard: 2048 } },
        shm_size: 2 ** 26,
        sysctls: { "net.core.somaxconn": "1024" },
        init: true,
        hostname: "web",
        extra_hosts: ["db=10.0.0.5"],
        logging: { driver: "json-file", options: { "max-size": "10m" } },
        privileged: false,
        network_mode: "none",
      }),
      here,
    );
    expect(c).toMatchObject({
      command: ["httpd", "-f"],
      entrypoint: ["/bin/sh", "-c"],
      env: { GREETING: "hello" },
      capAdd: ["CHOWN"],
      capDrop: ["ALL"],
      user: "1000:1000",
      groupAdd: ["100"],
      workingDir: "/app",
      stopSignal: "SIGINT",
      stopGraceMs: 2500,
      readOnly: true,
      tmpfs: ["/run:size=1m"],
      ulimits: { nofile: { soft: 1024, hard: 2048 } },
      shmSize: 2 ** 26,
      sysctls: { "net.core.somaxconn": "1024" },
      init: true,
      hostname: "web",
      extraHosts: ["db=10.0.0.5"],
      logging: { driver: "json-file", options: { "max-size": "10m" } },
      privileged: false,
      networkMode: "none",
    });
  });

  it("joins the stack network, answering to its service's name on this host, at the address retain_ip kept", () => {
    const c = createSpecOf(step({ ip: "10.200.3.7" }), spec({ dns: ["1.1.1.1"] }), here);
    expect(c).toMatchObject({ network: "corral-demo", aliases: ["web"], ipv4Address: "10.200.3.7", dns: ["1.1.1.1"] });
    expect(createSpecOf(step(), spec(), here)).not.toHaveProperty("dns");
  });

  it("on the overlay, asks the stack's name server on the network's gateway first, and takes no alias", () => {
    const assigned = { subnet: "10.200.3.0/24", bridge: "cr-0123456789ab", gateway: "10.200.3.1" };
    expect(createSpecOf(step(), spec({ dns: ["1.1.1.1"] }), { ...here, assigned })).toMatchObject({ network: "corral-demo", aliases: [], dns: ["10.200.3.1", "1.1.1.1"] });
    expect(createSpecOf(step(), spec(), { ...here, assigned }).dns).toEqual(["10.200.3.1"]);
  });
});

describe("a container's restart policy", () => {
  it("is restart: as written, else deploy.restart_policy in Docker's words", () => {
    expect(restartOf(spec({ restart: "unless-stopped", deploy: { restart_policy: { condition: "any" } } }))).toBe("unless-stopped");
    expect(restartOf(spec({ deploy: { restart_policy: { condition: "none" } } }))).toBe("no");
    expect(restartOf(spec({ deploy: { restart_policy: { condition: "any" } } }))).toBe("always");
    expect(restartOf(spec({ deploy: { restart_policy: { condition: "on-failure" } } }))).toBe("on-failure");
    expect(restartOf(spec({ deploy: { restart_policy: { condition: "on-failure", max_attempts: 3 } } }))).toBe("on-failure:3");
    expect(restartOf(spec())).toBeUndefined();
    expect(createSpecOf(step(), spec({ deploy: { restart_policy: { condition: "on-failure", max_attempts: 3 } } }), here).restart).toBe("on-failure:3");
    expect(createSpecOf(step(), spec(), here)).not.toHaveProperty("restart");
  });
});
