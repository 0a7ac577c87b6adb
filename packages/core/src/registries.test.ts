import { describe, expect, it } from "vitest";
import { registryOf } from "./images.js";
import { registryServerProblem } from "./registries.js";

describe("registry servers", () => {
  it.each(["registry.example.org", "127.0.0.1:5000", "localhost", "localhost:5000", "198.18.2.1:40001", "docker.io", "a-b.c9.example:1"])("accepts %s, the server its images name", (server) => {
    expect(registryServerProblem(server)).toBeUndefined();
    expect(registryOf(`${server}/private/app:1`)).toBe(server);
  });

  it.each([
    ["", /required/],
    ["https://registry.example.org", /without a scheme \(registry\.example\.org\)/],
    ["registry.example.org/team", /without a path/],
    ["Registry.example.org", /lower case/],
    ["myhost", /Docker Hub account/],
    ["reg.example.org:0", /port 0 is not 1-65535/],
    ["reg.example.org:70000", /port 70000/],
    ["user@reg.example.org", /not host or host:port/],
    ["reg..example.org", /not host or host:port/],
    ["-reg.example.org", /not host or host:port/],
    ["reg.example.org:", /not host or host:port/],
    ["reg example.org", /not host or host:port/],
    [`${"a".repeat(250)}.example.org`, /longer than 259/],
  ])("refuses %j", (server, why) => {
    expect(registryServerProblem(server)).toMatch(why);
  });
});
