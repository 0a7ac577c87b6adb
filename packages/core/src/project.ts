import { boundsIssues, ComposeError, parseProject, type Origins } from "./compose.js";
import { mergeDocuments, type NamedDocument } from "./merge.js";
import type { Project } from "./model.js";
import { applyRancherCompose } from "./rancher.js";
import { parseDuration } from "./units.js";

export interface ProjectInput {
  files: NamedDocument[];
  rancher?: NamedDocument;
}

export interface LoadedProject {
  project: Project;
  /** x-corral: {auto_confirm: DURATION} at the top level of the files. */
  autoConfirmMs?: number;
  /** The first file's name, for messages. */
  file: string;
  origins: Origins;
}

/** From resolved documents (what the API receives) to one normalized project: merge, parse, fold rancher-compose. Pure. */
export function loadProject(input: ProjectInput): LoadedProject {
  const file = input.files[0]?.name ?? "docker-compose.yml";
  if (input.files.length === 0) throw new ComposeError(file, "", "no compose file was given");
  // each file within bounds before merging, so that a refusal names the file it is in
  const tooBig = [...input.files, ...(input.rancher ? [input.rancher] : [])].flatMap((f) => boundsIssues(f.document, () => f.name));
  if (tooBig.length > 0) throw new ComposeError(tooBig);
  const { document, origins } = mergeDocuments(input.files);
  let { project } = parseProject(document, { file, origins });
  if (input.rancher) {
    project = applyRancherCompose(project, input.rancher.document, input.rancher.name);
    // a scale set in rancher-compose.yml is refused (by the policy) naming that file
    const rancherServices = (input.rancher.document as { services?: Record<string, { scale?: unknown } | null> } | null)?.services ?? {};
    for (const [name, r] of Object.entries(rancherServices)) if (r?.scale !== undefined) (origins[name] ??= {}).scale = input.rancher.name;
  }
  const x = (document as Record<string, unknown>)["x-corral"] as Record<string, unknown> | undefined;
  const auto = x?.auto_confirm ?? x?.["auto-confirm"];
  if (auto === undefined) return { project, file, origins };
  const autoConfirmMs = typeof auto === "string" || typeof auto === "number" ? parseDuration(auto) : undefined;
  if (autoConfirmMs === undefined) throw new ComposeError(file, "x-corral.auto_confirm", `invalid duration "${String(auto)}" (examples: 10m, 1h)`);
  return { project, file, origins, autoConfirmMs };
}
