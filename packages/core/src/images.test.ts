import { describe, expect, it } from "vitest";
import { decide } from "./decide/index.js";
import type { StackEvent } from "./events.js";
import { exactImage, repositoryOf, tagOf, writtenDigest } from "./images.js";
import { hostMessageSchema, stepReportSchema, type Step } from "./model.js";
import { Progress } from "./progress.js";
import { initialState, type StackState } from "./state.js";
import { run, settle, spec, up } from "./testing.js";

// Exact revisions, given events / when command / then events: what a revision pins, and what its steps make.
const d = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;
const image = "127.0.0.1:5000/team/app:latest";
const app = { app: spec(image, { scale: 2 }) };
const two = [{ id: "h1" }, { id: "h2" }];
const stepsOf = (s: StackState, action: Step["action"]) => Object.values(s.steps).filter((r) => r.step.action === action && r.step.op === s.op?.id).map((r) => r.step);
const lines = (_before: StackState, events: StackEvent[]) => {
  const p = new Progress("demo");
  return events.flatMap((e) => p.line(e) ?? []);
};

describe("image references", () => {
  it("tell repository, tag and a digest written in them apart (a registry's port is no tag)", () => {
    expect(repositoryOf("127.0.0.1:5000/team/app:latest")).toBe("127.0.0.1:5000/team/app");
    expect(repositoryOf("127.0.0.1:5000/team/app")).toBe("127.0.0.1:5000/team/app");
    expect(repositoryOf(`nginx:1.27@${d(1)}`)).toBe("nginx");
    expect(tagOf("127.0.0.1:5000/app")).toBe("latest");
    expect(tagOf("app:v2")).toBe("v2");
    expect(tagOf(`app@${d(1)}`)).toBeUndefined();
    expect(writtenDigest(`app:v2@${d(3)}`)).toBe(d(3));
    expect(writtenDigest("app:v2")).toBeUndefined();
  });

  it("a revision's exact image: its digest on every host, else the id each host ran it with", () => {
    expect(exactImage({ spec: spec(image), digest: d(1) }, "h9")).toBe(`127.0.0.1:5000/team/app@${d(1)}`);
    expect(exactImage({ spec: spec("app:v1"), ids: { h1: d(2) } }, "h1")).toBe(d(2));
    expect(exactImage({ spec: spec("app:v1"), ids: { h1: d(2) } }, "h2")).toBeUndefined();
    expect(exactImage({ spec: spec(`app@${d(4)}`) }, "h2")).toBe(`app@${d(4)}`);
  });
});

describe("up pins each service's image", () => {
  const s1 = settle(run(initialState("demo"), up(app, "op1", { pins: { [image]: { digest: d(1) } } })), undefined, false, two);

  it("to the digest the registry gave: in the revision, and in every pull and create on every host", () => {
    expect(s1.revisions[1]!.services.app!.digest).toBe(d(1));
    const made = Object.values(s1.steps).filter((r) => r.step.action === "create" || r.step.action === "pull").map((r) => `${r.step.action} ${r.step.host} ${r.step.pinned}`);
    expect(made.sort()).toEqual([`create h1 127.0.0.1:5000/team/app@${d(1)}`, `create h2 127.0.0.1:5000/team/app@${d(1)}`, `pull h1 127.0.0.1:5000/team/app@${d(1)}`, `pull h2 127.0.0.1:5000/team/app@${d(1)}`]);
    // the reference as written is what the containers show
    expect(Object.values(s1.containers).map((c) => c.image)).toEqual([image, image]);
  });

  it("a tag moved: up --upgrade makes a revision of the new digest and says so; a plain up keeps what runs and says the tag moved", () => {
    const events = decide(up(app, "op2", { upgrade: true, pins: { [image]: { digest: d(2) } } }), s1);
    expect(events.find((e) => e.type === "RevisionCommitted")).toMatchObject({ revision: 2, changed: ["app"], services: { app: { digest: d(2) } } });
    expect(events.find((e) => e.type === "UpgradeStarted")).toMatchObject({ services: ["app"], moved: { app: { tag: "latest", digest: d(2) } } });
    expect(lines(s1, events)).toContain(`Upgrading app: image latest moved to ${d(2)}`);
    const s2 = settle(run(s1, up(app, "op2", { upgrade: true, pins: { [image]: { digest: d(2) } } })), undefined, false, two);
    expect(stepsOf(s2, "create").map((st) => st.pinned)).toEqual([`127.0.0.1:5000/team/app@${d(2)}`, `127.0.0.1:5000/team/app@${d(2)}`]);

    const plain = decide(up(app, "op3", { pins: { [image]: { digest: d(2) } } }), s1);
    expect(plain.some((e) => e.type === "RevisionCommitted" || e.type === "UpgradeStarted")).toBe(false);
    expect(plain.find((e) => e.type === "ImagesChecked")).toEqual({ type: "ImagesChecked", op: "op3", moved: { app: { tag: "latest", digest: d(2) } } });
    expect(lines(s1, plain).join("\n")).toMatch(/\[app\]: image latest moved to sha256:2+; 'corral up --upgrade' deploys it/);
  });

  it("the same digest again: nothing to upgrade", () => {
    const events = decide(up(app, "op2", { upgrade: true, pins: { [image]: { digest: d(1) } } }), s1);
    expect(events.filter((e) => e.type !== "OperationStarted")).toEqual([]);
  });

  it("no registry answer: the service keeps its pinned digest, and up says it could not check", () => {
    const events = decide(up({ app: spec(image, { scale: 2, environment: { V: "2" } }) }, "op2", { upgrade: true, pins: { [image]: { unchecked: "registry 127.0.0.1:5000 did not answer" } } }), s1);
    expect(events.find((e) => e.type === "RevisionCommitted")).toMatchObject({ services: { app: { digest: d(1) } } });
    expect(events.find((e) => e.type === "ImagesChecked")).toEqual({ type: "ImagesChecked", op: "op2", unchecked: { app: { reason: "registry 127.0.0.1:5000 did not answer", kept: d(1) } } });
    expect(lines(s1, events).join("\n")).toMatch(/could not check app's image .*did not answer.*keeping sha256:1+/);
  });

  it("--rollback --to-revision N runs N's digest although the tag names another one now", () => {
    const s2 = settle(run(s1, up(app, "op2", { upgrade: true, pins: { [image]: { digest: d(2) } } })), undefined, false, two);
    const s3 = settle(run(settle(run(s2, up(app, "op3", { confirm: true })), undefined, false, two), up({}, "op4", { rollback: true, toRevision: 1 })), undefined, false, two);
    expect(s3.services.app!.digest).toBe(d(1));
    expect(stepsOf(s3, "create").map((st) => st.pinned)).toEqual([`127.0.0.1:5000/team/app@${d(1)}`, `127.0.0.1:5000/team/app@${d(1)}`]);
    expect(s3.revisions[3]).toMatchObject({ rollback: "rollback to 1" });
  });

  it("an upgrade pulls on every host before the first old container stops: an image that cannot be had stops nothing", () => {
    const s2 = run(s1, up(app, "op2", { upgrade: true, pins: { [image]: { digest: d(2) } } }));
    const planned = run(s2, { type: "Plan", hosts: two, now: 1 });
    const pulls = stepsOf(planned, "pull").map((st) => st.id);
    expect(pulls).toHaveLength(2);
    for (const stop of stepsOf(planned, "stop")) expect(stop.after).toEqual(expect.arrayContaining(pulls));
    const failed = settle(s2, (st) => (st.action === "pull" && st.host === "h2" ? "manifest unknown" : undefined), false, two);
    expect(Object.values(failed.steps).filter((r) => r.step.action === "stop" && r.status === "succeeded")).toEqual([]);
    expect(Object.values(failed.containers).filter((c) => c.state === "running")).toHaveLength(2);
  });
});

describe("an image no registry knows (built or loaded on a host)", () => {
  const local = { app: spec("app:dev", { scale: 2 }) };
  const ids: Record<string, string> = { h1: d(5), h2: d(6) };
  const s1 = settle(run(initialState("demo"), up(local, "op1", { pins: { "app:dev": { unchecked: "no registry answers for it" } } })), undefined, false, two, (st) => ({ id: ids[st.host]! }));

  it("is pinned, at its first pull, to the image id each host has", () => {
    expect(s1.revisions[1]!.services.app).toMatchObject({ ids: { h1: d(5), h2: d(6) } });
    expect(s1.revisions[1]!.services.app!.digest).toBeUndefined();
    expect(s1.services.app!.ids).toEqual({ h1: d(5), h2: d(6) });
  });

  it("a pull that finds a registry digest pins that one, for every host", () => {
    const s = settle(run(initialState("demo"), up({ app: spec(image, { scale: 2 }) }, "op1")), undefined, false, two, (st) => ({ id: ids[st.host]!, digest: d(7) }));
    expect(s.revisions[1]!.services.app).toMatchObject({ digest: d(7) });
    expect(s.revisions[1]!.services.app!.ids).toBeUndefined();
  });

  it("a container made again at that revision uses the id its host ran (scale, a removed container's slot)", () => {
    const s2 = settle(run(s1, { type: "Scale", stack: "demo", op: "op2", scales: { app: 3 }, by: "admin", source: "cli", hosts: two, placed: [] }), undefined, false, two);
    const made = stepsOf(s2, "create")[0]!;
    expect(made.pinned).toBe(ids[made.host]);
  });

  it("a changed service is made from what the host has now (the ids go), as is one pulled anew (--pull)", () => {
    const changed = decide(up({ app: spec("app:dev", { scale: 2, environment: { V: "2" } }) }, "op2", { upgrade: true }), s1);
    expect(changed.find((e) => e.type === "RevisionCommitted")).toMatchObject({ services: { app: { spec: { image: "app:dev" } } } });
    const committed = changed.find((e) => e.type === "RevisionCommitted");
    expect(committed?.type === "RevisionCommitted" && committed.services.app!.ids).toBeUndefined();
  });
});

describe("what queue messages may say of images", () => {
  const digest = `sha256:${"c".repeat(64)}`;
  const step = { op: "op1", stack: "demo", service: "web", revision: 1, image: "app:1", id: "s1", action: "pull", host: "h1", after: [] };
  const pinned = (value: unknown) => hostMessageSchema.safeParse({ kind: "step", attempt: 1, step: { ...step, pinned: value } }).success;
  const reported = (image: unknown) => stepReportSchema.safeParse({ kind: "report", stack: "demo", stepId: "s1", host: "h1", ok: true, image }).success;

  it("a step's pinned image is a repository at a digest, or an image id", () => {
    expect(pinned(`reg:5000/app/web@${digest}`)).toBe(true);
    expect(pinned(digest)).toBe(true);
    for (const bad of ["app:1", `app@sha256:${"c".repeat(63)}`, `App@${digest}`, `app@${digest} --privileged`, `${"a".repeat(500)}@${digest}`, `app@${digest}x`, 7, null]) expect([bad, pinned(bad)]).toEqual([bad, false]);
  });

  it("a report's image is an id and an optional digest, nothing else", () => {
    expect(reported({ id: digest })).toBe(true);
    expect(reported({ id: digest, digest })).toBe(true);
    for (const bad of [{ id: "abc" }, { id: digest, digest: "sha256:nothex" }, { id: digest, tag: "latest" }, { digest }, digest]) expect([bad, reported(bad)]).toEqual([bad, false]);
  });
});
