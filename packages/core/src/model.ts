import { z } from "zod";

/** Normalized models: what the rest of corral sees after parsing. Durations in ms, sizes in bytes. */
export const portSpecSchema = z.object({
  target: z.number().int(),
  published: z.number().int().optional(),
  host_ip: z.string().optional(),
  protocol: z.enum(["tcp", "udp", "sctp"]),
  mode: z.enum(["ingress", "host"]).optional(),
});
export type PortSpec = z.infer<typeof portSpecSchema>;

export const volumeMountSchema = z.object({
  type: z.enum(["bind", "volume", "tmpfs"]),
  source: z.string().optional(),
  target: z.string(),
  read_only: z.boolean().optional(),
  consistency: z.string().optional(),
  bind: z.object({ propagation: z.string().optional(), create_host_path: z.boolean().optional() }).optional(),
  volume: z.object({ nocopy: z.boolean().optional() }).optional(),
  tmpfs: z.object({ size: z.number().optional(), mode: z.number().optional() }).optional(),
});
export type VolumeMount = z.infer<typeof volumeMountSchema>;

export const secretMountSchema = z.object({
  source: z.string(),
  target: z.string().optional(),
  uid: z.string().optional(),
  gid: z.string().optional(),
  mode: z.number().int().optional(),
});
export type SecretMount = z.infer<typeof secretMountSchema>;

export const healthcheckSchema = z.object({
  test: z.array(z.string()).optional(),
  interval: z.number().optional(),
  timeout: z.number().optional(),
  retries: z.number().int().optional(),
  start_period: z.number().optional(),
  start_interval: z.number().optional(),
  disable: z.boolean().optional(),
});
export type Healthcheck = z.infer<typeof healthcheckSchema>;

export const updateConfigSchema = z.object({
  parallelism: z.number().int().min(0).optional(),
  delay: z.number().optional(),
  failure_action: z.enum(["pause", "continue", "rollback"]).optional(),
  monitor: z.number().optional(),
  max_failure_ratio: z.number().min(0).max(1).optional(),
  order: z.enum(["stop-first", "start-first"]).optional(),
});
export type UpdateConfig = z.infer<typeof updateConfigSchema>;

export const deploySchema = z.object({
  mode: z.enum(["replicated", "global"]).optional(),
  replicas: z.number().int().min(0).optional(),
  labels: z.record(z.string()).optional(),
  update_config: updateConfigSchema.optional(),
  rollback_config: updateConfigSchema.optional(),
  restart_policy: z
    .object({
      condition: z.enum(["none", "on-failure", "any"]).optional(),
      delay: z.number().optional(),
      max_attempts: z.number().int().optional(),
      window: z.number().optional(),
    })
    .optional(),
  placement: z
    .object({
      constraints: z.array(z.string()).optional(),
      preferences: z.array(z.object({ spread: z.string() })).optional(),
      max_replicas_per_node: z.number().int().optional(),
    })
    .optional(),
  resources: z
    .object({
      limits: z.object({ cpus: z.number().optional(), memory: z.number().optional(), pids: z.number().int().optional() }).optional(),
      reservations: z.object({ memory: z.number().optional() }).optional(),
    })
    .optional(),
});
export type DeploySpec = z.infer<typeof deploySchema>;

/** Rancher 1.6's health_check (rancher-compose.yml), times in ms. */
export const rancherHealthSchema = z.object({
  port: z.number().int(),
  request_line: z.string().optional(),
  interval: z.number().optional(),
  response_timeout: z.number().optional(),
  healthy_threshold: z.number().int().optional(),
  unhealthy_threshold: z.number().int().optional(),
  initializing_timeout: z.number().optional(),
  strategy: z.string().optional(),
});

export const serviceSpecSchema = z.object({
  image: z.string(),
  build: z.record(z.unknown()).optional(),
  command: z.array(z.string()).optional(),
  entrypoint: z.array(z.string()).optional(),
  environment: z.record(z.string()),
  labels: z.record(z.string()),
  ports: z.array(portSpecSchema),
  expose: z.array(z.string()).optional(),
  volumes: z.array(volumeMountSchema).optional(),
  secrets: z.array(secretMountSchema).optional(),
  cap_add: z.array(z.string()),
  cap_drop: z.array(z.string()),
  user: z.string().optional(),
  group_add: z.array(z.string()).optional(),
  working_dir: z.string().optional(),
  healthcheck: healthcheckSchema.optional(),
  restart: z.string().optional(),
  stop_signal: z.string().optional(),
  stop_grace_period: z.number().optional(),
  read_only: z.boolean().optional(),
  tmpfs: z.array(z.string()).optional(),
  ulimits: z.record(z.union([z.number().int(), z.object({ soft: z.number().int(), hard: z.number().int() })])).optional(),
  mem_limit: z.number().optional(),
  cpus: z.number().optional(),
  shm_size: z.number().optional(),
  sysctls: z.record(z.string()).optional(),
  init: z.boolean().optional(),
  hostname: z.string().optional(),
  dns: z.array(z.string()).optional(),
  extra_hosts: z.array(z.string()).optional(),
  logging: z.object({ driver: z.string().optional(), options: z.record(z.string()).optional() }).optional(),
  depends_on: z
    .record(z.object({ condition: z.enum(["service_started", "service_healthy", "service_completed_successfully"]), required: z.boolean() }))
    .optional(),
  scale: z.number().int().min(0),
  deploy: deploySchema.optional(),
  retain_ip: z.boolean().optional(),
  privileged: z.boolean().optional(),
  network_mode: z.string().optional(),
  pid: z.string().optional(),
  ipc: z.string().optional(),
  /** Rancher's health check, kept as written for export; the container gets the equivalent healthcheck. */
  health_check: rancherHealthSchema.optional(),
  /** x-* keys, kept for export; they do not change the container. */
  extensions: z.record(z.unknown()).optional(),
});
export type ServiceSpec = z.infer<typeof serviceSpecSchema>;

export const volumeSpecSchema = z.object({
  name: z.string().optional(),
  driver: z.string().optional(),
  driver_opts: z.record(z.string()).optional(),
  external: z.boolean().optional(),
  labels: z.record(z.string()).optional(),
  extensions: z.record(z.unknown()).optional(),
});
export type VolumeSpec = z.infer<typeof volumeSpecSchema>;

export const secretSpecSchema = z.object({
  name: z.string().optional(),
  file: z.string().optional(),
  external: z.boolean().optional(),
  environment: z.string().optional(),
  extensions: z.record(z.unknown()).optional(),
});
export type SecretSpec = z.infer<typeof secretSpecSchema>;

export const projectSchema = z.object({
  services: z.record(serviceSpecSchema),
  volumes: z.record(volumeSpecSchema),
  secrets: z.record(secretSpecSchema),
});
export type Project = z.infer<typeof projectSchema>;

export const stepActionSchema = z.enum(["pull", "create", "start", "stop", "remove", "rename", "remove-volume", "run"]);
export type StepAction = z.infer<typeof stepActionSchema>;

/**
 * A unit of work for one host. The id is deterministic (stack, revision,
 * service, slot, action, operation), so a step planned twice is the same step.
 */
export const stepSchema = z.object({
  id: z.string(),
  op: z.string(),
  stack: z.string(),
  service: z.string(),
  slot: z.number().int().optional(),
  revision: z.number().int(),
  action: stepActionSchema,
  host: z.string(),
  image: z.string(),
  /** Container name, for create/start/stop/remove/rename. */
  container: z.string().optional(),
  /** The new name, for rename. */
  renameTo: z.string().optional(),
  /** The create step that made the container this step acts on, where the plan knows it (a start planned with its create): the agent checks its io.corral.step label. */
  createdBy: z.string().optional(),
  /** Run after the `after` steps even when they failed (failure_action continue). */
  afterAny: z.boolean().optional(),
  /** Pull even when the image is on the host already (up --pull). */
  forcePull: z.boolean().optional(),
  /**
   * The exact image the revision runs (pull, create, run): `REPOSITORY@sha256:...`,
   * or a local image's id on this host (`sha256:...`); unset until a pull pinned it.
   */
  pinned: z
    .string()
    .max(512)
    .regex(/^(?:[a-z0-9][a-z0-9._:/-]*@)?sha256:[0-9a-f]{64}$/)
    .optional(),
  /** retain_ip: the address the container had before this upgrade, asked for again (create). */
  ip: z.string().optional(),
  /** retain_ip, and the slot moves host: the address it had there, which cannot follow (each host has its own subnet of the stack network). For the event log. */
  addressLeft: z.string().optional(),
  /** A removal of the whole stack: once nothing of it is left on the host, its network goes too. */
  dropNetwork: z.boolean().optional(),
  /** Wait this long before acting: the interval between upgrade batches. */
  delayMs: z.number().int().min(0).optional(),
  /** Why the scheduler put a new container on this host (create): for the event log and dry-runs; the agent does not read it. */
  placement: z.string().optional(),
  /** The service spec a create step builds the container from. */
  spec: serviceSpecSchema.optional(),
  /** Named volumes the container mounts, as declared at the top level (create). */
  volumes: z.record(volumeSpecSchema).optional(),
  /** Config hash of the service at this revision (a label on the container). */
  hash: z.string().optional(),
  /** Secrets the container mounts: store name and version, never a value. */
  secrets: z
    .array(z.object({ name: z.string(), version: z.number().int(), target: z.string(), uid: z.string(), gid: z.string(), mode: z.number().int() }))
    .optional(),
  /** Steps that must have succeeded first. */
  after: z.array(z.string()),
});
export type Step = z.infer<typeof stepSchema>;

export const stepMessageSchema = z.object({
  kind: z.literal("step"),
  step: stepSchema,
  attempt: z.number().int(),
});
export type StepMessage = z.infer<typeof stepMessageSchema>;

/**
 * A session: logs or exec output a user asked for, carried from a host to
 * the user. The API sends this on the host's queue; the agent answers by
 * posting chunks to the API under its own host token. No inbound port.
 */
export const sessionMessageSchema = z.object({
  kind: z.literal("session"),
  id: z.string(),
  type: z.enum(["logs", "exec"]),
  containers: z.array(z.string()).min(1),
  logs: z.object({ follow: z.boolean(), tail: z.number().int().min(0).optional(), since: z.number().int().optional(), timestamps: z.boolean() }).optional(),
  exec: z
    .object({
      cmd: z.array(z.string()).min(1),
      /** Keep stdin open: the user's input comes through the API (exec -i). */
      interactive: z.boolean().optional(),
      /** A terminal on the container's side (exec -t), of this size. */
      tty: z.object({ rows: z.number().int().min(1), cols: z.number().int().min(1) }).optional(),
    })
    .optional(),
});
export type SessionMessage = z.infer<typeof sessionMessageSchema>;

/** What arrives on a host's queue. */
export const hostMessageSchema = z.discriminatedUnion("kind", [z.object({ kind: z.literal("step"), step: stepSchema, attempt: z.number().int() }), sessionMessageSchema]);
export type HostMessage = z.infer<typeof hostMessageSchema>;

/** Output of a session, in order per host: `data` is base64. */
export const sessionChunkSchema = z.object({
  seq: z.number().int().min(0),
  container: z.string(),
  stream: z.enum(["stdout", "stderr"]),
  data: z.string(),
});
export type SessionChunk = z.infer<typeof sessionChunkSchema>;

export const stepReportSchema = z.object({
  kind: z.literal("report"),
  stack: z.string(),
  stepId: z.string(),
  host: z.string(),
  ok: z.boolean(),
  /** Engine container id, for create. */
  containerId: z.string().optional(),
  error: z.string().optional(),
  /** True when the agent found the step already done and did not act. */
  alreadyDone: z.boolean().optional(),
  /** For start: the ports the engine published, and the container's address. */
  ports: z.array(portSpecSchema).optional(),
  ip: z.string().optional(),
  /** For start: the container has a health check and passed it. */
  health: z.literal("healthy").optional(),
  /** For run (a scheduled job): how the one-shot container exited. */
  exitCode: z.number().int().optional(),
  /** For pull: what the host has under the step's image, the id and the registry digest the engine knows it by. */
  image: z.object({ id: z.string().regex(/^sha256:[0-9a-f]{64}$/), digest: z.string().regex(/^sha256:[0-9a-f]{64}$/).optional() }).strict().optional(),
});
export type StepReport = z.infer<typeof stepReportSchema>;

/** A container's health check changed its verdict (Docker's health_status event, relayed by the agent). */
export const healthReportSchema = z.object({
  kind: z.literal("health"),
  stack: z.string(),
  /** The host that saw it; the controller checks it against the host that signed the message. */
  host: z.string(),
  container: z.string(),
  dockerId: z.string(),
  health: z.enum(["healthy", "unhealthy"]),
  at: z.number(),
});
export type HealthReport = z.infer<typeof healthReportSchema>;

/**
 * A container's process ended by itself (Docker's die event, or the agent's
 * reconcile finding a container the control plane has running exited, with
 * no restart policy bringing it back), relayed by its host's agent.
 */
export const exitedReportSchema = z.object({
  kind: z.literal("exited"),
  stack: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/),
  /** The host that saw it; the controller checks it against the host that signed the message. */
  host: z.string().min(1).max(63),
  container: z.string().min(1).max(255),
  dockerId: z.string().regex(/^[0-9a-f]{12,64}$/),
  /** Docker's exit code (0-255; -1 when the engine could not tell). */
  exitCode: z.number().int().min(-1).max(255),
  /** When, by the host's clock (ms since the epoch). */
  at: z.number().int().min(0),
});
export type ExitedReport = z.infer<typeof exitedReportSchema>;

export const stackChangedSchema = z.object({
  kind: z.literal("stack-changed"),
  stack: z.string(),
  version: z.number().int(),
});
export type StackChanged = z.infer<typeof stackChangedSchema>;

/**
 * A host's agent started again (it registered): the steps planned on it and
 * not reported may have died with the old process, and are re-sent at once
 * instead of after the resend timeout. Sent by the control plane (the API
 * that took the registration), one per stack with such steps.
 */
export const hostStartedSchema = z.object({
  kind: z.literal("host-started"),
  stack: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/),
  host: z.string().min(1).max(63),
});
export type HostStarted = z.infer<typeof hostStartedSchema>;

export const controlMessageSchema = z.discriminatedUnion("kind", [stepReportSchema, stackChangedSchema, healthReportSchema, exitedReportSchema, hostStartedSchema]);

/** The most containers `GET /v1/hosts/:id/wanted` lists: past it the answer says it is incomplete, and an agent removes nothing. */
export const MAX_WANTED = 20_000;

/** What the control plane wants on a host (`GET /v1/hosts/:id/wanted`): the containers each stack keeps there, by engine name. */
export const wantedAnswerSchema = z.object({
  host: z.string().max(63),
  /** False when the list was cut at MAX_WANTED: not enough to call anything an orphan. */
  complete: z.boolean(),
  stacks: z
    .array(
      z.object({
        stack: z.string().max(63),
        containers: z.array(z.object({ name: z.string().max(255), dockerId: z.string().max(64).optional(), running: z.literal(true).optional(), stopped: z.literal(true).optional() })).max(MAX_WANTED),
      }),
    )
    .max(MAX_WANTED),
});
export type WantedAnswer = z.infer<typeof wantedAnswerSchema>;
export type ControlMessage = z.infer<typeof controlMessageSchema>;

export { stackNamePattern } from "./names.js";

/** Labels the agent puts on every container it creates: its source of truth on the host. */
export const labels = {
  stack: "io.corral.stack",
  service: "io.corral.service",
  slot: "io.corral.slot",
  revision: "io.corral.revision",
  step: "io.corral.step",
  hash: "io.corral.config-hash",
  /** Host ports the agent routes to this container: `60000:80,...` (see ports.ts). */
  routes: "io.corral.routes",
  /** The host whose agent made it: an agent's reconcile removes only its own host's orphans (agents of several hosts may share an engine). */
  host: "io.corral.host",
  /** Which control plane's agent made it (a fingerprint of its public key): only its own control plane can say a container is wanted. */
  control: "io.corral.control",
} as const;

