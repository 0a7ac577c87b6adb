import { z } from "zod";
import { sourceSchema } from "@corral/core";

/** Request bodies more than one route module reads. */

/** A compose file as the CLI sends it: its name (for errors) and its parsed YAML. */
export const composeFile = z.object({ name: z.string().min(1).max(512), document: z.unknown() }).transform((f) => ({ name: f.name, document: f.document as unknown }));

export const upBody = z.object({
  files: z.array(composeFile).max(32).default([]),
  rancher: composeFile.optional(),
  source: sourceSchema.optional(),
  upgrade: z.boolean().optional(),
  forceUpgrade: z.boolean().optional(),
  confirmUpgrade: z.boolean().optional(),
  rollback: z.boolean().optional(),
  toRevision: z.number().int().min(1).optional(),
  batchSize: z.number().int().min(1).optional(),
  intervalMs: z.number().int().min(0).optional(),
  startFirst: z.boolean().optional(),
  autoConfirmMs: z.number().int().min(1).optional(),
  pull: z.boolean().optional(),
  dryRun: z.boolean().optional(),
  /** `up SERVICE...`: only these services of the files (and what they depend on); the stack's others keep what they have. */
  services: z.array(z.string().max(63)).max(1000).optional(),
});
export type UpBody = z.infer<typeof upBody>;

export const scaleBody = z.object({ scales: z.record(z.string(), z.number().int().min(0)).refine((s) => Object.keys(s).length > 0, "at least one service") });
