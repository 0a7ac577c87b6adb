import { describe, expect, it } from "vitest";
import type { Project } from "@corral/core";
import { selectServices } from "./select.js";

const svc = (deps: string[] = []) => ({
  image: "x",
  scale: 1,
  ...(deps.length ? { depends_on: Object.fromEntries(deps.map((d) => [d, { condition: "service_started" as const, required: true }])) } : {}),
});
const services = { web: svc(["api"]), api: svc(["db"]), db: svc(), cache: svc(), worker: svc(["db"]) } as unknown as Project["services"];

describe("up SERVICE...: which services of the file", () => {
  it("takes the named ones and what they depend on, transitively, in the file's order", () => {
    expect(selectServices(services, ["web"], "docker-compose.yml")).toEqual({ services: ["web", "api", "db"], issues: [] });
    expect(selectServices(services, ["cache", "worker"], "docker-compose.yml")).toEqual({ services: ["db", "cache", "worker"], issues: [] });
  });

  it("names the file and the service a file does not have", () => {
    const { issues } = selectServices(services, ["web", "nosuch"], "docker-compose.yml");
    expect(issues).toEqual([{ file: "docker-compose.yml", path: "services.nosuch", reason: "no service nosuch in docker-compose.yml (services: web, api, db, cache, worker)" }]);
  });

  it("survives a dependency cycle", () => {
    const cyclic = { a: svc(["b"]), b: svc(["a"]), c: svc() } as unknown as Project["services"];
    expect(selectServices(cyclic, ["a"], "f.yml").services).toEqual(["a", "b"]);
  });
});
