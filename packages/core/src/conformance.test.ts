import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { expect, it } from "vitest";
import { parseProject } from "./compose.js";
import { mergeDocuments } from "./merge.js";
import type { Project, ServiceSpec } from "./model.js";
import { resolveComposeFiles } from "./resolve.js";
import { formatDuration } from "./units.js";

// Peer conformance: the Compose Specification's full example, parsed by corral
// and projected onto compose-go's canonical shape (../shared/peer/compose-go).
const peer = fileURLToPath(new URL("../../../../shared/peer/compose-go/", import.meta.url));

const compact = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
const octal = (n: number | undefined) => (n === undefined ? undefined : `0${n.toString(8)}`);
const dur = (ms: number | undefined) => (ms === undefined ? undefined : formatDuration(ms));

/** corral's model in compose-go's canonical form. */
function asComposeGo(s: ServiceSpec): Record<string, unknown> {
  const d = s.deploy;
  const update = (u: NonNullable<typeof d>["update_config"]) => u && compact({ ...u, delay: dur(u.delay), monitor: dur(u.monitor) });
  return compact({
    image: s.image || undefined,
    command: s.command,
    entrypoint: s.entrypoint,
    environment: s.environment,
    labels: s.labels,
    cap_add: s.cap_add,
    cap_drop: s.cap_drop,
    expose: s.expose,
    extra_hosts: s.extra_hosts,
    hostname: s.hostname,
    dns: s.dns,
    healthcheck: s.healthcheck && compact({ ...s.healthcheck, interval: dur(s.healthcheck.interval), timeout: dur(s.healthcheck.timeout), start_period: dur(s.healthcheck.start_period), start_interval: dur(s.healthcheck.start_interval) }),
    ipc: s.ipc,
    pid: s.pid,
    logging: s.logging,
    network_mode: s.network_mode,
    privileged: s.privileged,
    read_only: s.read_only,
    restart: s.restart,
    stop_grace_period: dur(s.stop_grace_period),
    stop_signal: s.stop_signal,
    sysctls: s.sysctls,
    tmpfs: s.tmpfs,
    ulimits: s.ulimits,
    user: s.user,
    working_dir: s.working_dir,
    depends_on: s.depends_on,
    ports: s.ports.map((p) => compact({ mode: p.mode ?? "ingress", host_ip: p.host_ip, target: p.target, published: p.published === undefined ? undefined : String(p.published), protocol: p.protocol })),
    secrets: s.secrets?.map((m) => compact({ ...m, mode: octal(m.mode) })),
    volumes: s.volumes?.map((v) => compact({ ...v, tmpfs: v.tmpfs && compact({ ...v.tmpfs, size: v.tmpfs.size === undefined ? undefined : String(v.tmpfs.size) }) })),
    deploy: d && compact({
      ...d,
      update_config: update(d.update_config),
      rollback_config: update(d.rollback_config),
      restart_policy: d.restart_policy && compact({ ...d.restart_policy, delay: dur(d.restart_policy.delay), window: dur(d.restart_policy.window) }),
      resources: d.resources && {
        limits: d.resources.limits && compact({ ...d.resources.limits, memory: d.resources.limits.memory === undefined ? undefined : String(d.resources.limits.memory) }),
        reservations: d.resources.reservations && compact({ ...d.resources.reservations, memory: d.resources.reservations.memory === undefined ? undefined : String(d.resources.reservations.memory) }),
      },
    }),
    ...s.extensions,
  });
}

const withExtensions = <T extends { extensions?: Record<string, unknown> }>(v: T) => {
  const { extensions, ...rest } = v;
  return { ...rest, ...extensions };
};

function projectAsComposeGo(p: Project): Record<string, unknown> {
  return {
    services: Object.fromEntries(Object.entries(p.services).map(([n, s]) => [n, asComposeGo(s)])),
    volumes: Object.fromEntries(Object.entries(p.volumes).map(([n, v]) => [n, withExtensions(v)])),
    secrets: Object.fromEntries(Object.entries(p.secrets).map(([n, v]) => [n, withExtensions(v)])),
  };
}

/** Leaves of a document as path → value (numbers and booleans as text, as YAML scalars). */
function leaves(value: unknown, path = "", out = new Map<string, string>()): Map<string, string> {
  if (Array.isArray(value)) value.forEach((v, i) => leaves(v, `${path}[${i}]`, out));
  else if (value && typeof value === "object") {
    const entries = Object.entries(value);
    if (entries.length === 0) out.set(path, "{}");
    for (const [k, v] of entries) leaves(v, path ? `${path}.${k}` : k, out);
  } else out.set(path, value === null ? "null" : String(value));
  return out;
}

it("agrees with compose-go's canonical form of the Compose Specification's full example", () => {
  if (!existsSync(peer)) throw new Error(`peer data not found at ${peer}: ../shared must sit beside the repository`);
  const text = readFileSync(`${peer}full-example.yml`, "utf8");
  const readFile = (path: string) => {
    const local = path.startsWith("/WD/") ? `${peer}${path.slice(4)}` : undefined;
    return local && existsSync(local) ? readFileSync(local, "utf8") : undefined;
  };
  const docs = resolveComposeFiles({
    files: [{ name: "full-example.yml", path: "/WD/full-example.yml", text }],
    env: { HOME: "/HOME", BAR: "this is a secret", QUX: "qux_from_environment" },
    home: "/HOME",
    readFile,
  });
  const { document } = mergeDocuments(docs);
  const { project, unsupported } = parseProject(document, { file: "full-example.yml", lenient: true });

  const expected = parseYaml(readFileSync(`${peer}full-example.expected.yaml`, "utf8")) as Record<string, unknown>;
  const want = leaves({ services: expected.services, volumes: expected.volumes, secrets: expected.secrets });
  const got = leaves(projectAsComposeGo(project));

  // a leaf is out of scope when corral refuses its key (listed), or the key is folded away by design
  // env_file and label_file are read by the CLI into environment and labels (compared there);
  // build: is kept as written for the site policy to refuse, not normalized
  const folded = [/^services\.[^.]+\.(env_file|label_file)/, /^services\.[^.]+\.build\./];
  const unsupportedPrefixes = unsupported.map((u) => u.replace(/\.(\d+)(?=\.|$)/g, "[$1]"));
  const inScope = [...want.keys()].filter(
    (k) => !unsupportedPrefixes.some((u) => k === u || k.startsWith(`${u}.`) || k.startsWith(`${u}[`)) && !folded.some((f) => f.test(k)),
  );
  const agreeing = inScope.filter((k) => got.get(k) === want.get(k));
  const disagreeing = inScope.filter((k) => got.get(k) !== want.get(k)).map((k) => `${k}: corral ${got.get(k) ?? "(missing)"} / compose-go ${want.get(k)}`);
  const share = agreeing.length / inScope.length;
  const unsupportedKeys = [...new Set(unsupported.map((u) => u.replace(/^services\.[^.]+\./, "services.*.").replace(/\.\d+.*$/, "")))].sort();

  console.log(
    `compose-go conformance: ${agreeing.length}/${inScope.length} supported leaves agree (${(share * 100).toFixed(1)}%), ` +
      `${want.size - inScope.length} of ${want.size} leaves out of scope\nunsupported keys: ${unsupportedKeys.join(", ")}` +
      (disagreeing.length ? `\ndisagreeing:\n  ${disagreeing.join("\n  ")}` : ""),
  );
  expect(share).toBeGreaterThanOrEqual(0.95);
  // what corral refuses is what it says it refuses: no key of the example is dropped silently
  expect(unsupportedKeys).toEqual([
    "configs",
    "networks.external-network",
    "networks.other-external-network",
    "networks.other-network",
    "networks.some-network",
    "secrets.secret1.labels",
    "services.*.annotations",
    "services.*.cgroup_parent",
    "services.*.configs",
    "services.*.container_name",
    "services.*.deploy.endpoint_mode",
    "services.*.deploy.placement.constraints",
    "services.*.deploy.resources.reservations.cpus",
    "services.*.deploy.resources.reservations.generic_resources",
    "services.*.device_cgroup_rules",
    "services.*.devices",
    "services.*.dns_search",
    "services.*.domainname",
    "services.*.external_links",
    "services.*.links",
    "services.*.mac_address",
    "services.*.networks.other-network",
    "services.*.networks.other-network.ipv4_address",
    "services.*.networks.other-network.ipv6_address",
    "services.*.networks.other-network.mac_address",
    "services.*.networks.other-other-network",
    "services.*.networks.some-network",
    "services.*.security_opt",
    "services.*.stdin_open",
    "services.*.storage_opt",
    "services.*.tty",
    "services.*.uts",
  ]);
});
