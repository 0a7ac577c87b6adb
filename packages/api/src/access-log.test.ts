import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { accessLog, shownPath } from "./access-log.js";

describe("access lines: what a user reads at info, the routine at debug", () => {
  const lines: Array<[string, string]> = [];
  const app = new Hono().use(accessLog({ debug: (m) => lines.push(["debug", m]), info: (m) => lines.push(["info", m]), error: () => {} })).all("*", (c) => c.json({}));

  it.each([
    ["POST", "/v1/hosts/node-1/heartbeat", "debug"],
    ["POST", "/v1/hosts/node-1/sessions/s-1/chunks", "debug"],
    ["GET", "/v1/stacks/web/events?after=3&wait=20", "debug"],
    ["POST", "/v1/stacks/web/up", "info"],
    ["DELETE", "/v1/stacks/web", "info"],
    ["GET", "/v1/hosts/node-1/secrets/web.app.pw", "info"],
    ["GET", "/v1/services", "info"],
  ])("%s %s at %s", async (method, path, level) => {
    lines.length = 0;
    await app.request(path, { method });
    expect(lines).toEqual([[level, expect.stringMatching(new RegExp(`^${method} ${path.split("?")[0]} 200 \\d+ms$`))]]);
  });
});

describe("access lines never carry a webhook's URL secret", () => {
  it("shows /hooks/ID/(secret) for a delivery from a sender that cannot sign, and other paths as they are", async () => {
    expect(shownPath("/hooks/hAbCdEfGhIjKl/s3cr3t-value_xyz")).toBe("/hooks/hAbCdEfGhIjKl/(secret)");
    expect(shownPath("/hooks/hAbCdEfGhIjKl")).toBe("/hooks/hAbCdEfGhIjKl");
    expect(shownPath("/hooks/hAbCdEfGhIjKl/s3cr3t/notify")).toBe("/hooks/hAbCdEfGhIjKl/(secret)"); // a sender's wrong URL: still no secret
    expect(shownPath("/v1/hooks/hAbCdEfGhIjKl/deliveries")).toBe("/v1/hooks/hAbCdEfGhIjKl/deliveries");
    const lines: string[] = [];
    const app = new Hono();
    app.use(accessLog({ info: (l: string) => lines.push(l), error: () => {}, debug: () => {} }));
    app.post("/hooks/:id/:secret", (c) => c.text("ok"));
    await app.request("/hooks/hAbCdEfGhIjKl/s3cr3t-value_xyz", { method: "POST" });
    expect(lines.join("\n")).not.toContain("s3cr3t");
    expect(lines[0]).toMatch(/^POST \/hooks\/hAbCdEfGhIjKl\/\(secret\) 200 \d+ms$/);
  });
});
