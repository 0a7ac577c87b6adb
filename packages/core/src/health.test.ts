import { describe, expect, it } from "vitest";
import { healthWarnings } from "./health.js";
import { spec } from "./testing.js";

describe("health settings that cannot work are warned about, at the file, service and key", () => {
  const check = { test: ["CMD", "true"], interval: 2000, retries: 3, start_period: 1000 };

  it("an update monitor shorter than start_period + retries × interval", () => {
    const web = spec("web:1", { healthcheck: check, deploy: { update_config: { monitor: 5000 } } });
    expect(healthWarnings({ services: { web } }, "docker-compose.yml")).toEqual([
      {
        file: "docker-compose.yml",
        path: "services.web.deploy.update_config.monitor",
        reason: "5s ends before a failing health check can fail (start_period + retries × interval = 7s): a broken update passes as healthy",
      },
    ]);
    const long = spec("web:1", { healthcheck: check, deploy: { update_config: { monitor: 7000 } } });
    expect(healthWarnings({ services: { web: long } }, "docker-compose.yml")).toEqual([]);
    // Docker's defaults where the check leaves them out: 3 × 30 s
    const defaults = spec("web:1", { healthcheck: { test: ["CMD", "true"] }, deploy: { update_config: { monitor: 60_000 } } });
    expect(healthWarnings({ services: { web: defaults } }, "f.yml")[0]?.reason).toMatch(/= 90s\)/);
  });

  it("start-first or routed ports without a health check; failure_action rollback without one", () => {
    const services = {
      first: spec("a:1", { deploy: { update_config: { order: "start-first" } } }),
      routed: spec("b:1", { ports: [{ target: 80, published: 8080, protocol: "tcp", mode: "ingress" }] }),
      back: spec("c:1", { deploy: { update_config: { failure_action: "rollback" } } }),
      fine: spec("d:1", { healthcheck: check, deploy: { update_config: { order: "start-first", failure_action: "rollback" } } }),
      plain: spec("e:1"),
    };
    const out = healthWarnings({ services }, "docker-compose.yml", { back: { deploy: "prod.yml" } });
    expect(out.map((w) => `${w.file} ${w.path}`)).toEqual([
      "docker-compose.yml services.first.healthcheck",
      "docker-compose.yml services.routed.healthcheck",
      "prod.yml services.back.deploy.update_config.failure_action",
    ]);
    expect(out[0]!.reason).toBe("the service updates start-first but has no health check: a new container joins before it can serve");
    // a check switched off is none
    expect(healthWarnings({ services: { x: spec("x:1", { healthcheck: { disable: true }, deploy: { update_config: { order: "start-first" } } }) } }, "f.yml")).toHaveLength(1);
  });
});
