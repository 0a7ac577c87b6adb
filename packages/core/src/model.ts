import { z } from "zod";

/** Normalized models: what the rest of corral sees after parsing. */
export const portSpecSchema = z.object({
  target: z.number().int(),
  published: z.number().int().optional(),
  host_ip: z.string().optional(),
  protocol: z.enum(["tcp", "udp", "sctp"]),
});
export type PortSpec = z.infer<typeof portSpecSchema>;

export const serviceSpecSchema = z.object({
  image: z.string(),
  command: z.array(z.string()).optional(),
  entrypoint: z.array(z.string()).optional(),
  environment: z.record(z.string()),
  labels: z.record(z.string()),
  ports: z.array(portSpecSchema),
  cap_add: z.array(z.string()),
  cap_drop: z.array(z.string()),
  user: z.string().optional(),
  working_dir: z.string().optional(),
  restart: z.enum(["no", "always", "on-failure", "unless-stopped"]).optional(),
  scale: z.number().int().min(0),
});
export type ServiceSpec = z.infer<typeof serviceSpecSchema>;

export const stepActionSchema = z.enum(["pull", "create", "start", "stop", "remove"]);
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
  /** Container name, for create/start/stop/remove. */
  container: z.string().optional(),
  /** The service spec a create step builds the container from. */
  spec: serviceSpecSchema.optional(),
  /** Config hash of the service at this revision (a label on the container). */
  hash: z.string().optional(),
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
});
export type StepReport = z.infer<typeof stepReportSchema>;

export const stackChangedSchema = z.object({
  kind: z.literal("stack-changed"),
  stack: z.string(),
  version: z.number().int(),
});
export type StackChanged = z.infer<typeof stackChangedSchema>;

export const controlMessageSchema = z.discriminatedUnion("kind", [stepReportSchema, stackChangedSchema]);
export type ControlMessage = z.infer<typeof controlMessageSchema>;

export const stackNamePattern = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Labels the agent puts on every container it creates: its source of truth on the host. */
export const labels = {
  stack: "io.corral.stack",
  service: "io.corral.service",
  slot: "io.corral.slot",
  revision: "io.corral.revision",
  step: "io.corral.step",
  hash: "io.corral.config-hash",
} as const;

export const containerName = (stack: string, service: string, slot: number): string => `${stack}-${service}-${slot}`;
