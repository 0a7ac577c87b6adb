import { mkdirSync, mkdtempSync, realpathSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { ServiceSpec, Step } from "@corral/core";
import { StepRunner, type AgentOptions } from "./agent.js";
import { FakeRuntime } from "./fake-runtime.js";

const spec = (extra: Partial<ServiceSpec> = {}): ServiceSpec => ({ image: "app:1", environment: {}, labels: {}, ports: [], cap_add: [], cap_drop: ["ALL"], scale: 1, ...extra });

/** A step as the decider plans it (demo/web, slot 1, revision 1). */
const step = (action: Step["action"], extra: Partial<Step> = {}): Step => ({
  id: `demo.web.1.${action}.r1.op1`,
  op: "op1",
  stack: "demo",
  service: "web",
  slot: 1,
  revision: 1,
  action,
  host: "h1",
  image: "app:1",
  container: "demo-web-1",
  after: [],
  ...(action === "create" ? { spec: spec(), hash: "h" } : {}),
  ...extra,
});

const runner = (rt: FakeRuntime, extra: Partial<AgentOptions> = {}) => new StepRunner({ hostId: "h1", runtime: rt, report: () => Promise.resolve(), ...extra });

describe("bind mounts on the host", () => {
  const site = () => {
    const root = realpathSync(mkdtempSync(join(tmpdir(), "corral-agent-binds-")));
    mkdirSync(join(root, "proj", "data"), { recursive: true });
    symlinkSync("/", join(root, "proj", "escape"));
    symlinkSync(join(root, "proj", "data"), join(root, "proj", "alias"));
    return root;
  };
  const bind = (source: string) => spec({ user: "0:0", volumes: [{ type: "bind", source, target: "/data", read_only: true }] });

  it("a symlink to / inside an allowed root is refused, and nothing is created", async () => {
    const root = site();
    const rt = new FakeRuntime({ "app:1": {} });
    const out = await runner(rt, { bindRoots: [root] }).run(step("create", { spec: bind(join(root, "proj", "escape")) }));
    expect(out).toEqual({ ok: false, error: `bind mount ${join(root, "proj", "escape")} (it resolves to /) is not under an allowed root (allowed: ${root}; the root itself is not)` });
    expect(rt.calls).toEqual([]);
  });

  it("the root itself is refused, and an agent told no roots mounts no bind", async () => {
    const root = site();
    const rt = new FakeRuntime({ "app:1": {} });
    expect(await runner(rt, { bindRoots: [root] }).run(step("create", { spec: bind(root) }))).toMatchObject({ ok: false, error: expect.stringContaining("is not under an allowed root") as unknown });
    expect(await runner(rt).run(step("create", { spec: bind(join(root, "proj", "data")) }))).toMatchObject({ ok: false, error: expect.stringContaining("(allowed: none;") as unknown });
    expect(rt.calls).toEqual([]);
  });

  it("mounts the resolved real path, not the symlink the file named", async () => {
    const root = site();
    const rt = new FakeRuntime({ "app:1": {} });
    expect(await runner(rt, { bindRoots: [root] }).run(step("create", { spec: bind(join(root, "proj", "alias")) }))).toMatchObject({ ok: true });
    expect(rt.containers.get("demo-web-1")?.spec.mounts).toEqual([{ type: "bind", source: join(root, "proj", "data"), target: "/data", readOnly: true }]);
  });
});
