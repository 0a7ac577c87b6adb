import { describe, expect, it } from "vitest";
import type { Project } from "./model.js";
import { applyServicePatch, emptyService, onlyReplicas, parseMount, parsePublish, parseSecret, previousSpec, servicePatchSchema, type ServicePatch } from "./service-patch.js";
import type { Revision } from "./state.js";

const web = { ...emptyService("nginx:1.25"), environment: { A: "1", B: "2" }, ports: [{ target: 80, published: 8080, protocol: "tcp" as const }] };
const project: Project = { services: { web }, volumes: {}, secrets: {} };
const apply = (patch: ServicePatch, p = project) => {
  const r = applyServicePatch(p, "web", servicePatchSchema.parse(patch), "service update shop/web", new Set(["data.shop"]));
  if ("issues" in r) throw new Error(r.issues.map((i) => `${i.path}: ${i.reason}`).join("; "));
  return r.project;
};
const issues = (patch: ServicePatch) => {
  const r = applyServicePatch(project, "web", servicePatchSchema.parse(patch), "service update shop/web");
  return "issues" in r ? r.issues : [];
};

describe("a service patch (Swarm's service update flags)", () => {
  it("changes exactly what the flags say and nothing else", () => {
    const p = apply({ image: "nginx:1.26", envAdd: ["C=3", "A=one=1"], envRm: ["B"] });
    expect(p.services.web).toEqual({ ...web, image: "nginx:1.26", environment: { A: "one=1", C: "3" } });
    expect(project.services.web!.environment).toEqual({ A: "1", B: "2" }); // the input is not touched
  });

  it("adds and removes ports, secrets, mounts, constraints and both kinds of labels", () => {
    const p = apply({
      publishAdd: ["9090:90/udp", "published=7070,target=70,mode=host"],
      publishRm: ["80"],
      secretAdd: ["web.shop.key", "source=web.shop.pw,target=pw,uid=1000,mode=0400"],
      mountAdd: ["type=volume,source=data.shop,target=/data", "type=volume,src=cache,dst=/cache,ro", "type=tmpfs,target=/tmp,tmpfs-size=1048576"],
      constraintAdd: ["node.labels.zone==front"],
      labelAdd: ["team=gw"],
      containerLabelAdd: ["traefik.enable=true"],
    });
    const s = p.services.web!;
    expect(s.ports).toEqual([
      { target: 90, published: 9090, protocol: "udp", mode: "ingress" },
      { target: 70, published: 7070, protocol: "tcp", mode: "host" },
    ]);
    expect(s.secrets).toEqual([{ source: "web.shop.key" }, { source: "web.shop.pw", target: "pw", uid: "1000", mode: 0o400 }]);
    expect(p.secrets).toEqual({ "web.shop.key": { external: true }, "web.shop.pw": { external: true } });
    expect(s.volumes).toEqual([
      { type: "volume", source: "data.shop", target: "/data" },
      { type: "volume", source: "cache", target: "/cache", read_only: true },
      { type: "tmpfs", target: "/tmp", tmpfs: { size: 1048576 } },
    ]);
    // a volume corral knows is external; another is the stack's own
    expect(p.volumes).toEqual({ "data.shop": { external: true }, cache: {} });
    expect(s.deploy).toEqual({ labels: { team: "gw" }, placement: { constraints: ["node.labels.zone==front"] } });
    expect(s.labels).toEqual({ "traefik.enable": "true" });
    // and removed again: the top-level entries no service mounts go too
    const back = apply({ secretRm: ["web.shop.key", "web.shop.pw"], mountRm: ["/data", "/cache", "/tmp"], constraintRm: ["node.labels.zone == front"], labelRm: ["team"], containerLabelRm: ["traefik.enable"] }, p);
    expect(back.services.web!.secrets).toEqual([]);
    expect(back.services.web!.volumes).toEqual([]);
    expect(back).toMatchObject({ volumes: {}, secrets: {} });
    expect(back.services.web!.deploy).toEqual({ labels: {}, placement: { constraints: [] } });
  });

  it("health checks and rollout settings in Docker's flags", () => {
    const s = apply({ healthCmd: "wget -q -O- http://localhost/", healthInterval: "2s", healthRetries: 2, updateFailureAction: "rollback", updateMonitor: "10s", updateDelay: "1s", updateParallelism: 1, updateOrder: "start-first" }).services.web!;
    expect(s.healthcheck).toEqual({ test: ["CMD-SHELL", "wget -q -O- http://localhost/"], interval: 2000, retries: 2 });
    expect(s.deploy?.update_config).toEqual({ failure_action: "rollback", monitor: 10_000, delay: 1000, parallelism: 1, order: "start-first" });
    expect(apply({ noHealthcheck: true }).services.web!.healthcheck).toEqual({ disable: true });
  });

  it("a service not there is made from an image (service create), else refused", () => {
    const made = applyServicePatch({ services: {}, volumes: {}, secrets: {} }, "web", { image: "nginx", args: ["nginx", "-g", "daemon off;"], replicas: 3 }, "service create web");
    expect(made).toEqual({ project: { services: { web: { ...emptyService("nginx"), command: ["nginx", "-g", "daemon off;"], scale: 3 } }, volumes: {}, secrets: {} } });
    expect(applyServicePatch(project, "api", { envAdd: ["A=1"] }, "service update shop/api")).toEqual({ issues: [{ file: "service update shop/api", path: "services.api", reason: "no such service (and no image given to create it)" }] });
  });

  it("every malformed value is refused, naming the service and the flag", () => {
    expect(issues({ envAdd: ["NOVALUE"], publishAdd: ["80:99999"], mountAdd: ["type=volume,target=relative"], secretAdd: ["source=x,mode=999"], healthInterval: "2s" })).toEqual([
      { file: "service update shop/web", path: "services.web: --env-add", reason: '"NOVALUE" is not KEY=VALUE' },
      { file: "service update shop/web", path: "services.web: --publish-add", reason: '"80:99999": ports are 1-65535' },
      { file: "service update shop/web", path: "services.web: --secret-add", reason: 'mode: "999" is not an octal mode' },
      { file: "service update shop/web", path: "services.web: --mount-add", reason: "target: an absolute path in the container is required" },
      { file: "service update shop/web", path: "services.web: --health-cmd", reason: "the other --health-* flags need a health check: give --health-cmd" },
    ]);
    expect(issues({ updateDelay: "soon" })).toEqual([{ file: "service update shop/web", path: "services.web: --update-delay", reason: '"soon" is not a duration such as 10s or 1m' }]);
    expect(issues({ mode: "global", replicas: 2 })[0]?.reason).toContain("global");
    expect(servicePatchSchema.safeParse({ envAdd: ["x".repeat(5000)] }).success).toBe(false);
    expect(servicePatchSchema.safeParse({ envAdd: Array.from({ length: 101 }, (_, i) => `K${i}=v`) }).success).toBe(false);
    expect(servicePatchSchema.safeParse({ privileged: true }).success).toBe(false); // only the keys above
  });

  it("parses Docker's --publish, --mount and --secret syntax", () => {
    expect(parsePublish("80")).toEqual({ target: 80, protocol: "tcp", mode: "ingress" });
    expect(parsePublish("8080:80/sctp")).toEqual({ target: 80, published: 8080, protocol: "sctp", mode: "ingress" });
    expect(parsePublish("published=1,target=2,protocol=icmp")).toBe('protocol: "icmp" is not tcp, udp or sctp');
    expect(parsePublish("a:b")).toContain("is not PUBLISHED:TARGET");
    expect(parseMount("type=bind,source=/srv,target=/srv,readonly=false")).toEqual({ type: "bind", source: "/srv", target: "/srv" });
    expect(parseMount("type=npipe,target=/x")).toBe('type: "npipe" is not volume, bind or tmpfs');
    expect(parseMount("type=tmpfs,source=x,target=/x")).toBe("source: a tmpfs mount has none");
    expect(parseMount("target=/x,propagation=shared")).toContain("unknown field propagation");
    expect(parseSecret("db.shop.pw")).toEqual({ source: "db.shop.pw" });
    expect(parseSecret("target=x")).toBe("source: the secret's name is required");
  });

  it("replicas alone is a scale", () => {
    expect(onlyReplicas({ replicas: 3 })).toBe(true);
    expect(onlyReplicas({ replicas: 3, image: "x" })).toBe(false);
    expect(onlyReplicas({})).toBe(false);
  });
});

describe("a service's previous spec (Swarm's PreviousSpec)", () => {
  const rev = (revision: number, services: Record<string, string>): Revision => ({
    revision,
    services: Object.fromEntries(Object.entries(services).map(([n, image]) => [n, { spec: emptyService(image), hash: image }])),
    volumes: {},
    secrets: {},
    secretVersions: {},
    changed: [],
    by: "ann",
    source: "cli",
  });
  const revisions = { 1: rev(1, { web: "a", db: "x" }), 2: rev(2, { web: "a", db: "y" }), 3: rev(3, { web: "b", db: "y" }), 4: rev(4, { web: "b", db: "z" }) };
  it("is the spec before the current one came, skipping revisions that changed other services", () => {
    expect(previousSpec(revisions, 4, "web")).toEqual({ revision: 2, spec: emptyService("a") });
    expect(previousSpec(revisions, 4, "db")).toEqual({ revision: 3, spec: emptyService("y") });
    // after a rollback commits the old spec again, the next rollback returns
    const after = { ...revisions, 5: rev(5, { web: "a", db: "z" }) };
    expect(previousSpec(after, 5, "web")).toEqual({ revision: 4, spec: emptyService("b") });
  });
  it("is none for a service with one spec all along, or made after the others", () => {
    expect(previousSpec({ 1: rev(1, { web: "a" }), 2: rev(2, { web: "a", db: "x" }) }, 2, "db")).toBeUndefined();
    expect(previousSpec({ 1: rev(1, { web: "a" }) }, 1, "web")).toBeUndefined();
  });
});
