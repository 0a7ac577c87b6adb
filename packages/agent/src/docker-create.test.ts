import { describe, expect, it } from "vitest";
import { dockerCreateOptions, restartPolicy } from "./docker-create.js";
import type { CreateSpec } from "./runtime.js";

const base: CreateSpec = { name: "demo-web-1", image: "app:1", env: {}, labels: { "io.corral.stack": "demo" }, ports: [], capAdd: [], capDrop: ["ALL"], network: "corral-demo", aliases: ["web"] };
const spec = (extra: Partial<CreateSpec> = {}): CreateSpec => ({ ...base, ...extra });

describe("a container's create body, in the engine's words", () => {
  it("names, labels and configures the container; the environment as KEY=value", () => {
    const o = dockerCreateOptions(spec({ env: { A: "1", B: "x=y" }, command: ["httpd"], entrypoint: ["/bin/sh"], user: "1000:1000", workingDir: "/app", hostname: "web" }));
    expect(o).toMatchObject({
      name: "demo-web-1",
      Image: "app:1",
      Env: ["A=1", "B=x=y"],
      Labels: { "io.corral.stack": "demo" },
      Cmd: ["httpd"],
      Entrypoint: ["/bin/sh"],
      User: "1000:1000",
      WorkingDir: "/app",
      Hostname: "web",
    });
    expect(o.HostConfig).toMatchObject({ CapAdd: [], CapDrop: ["ALL"], NetworkMode: "corral-demo" });
    for (const key of ["Cmd", "Entrypoint", "User", "WorkingDir", "Hostname", "Healthcheck", "StopSignal", "StopTimeout"]) expect(dockerCreateOptions(spec())).not.toHaveProperty(key);
  });

  it("exposes every port and binds the published ones, on their host address; `expose` is exposed alone, tcp unless it says", () => {
    const o = dockerCreateOptions(
      spec({
        ports: [
          { target: 8080, published: 60030, protocol: "tcp" },
          { target: 8080, published: 60031, host_ip: "127.0.0.1", protocol: "tcp" },
          { target: 53, published: 60053, protocol: "udp" },
        ],
        expose: ["7000", "7001/udp"],
      }),
    );
    expect(o.ExposedPorts).toEqual({ "8080/tcp": {}, "53/udp": {}, "7000/tcp": {}, "7001/udp": {} });
    expect(o.HostConfig.PortBindings).toEqual({
      "8080/tcp": [
        { HostIp: "", HostPort: "60030" },
        { HostIp: "127.0.0.1", HostPort: "60031" },
      ],
      "53/udp": [{ HostIp: "", HostPort: "60053" }],
    });
  });

  it("has the health check's durations in nanoseconds, and a disabled check as NONE", () => {
    const o = dockerCreateOptions(spec({ healthcheck: { test: ["CMD", "test", "-f", "/tmp/ok"], interval: 1000, timeout: 500, retries: 1, start_period: 2000, start_interval: 250 } }));
    expect(o.Healthcheck).toEqual({ Test: ["CMD", "test", "-f", "/tmp/ok"], Interval: 1e9, Timeout: 5e8, Retries: 1, StartPeriod: 2e9, StartInterval: 2.5e8 });
    expect(dockerCreateOptions(spec({ healthcheck: { test: ["CMD-SHELL", "true"] } })).Healthcheck).toEqual({ Test: ["CMD-SHELL", "true"] });
    expect(dockerCreateOptions(spec({ healthcheck: { disable: true, test: ["CMD", "true"] } })).Healthcheck).toEqual({ Test: ["NONE"] });
  });

  it("has binds, volumes and tmpfs mounts with their options, and no Mounts at all without any", () => {
    const o = dockerCreateOptions(
      spec({
        mounts: [
          { type: "bind", source: "/srv/site", target: "/srv", readOnly: true, propagation: "rslave" },
          { type: "volume", source: "db.demo", target: "/var/lib/db", noCopy: true },
          { type: "tmpfs", target: "/scratch", tmpfsSize: 2 ** 20, tmpfsMode: 0o1777 },
          { type: "bind", source: "/run/corral-secrets/x/0", target: "/run/secrets/pw", readOnly: true },
        ],
      }),
    );
    expect(o.HostConfig.Mounts).toEqual([
      { Type: "bind", Source: "/srv/site", Target: "/srv", ReadOnly: true, BindOptions: { Propagation: "rslave" } },
      { Type: "volume", Source: "db.demo", Target: "/var/lib/db", VolumeOptions: { NoCopy: true } },
      { Type: "tmpfs", Target: "/scratch", TmpfsOptions: { SizeBytes: 2 ** 20, Mode: 0o1777 } },
      { Type: "bind", Source: "/run/corral-secrets/x/0", Target: "/run/secrets/pw", ReadOnly: true },
    ]);
    expect(dockerCreateOptions(spec({ mounts: [] })).HostConfig).not.toHaveProperty("Mounts");
  });

});

describe("a container's host settings, in the engine's words", () => {
  it("has the resources, limits and host settings the spec asks for, and none it does not", () => {
    const o = dockerCreateOptions(
      spec({
        memory: 2 ** 28,
        memoryReservation: 2 ** 26,
        pidsLimit: 1024,
        nanoCpus: 5e8,
        shmSize: 2 ** 26,
        readOnly: true,
        tmpfs: ["/run:size=1m", "/tmp"],
        ulimits: { nproc: 512, nofile: { soft: 1024, hard: 2048 } },
        sysctls: { "net.core.somaxconn": "1024" },
        init: true,
        dns: ["10.200.3.1"],
        extraHosts: ["db=10.0.0.5", "cache:10.0.0.6"],
        groupAdd: ["100"],
        privileged: false,
      }),
    );
    expect(o.HostConfig).toMatchObject({
      Memory: 2 ** 28,
      MemoryReservation: 2 ** 26,
      PidsLimit: 1024,
      NanoCpus: 5e8,
      ShmSize: 2 ** 26,
      ReadonlyRootfs: true,
      Tmpfs: { "/run": "size=1m", "/tmp": "" },
      Ulimits: [
        { Name: "nproc", Soft: 512, Hard: 512 },
        { Name: "nofile", Soft: 1024, Hard: 2048 },
      ],
      Sysctls: { "net.core.somaxconn": "1024" },
      Init: true,
      Dns: ["10.200.3.1"],
      ExtraHosts: ["db:10.0.0.5", "cache:10.0.0.6"],
      GroupAdd: ["100"],
      Privileged: false,
    });
    expect(Object.keys(dockerCreateOptions(spec()).HostConfig).sort()).toEqual(["CapAdd", "CapDrop", "NetworkMode", "PortBindings"]);
  });

  it("has a logging driver (json-file unless named), the stop signal, and the grace period in whole seconds, rounded up", () => {
    const o = dockerCreateOptions(spec({ logging: { options: { "max-size": "10m", "max-file": "3" } }, stopSignal: "SIGINT", stopGraceMs: 2500 }));
    expect(o.HostConfig.LogConfig).toEqual({ Type: "json-file", Config: { "max-size": "10m", "max-file": "3" } });
    expect(o).toMatchObject({ StopSignal: "SIGINT", StopTimeout: 3 });
    expect(dockerCreateOptions(spec({ logging: { driver: "local" } })).HostConfig.LogConfig).toEqual({ Type: "local", Config: {} });
  });

  it("joins the stack network under the service's alias, at a fixed address when one is asked", () => {
    expect(dockerCreateOptions(spec()).NetworkingConfig).toEqual({ EndpointsConfig: { "corral-demo": { Aliases: ["web"] } } });
    const fixed = dockerCreateOptions(spec({ ipv4Address: "10.200.3.7", aliases: [] }));
    expect(fixed.NetworkingConfig).toEqual({ EndpointsConfig: { "corral-demo": { Aliases: [], IPAMConfig: { IPv4Address: "10.200.3.7" } } } });
  });

  it("with a network_mode of its own, is on that instead, with no endpoint in the stack network; default and bridge keep the stack network", () => {
    const o = dockerCreateOptions(spec({ networkMode: "none" }));
    expect(o.HostConfig.NetworkMode).toBe("none");
    expect(o).not.toHaveProperty("NetworkingConfig");
    for (const mode of ["default", "bridge"]) {
      const kept = dockerCreateOptions(spec({ networkMode: mode }));
      expect(kept.HostConfig.NetworkMode).toBe("corral-demo");
      expect(kept.NetworkingConfig).toEqual({ EndpointsConfig: { "corral-demo": { Aliases: ["web"] } } });
    }
  });
});

describe("a restart policy", () => {
  it("is Docker's: a name, with on-failure's retries; `no` is the empty policy", () => {
    expect(restartPolicy("on-failure:3")).toEqual({ Name: "on-failure", MaximumRetryCount: 3 });
    expect(restartPolicy("on-failure")).toEqual({ Name: "on-failure" });
    expect(restartPolicy("unless-stopped")).toEqual({ Name: "unless-stopped" });
    expect(restartPolicy("no")).toEqual({ Name: "" });
    expect(dockerCreateOptions(spec({ restart: "always" })).HostConfig.RestartPolicy).toEqual({ Name: "always" });
  });
});
