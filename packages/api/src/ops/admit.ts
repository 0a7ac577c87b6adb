import {
  healthWarnings,
  applySiteDefaults,
  assignPorts,
  checkPolicy,
  ComposeError,
  loadProject,
  volumeProblems,
  type ComposeIssue,
  type LoadedProject,
  type Origins,
  type Project,
  type SitePolicy,
  type StackState,
} from "@corral/core";
import type { SecretStore, VolumeStore } from "@corral/store";
import { canSee, type Principal } from "../auth.js";
import type { UpBody } from "../bodies.js";
import { mayUse, volumeStack } from "../names.js";
import type { StackLookups } from "./lookups.js";
import type { HostPorts } from "./ports.js";

export interface AdmitDeps {
  policy: SitePolicy;
  volumes: Pick<VolumeStore, "get">;
  secrets: Pick<SecretStore, "info">;
  portsInUse: HostPorts["portsInUse"];
  holderOf: StackLookups["holderOf"];
}

export interface Admitted {
  project: Project;
  violations: ComposeError | undefined;
  secretVersions: Record<string, number>;
  autoConfirmMs?: number;
  /** What may not work as written (health settings): told, not refused. */
  warnings: ComposeIssue[];
  /** The first file, and the file each service's keys came from: where later warnings point. */
  file: string;
  origins: Origins;
}

/** Whether any service publishes a port: only then do the host ports other stacks hold bear on a decision. */
export const publishesPorts = (services: Record<string, { ports: readonly unknown[] }>) => Object.values(services).some((s) => s.ports.length > 0);

/** The host ports a project writes that another stack, or another service's slot in this one, holds. */
function portIssues(loaded: LoadedProject, used: Map<number, StackState>, own: StackState | undefined, principal: Principal): ComposeIssue[] {
  const issues: ComposeIssue[] = [];
  // this stack's own slots' ports, by the service they belong to: another service may not write one as its host port
  const slotHolders = new Map<number, string>();
  for (const [service, slots] of Object.entries(own?.slotPorts ?? {})) {
    for (const [slot, ports] of Object.entries(slots)) {
      if (Number(slot) <= (own?.services[service]?.spec.scale ?? 0)) for (const p of Object.values(ports)) slotHolders.set(p, service);
    }
  }
  for (const [name, s] of Object.entries(loaded.project.services)) {
    s.ports.forEach((p, i) => {
      const holder = p.published !== undefined ? used.get(p.published) : undefined;
      const slotOf = p.published !== undefined ? slotHolders.get(p.published) : undefined;
      const at = { file: loaded.origins?.[name]?.ports ?? loaded.file, path: `services.${name}.ports.${i}` };
      if (slotOf !== undefined && slotOf !== name) issues.push({ ...at, reason: `host port ${p.published} is given to a container of ${slotOf} in this stack` });
      if (!holder) return;
      const who = canSee(principal, holder.owner, holder.group) ? `stack ${holder.name}` : "another group's stack";
      issues.push({ ...at, reason: `host port ${p.published} is already used by ${who}` });
    });
  }
  return issues;
}

/** Admitting a stack's compose files under the site policy. */
export function admission(deps: AdmitDeps) {
  const { policy } = deps;

  /** External volumes as corral made them (`corral volume create`): each must exist, be the caller's to mount, and still be allowed. */
  async function externalVolumes(project: Project, file: string, principal: Principal, issues: ComposeIssue[]): Promise<Project["volumes"]> {
    const volumes: Project["volumes"] = { ...project.volumes };
    for (const [key, volume] of Object.entries(project.volumes)) {
      if (!volume.external) continue;
      const name = volume.name ?? key;
      const found = await deps.volumes.get(name);
      if (!found || !mayUse(principal, found, await deps.holderOf(volumeStack(name)))) {
        issues.push({ file, path: `volumes.${key}`, reason: `volume ${name} does not exist: create it with 'corral volume create ${name}'` });
        continue;
      }
      // made where the container lands, with the driver it was declared with (and still allowed)
      for (const p of volumeProblems(found.driver, found.opts, policy)) {
        issues.push({ file, path: `volumes.${key}`, reason: `volume ${name}: ${p.key.replace(/^driver_opts/, "opts")}: ${p.reason}` });
      }
      volumes[key] = { ...volume, name, driver: found.driver, driver_opts: found.opts, labels: { ...volume.labels, "io.corral.volume": name } };
    }
    return volumes;
  }

  /** The request's files as one project under the site policy: every violation at once, or the project with its ports assigned. */
  async function admit(
    stack: string,
    body: UpBody,
    { checkSecrets, principal }: { checkSecrets: boolean; principal: Principal }, // render leaves secrets to the CLI, which creates them next
  ): Promise<Admitted> {
    const loaded = loadProject({ files: body.files, ...(body.rancher ? { rancher: body.rancher } : {}) });
    const ctx = { stack, file: loaded.file, origins: loaded.origins, user: principal.name };
    // the host ports other stacks hold (read from every stack) matter only to a project that publishes one
    const { used, previous, own } = publishesPorts(loaded.project.services) ? await deps.portsInUse(stack) : { used: new Map<number, StackState>(), previous: {}, own: undefined };
    const assigned = { ...assignPorts(loaded.project, policy, new Set(used.keys()), previous, ctx) };
    const issues = [...checkPolicy(assigned.project, policy, ctx), ...assigned.issues, ...portIssues(loaded, used, own, principal)];
    const volumes = await externalVolumes(assigned.project, loaded.file, principal, issues);
    assigned.project = applySiteDefaults({ ...assigned.project, volumes }, policy);
    const secretVersions: Record<string, number> = {};
    for (const [key, secret] of Object.entries(assigned.project.secrets)) {
      const name = secret.name ?? key;
      const found = await deps.secrets.info(name);
      const info = found && mayUse(principal, found, await deps.holderOf(name.split(".")[1] ?? "")) ? found : undefined; // another group's secret is not there
      if (info) secretVersions[name] = info.versions;
      else if (checkSecrets) issues.push({ file: loaded.file, path: `secrets.${key}`, reason: `secret ${name} does not exist: create it with 'corral secret create ${name} FILE'` });
    }
    return {
      project: assigned.project,
      violations: issues.length > 0 ? new ComposeError(issues) : undefined,
      secretVersions,
      warnings: healthWarnings(assigned.project, loaded.file, loaded.origins),
      file: loaded.file,
      origins: loaded.origins ?? {},
      ...(loaded.autoConfirmMs ? { autoConfirmMs: loaded.autoConfirmMs } : {}),
    };
  }

  return { admit };
}

export type Admit = ReturnType<typeof admission>["admit"];
