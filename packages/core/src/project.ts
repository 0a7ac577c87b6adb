import { ComposeError, parseProject, type Origins } from "./compose.js";
import { mergeDocuments, type NamedDocument } from "./merge.js";
import type { Project } from "./model.js";
import { applyRancherCompose } from "./rancher.js";

export interface ProjectInput {
  files: NamedDocument[];
  rancher?: NamedDocument;
}

export interface LoadedProject {
  project: Project;
  /** The first file's name, for messages. */
  file: string;
  origins: Origins;
}

/** From resolved documents (what the API receives) to one normalized project: merge, parse, fold rancher-compose. Pure. */
export function loadProject(input: ProjectInput): LoadedProject {
  const file = input.files[0]?.name ?? "docker-compose.yml";
  if (input.files.length === 0) throw new ComposeError(file, "", "no compose file was given");
  const { document, origins } = mergeDocuments(input.files);
  let { project } = parseProject(document, { file, origins });
  if (input.rancher) project = applyRancherCompose(project, input.rancher.document, input.rancher.name);
  return { project, file, origins };
}
