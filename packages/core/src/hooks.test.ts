import { describe, expect, it } from "vitest";
import { dockerHubCallback, pushTargets, readDelivery, splitImage, tagMatches } from "./hooks.js";

// payloads as the senders send them (trimmed of fields corral does not read)
const registryNotification = {
  events: [
    { id: "b1", action: "push", target: { mediaType: "application/octet-stream", repository: "team/app", digest: "sha256:aa" }, request: { host: "registry.example:5000" } },
    { id: "m1", action: "push", target: { mediaType: "application/vnd.docker.distribution.manifest.v2+json", repository: "team/app", tag: "v2", digest: "sha256:bb" }, request: { host: "registry.example:5000" } },
    { id: "p1", action: "pull", target: { repository: "team/app", tag: "v1" }, request: { host: "registry.example:5000" } },
  ],
};
const dockerHubHook = { callback_url: "https://registry.hub.docker.com/u/team/app/hook/x/", push_data: { tag: "v3", pusher: "ann" }, repository: { repo_name: "team/app", name: "app", namespace: "team" } };
const githubPackage = { action: "published", package: { name: "App", namespace: "Team", owner: { login: "Team" }, package_type: "CONTAINER", package_version: { container_metadata: { tag: { name: "v4", digest: "sha256:cc" } } } } };

describe("webhook payloads", () => {
  it("reads the registry's envelope: pushes of a tag only", () => {
    expect(readDelivery("registry", undefined, registryNotification)).toEqual({ kind: "images", pushes: [{ repository: "team/app", registry: "registry.example:5000", tag: "v2" }] });
    expect(readDelivery("registry", undefined, { events: [registryNotification.events[2]] })).toEqual({ kind: "ignored", why: "no push of a tag" });
  });
  it("reads Docker Hub's and GitHub's package event; GitHub's push is a ref; ping and other events are ignored", () => {
    expect(readDelivery("dockerhub", undefined, dockerHubHook)).toEqual({ kind: "images", pushes: [{ repository: "team/app", registry: "docker.io", tag: "v3" }], callback: "https://registry.hub.docker.com/u/team/app/hook/x/" });
    expect(readDelivery("github", "package", githubPackage)).toEqual({ kind: "images", pushes: [{ repository: "team/app", registry: "ghcr.io", tag: "v4" }] });
    expect(readDelivery("github", "package", { ...githubPackage, action: "updated" })).toEqual({ kind: "ignored", why: "package updated" });
    expect(readDelivery("github", "push", { ref: "refs/heads/main", after: "abc" })).toEqual({ kind: "git", ref: "refs/heads/main" });
    expect(readDelivery("github", "ping", { zen: "x" })).toEqual({ kind: "ignored", why: "ping" });
    expect(readDelivery("github", "issues", {})).toEqual({ kind: "ignored", why: "event issues" });
    expect(readDelivery("generic", undefined, { service: "web", image: "team/app:v5" })).toEqual({ kind: "generic", service: "web", image: "team/app:v5" });
  });
  it("refuses what is none of the sender's shapes, naming the key", () => {
    expect(readDelivery("registry", undefined, { events: "x" })).toEqual({ error: expect.stringContaining("not a registry payload: events:") });
    expect(readDelivery("dockerhub", undefined, { push_data: { tag: "v1; rm -rf" }, repository: { repo_name: "a/b" } })).toEqual({ error: expect.stringContaining("is not a tag") });
    expect(readDelivery("generic", undefined, { service: "web", image: "x", extra: 1 })).toEqual({ error: expect.stringContaining("extra") });
    expect(readDelivery("generic", undefined, "text")).toHaveProperty("error");
    // a timestamp, when given, must be fresh
    expect(readDelivery("generic", undefined, { service: "web", image: "a:1", timestamp: 1000 }, 1200)).toEqual({ kind: "generic", service: "web", image: "a:1" });
    expect(readDelivery("generic", undefined, { service: "web", image: "a:1", timestamp: 1000 }, 1400)).toEqual({ error: "not a fresh generic payload: timestamp 1000 is more than 300 s from now" });
  });
});

describe("which services a push upgrades", () => {
  const services = { web: { image: "registry.example:5000/team/app:v1" }, worker: { image: "registry.example:5000/team/app:v1" }, db: { image: "postgres:16" }, hub: { image: "team/app:v1" } };
  it("those on the pushed repository and registry, to the pushed tag; the hook's services only, when it names some", () => {
    const push = { repository: "team/app", registry: "registry.example:5000", tag: "v2" };
    expect(pushTargets(services, [], push)).toEqual([
      { service: "web", image: "registry.example:5000/team/app:v2" },
      { service: "worker", image: "registry.example:5000/team/app:v2" },
    ]);
    expect(pushTargets(services, ["web"], push)).toEqual([{ service: "web", image: "registry.example:5000/team/app:v2" }]);
    expect(pushTargets(services, [], { repository: "team/app", registry: "docker.io", tag: "v2" })).toEqual([{ service: "hub", image: "team/app:v2" }]);
    expect(pushTargets(services, [], { ...push, tag: "v1" })).toEqual([]); // already there
    expect(pushTargets(services, [], { ...push, repository: "team/other" })).toEqual([]);
  });
  it("filters tags with the hook's glob", () => {
    expect(tagMatches("v*", "v2")).toBe(true);
    expect(tagMatches("v*", "latest")).toBe(false);
    expect(tagMatches("release-?.?", "release-1.2")).toBe(true);
    expect(tagMatches("1.2.*", "1.2.3")).toBe(true);
    expect(tagMatches("1.2.*", "1x2.3")).toBe(false); // a dot is a dot
    expect(pushTargets(services, [], { repository: "team/app", registry: "registry.example:5000", tag: "latest" }, "v*")).toEqual([]);
  });
  it("splits image references as Docker reads them", () => {
    expect(splitImage("nginx")).toEqual({ repository: "nginx" });
    expect(splitImage("docker.io/library/nginx:1.25")).toEqual({ repository: "nginx", tag: "1.25" });
    expect(splitImage("localhost:5000/a/b:c@sha256:dd")).toEqual({ registry: "localhost:5000", repository: "a/b", tag: "c", digest: "sha256:dd" });
    expect(splitImage("team/app")).toEqual({ repository: "team/app" });
  });
});

describe("Docker Hub's callback", () => {
  it("is called only on Docker Hub's own host, over HTTPS", () => {
    expect(dockerHubCallback("https://registry.hub.docker.com/u/team/app/hook/abc/")).toBe("https://registry.hub.docker.com/u/team/app/hook/abc/");
    for (const bad of ["http://registry.hub.docker.com/u/x/", "https://registry.hub.docker.com.evil.example/u/x/", "https://198.18.0.1/u/x/", "https://a:b@registry.hub.docker.com/", "https://registry.hub.docker.com:8443/", "not a url", undefined]) {
      expect(dockerHubCallback(bad)).toBeUndefined();
    }
  });
});
