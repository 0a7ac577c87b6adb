import type { ComposeIssue, Project } from "@corral/core";

/**
 * `up SERVICE...`: the services named and, as compose starts them, those
 * they depend on (depends_on, transitively), in the file's order. A name the
 * file does not have is an issue naming the file and the service.
 */
export function selectServices(services: Project["services"], names: string[], file: string): { services: string[]; issues: ComposeIssue[] } {
  const known = Object.keys(services);
  const issues: ComposeIssue[] = [];
  const chosen = new Set<string>();
  const visit = (name: string) => {
    if (chosen.has(name)) return;
    chosen.add(name);
    for (const dep of Object.keys(services[name]?.depends_on ?? {})) if (services[dep]) visit(dep);
  };
  for (const name of names) {
    if (services[name]) visit(name);
    else issues.push({ file, path: `services.${name}`, reason: `no service ${name} in ${file} (services: ${known.join(", ") || "none"})` });
  }
  return { services: known.filter((n) => chosen.has(n)), issues };
}
