import {
  ComposeError,
  decide,
  registryOf,
  writtenDigest,
  type ImageCheck,
  type ServiceSpec,
  evolve,
  handleCommand,
  invalid,
  localImageWarnings,
  previewPlacements,
  whatChanged,
  type Command,
  type ComposeIssue,
  type HostInfo,
  type PortPool,
  type SitePolicy,
  type Source,
  type StackEvent,
  type StackState,
} from "@corral/core";
import { CONTROL, faultPoint, type QueueSender } from "@corral/queue";
import type { EventStore, RegistryStore } from "@corral/store";
import { loginForStack } from "../routes/registries.js";
import type { ImageResolver } from "./digests.js";
import { primaryGroup, type Principal } from "../auth.js";
import type { UpBody } from "../bodies.js";
import { selectServices } from "../select.js";
import { publishesPorts, type Admit, type Admitted } from "./admit.js";
import type { StackLookups } from "./lookups.js";
import type { HostPorts } from "./ports.js";

import { newOpId } from "./op-ids.js";

export { namingOps, newOpId } from "./op-ids.js";

export const opOf = (events: StackEvent[]) => events.find((e) => e.type === "OperationStarted");

/** What `up` adds to a revision beyond its files: a note in the history, and which services a rollback is of. */
export type UpExtra = { note?: string; rollbackServices?: string[] };

export interface DeployDeps {
  store: EventStore;
  registries: RegistryStore;
  resolveImage?: ImageResolver | undefined;
  sender: Pick<QueueSender, "send">;
  controlQueueUrl: string;
  policy: SitePolicy;
  clock: () => number;
  admit: Admit;
  mayTouch: StackLookups["mayTouch"];
  liveHosts: StackLookups["liveHosts"];
  portPool: HostPorts["portPool"];
  givingPorts: HostPorts["givingPorts"];
  othersPlaced: HostPorts["othersPlaced"];
}

/** The Up command an `up` request makes, for the state it is decided on and the host ports it may give. */
function upCommand(
  stack: string,
  body: UpBody,
  admitted: Admitted | undefined,
  principal: Principal,
  source: Source,
  extra: UpExtra,
  op: string,
  clock: () => number,
  pins?: Record<string, ImageCheck>,
) {
  let fileServices = admitted?.project.services;
  if (fileServices && body.services?.length) {
    const selected = selectServices(fileServices, body.services, body.files.map((f) => f.name).join(" + "));
    if (selected.issues.length > 0) throw new ComposeError(selected.issues);
    const all = fileServices;
    fileServices = Object.fromEntries(selected.services.map((n) => [n, all[n]!]));
  }
  return (state: StackState, ports: PortPool): Command => ({
    type: "Up",
    ports,
    stack,
    op,
    services: fileServices ?? (body.toRevision ? {} : Object.fromEntries(Object.entries(state.services).map(([n, r]) => [n, r.spec]))),
    ...(admitted ? { volumes: admitted.project.volumes, secrets: admitted.project.secrets, secretVersions: admitted.secretVersions } : {}),
    by: principal.name,
    group: primaryGroup(principal),
    source,
    now: clock(),
    ...(body.upgrade ? { upgrade: true } : {}),
    ...(body.forceUpgrade ? { force: true } : {}),
    ...(body.confirmUpgrade ? { confirm: true } : {}),
    ...(body.rollback ? { rollback: true } : {}),
    ...(body.toRevision !== undefined ? { toRevision: body.toRevision } : {}),
    ...(body.batchSize ? { batchSize: body.batchSize } : {}),
    ...(body.intervalMs !== undefined ? { intervalMs: body.intervalMs } : {}),
    ...(body.startFirst ? { startFirst: true } : {}),
    ...(body.pull ? { pull: true } : {}),
    ...((body.autoConfirmMs ?? admitted?.autoConfirmMs) ? { autoConfirmMs: body.autoConfirmMs ?? admitted?.autoConfirmMs } : {}),
    ...(extra.note ? { note: extra.note } : {}),
    ...(extra.rollbackServices ? { rollbackServices: extra.rollbackServices } : {}),
    ...(pins && Object.keys(pins).length > 0 ? { pins } : {}),
  });
}

type Preview = ReturnType<typeof previewPlacements>;

/** `up --dry-run`'s answer: which services would be upgraded and why, and where the new containers would land. */
function dryRunAnswer(stack: string, state: StackState, events: StackEvent[], after: StackState, preview: Preview | { placements: []; failed?: undefined }, force: boolean | undefined) {
  const upgrade = events.find((e) => e.type === "UpgradeStarted");
  const services = upgrade?.type === "UpgradeStarted" ? upgrade.services : [];
  const revision = events.find((e) => e.type === "RevisionCommitted");
  const started = opOf(events);
  return {
    stack,
    dryRun: true,
    kind: started?.type === "OperationStarted" ? started.kind : "none",
    revision: revision?.type === "RevisionCommitted" ? revision.revision : state.revision,
    upgrade: services.map((name) => ({ service: name, keys: whatChanged(state.services[name], after.services[name], force) })),
    create: revision?.type === "RevisionCommitted" ? revision.changed.filter((n) => !services.includes(n) && !state.services[n]) : [],
    placements: preview.placements.map((p) => ({ container: p.container, service: p.service, host: p.host, why: p.why })),
    ...(preview.failed ? { failed: preview.failed } : {}),
  };
}

/** The verbs that append to a stack's log: every one through the command handler, and the controller woken after. */
export function deploys(deps: DeployDeps) {
  /**
   * What each image of the files names now, asked of its registry once per
   * reference (a digest written in the reference is pinned as written), with
   * the caller's login for it, or their group's: at most 8 at a time.
   */
  async function imagePins(services: Record<string, ServiceSpec>, principal: Principal): Promise<Record<string, ImageCheck> | undefined> {
    const resolve = deps.resolveImage;
    if (!resolve) return undefined;
    const images = [...new Set(Object.values(services).map((s) => s.image))].filter((i) => i && !writtenDigest(i));
    const out: Record<string, ImageCheck> = {};
    const who = { owner: principal.name, group: primaryGroup(principal) };
    // one lookup (a list, and an unsealing) per registry, however many of its images the files name
    const logins = new Map<string, ReturnType<typeof loginForStack>>();
    const loginFor = (server: string) => {
      if (!logins.has(server)) logins.set(server, loginForStack(deps.registries, who, server).catch(() => undefined));
      return logins.get(server)!;
    };
    for (let i = 0; i < images.length; i += 8) {
      await Promise.all(
        images.slice(i, i + 8).map(async (image) => {
          out[image] = await resolve(image, () => loginFor(registryOf(image))).catch((e: unknown) => ({ unchecked: `the registry could not be asked (${String(e)})` }));
        }),
      );
    }
    return out;
  }

  /** Decide and append (core's handleCommand retries when the controller appended meanwhile); then wake the controller. */
  async function command(stack: string, make: (state: StackState) => Command) {
    let asked: Command | undefined;
    const { state, version, events } = await handleCommand(deps.store, stack, (s) => (asked = make(s)));
    // the same request again (its first answer lost): its operation runs, and the controller may not have heard of it
    const again = events.length === 0 && asked !== undefined && "op" in asked && state.op?.id === asked.op && state.op.status === "running";
    if (events.length === 0 && !again) return { state, version, events };
    faultPoint("after:accept");
    await deps.sender.send(deps.controlQueueUrl, [{ body: { kind: "stack-changed", stack, version }, group: stack, dedupId: `${stack}#${version}`, to: CONTROL }]);
    return { state, version, events };
  }

  /**
   * `up` (and every verb that makes a revision from a project: service
   * update, service rollback, webhooks): admit the files, decide, append,
   * wake the controller; with dryRun, the plan only.
   */
  async function up(stack: string, body: UpBody, principal: Principal, source: Source, extra: UpExtra = {}) {
    // --confirm-upgrade and --rollback need no file: they act on what runs
    const noFiles = body.files.length === 0;
    if (noFiles && !body.confirmUpgrade && !body.rollback) throw invalid("files: at least one compose file is required", "files");
    if (noFiles && body.services?.length) throw invalid("services: up SERVICE... brings services up from the compose files: send the files", "services");
    const admitted = noFiles ? undefined : await deps.admit(stack, body, { checkSecrets: true, principal });
    if (admitted?.violations) throw admitted.violations;
    const op = newOpId();
    const pins = admitted ? await imagePins(admitted.project.services, principal) : undefined;
    const make = upCommand(stack, body, admitted, principal, source, extra, op, deps.clock, pins);
    if (body.dryRun) {
      // decide, and write nothing: which services would be upgraded, and why
      const state = await deps.store.load(stack);
      const events = decide(make(state, await deps.portPool(stack)), state);
      const after = events.reduce(evolve, state);
      // where the new containers would land, and why: the operation planned on the live hosts with a perfect agent
      // (the hosts read once, for the preview and the warnings, and only if either needs them)
      let hosts: Promise<HostInfo[]> | undefined;
      const live = () => (hosts ??= deps.liveHosts());
      const preview = after.op?.status === "running" ? previewPlacements(after, await live(), await deps.othersPlaced(stack), deps.clock()) : { placements: [] as [] };
      return { status: 200 as const, body: { ...dryRunAnswer(stack, state, events, after, preview, body.forceUpgrade), warnings: await warningsFor(admitted, after, live) } };
    }
    // the ports other stacks hold are read and this stack's slots given theirs under one lease: no port is given twice.
    // A project that publishes none takes no port (what it held goes back): it neither reads every stack nor waits
    // for the lease, so ups of such stacks do not queue behind each other; nor does a confirm alone, which removes
    // containers and starts none. A rollback (no files) may bring back ports: it takes the lease.
    const confirmOnly = noFiles && body.confirmUpgrade && !body.rollback && !body.upgrade && !body.forceUpgrade && body.toRevision === undefined;
    const portless = confirmOnly || (admitted !== undefined && !publishesPorts(admitted.project.services));
    const { state, version, events } = portless
      ? await command(stack, (state) => make(state, { range: deps.policy.portRange, taken: [] }))
      : await deps.givingPorts(async () => {
          const ports = await deps.portPool(stack);
          return command(stack, (state) => make(state, ports));
        });
    const started = opOf(events);
    const revision = started?.type === "OperationStarted" ? started.revision : undefined;
    const warnings = await warningsFor(admitted, state);
    return { status: 202 as const, body: { stack, op: started?.type === "OperationStarted" ? started.op : op, version, revision, ...(warnings.length ? { warnings } : {}) } };
  }

  /** What up tells and does not refuse: the files' health settings, and images some hosts could not pull (the hosts are read only then). */
  async function warningsFor(admitted: Admitted | undefined, state: StackState, live: () => Promise<HostInfo[]> = deps.liveHosts): Promise<ComposeIssue[]> {
    if (!admitted) return [];
    if (!state.lacking) return admitted.warnings;
    const active = (await live()).filter((h) => (h.state ?? "active") === "active").map((h) => h.id);
    return [...admitted.warnings, ...localImageWarnings(state, active, admitted.file, admitted.origins)];
  }

  /** `scale` (and `service update --replicas`, `service scale`): slots added or removed, not a new revision. */
  async function scale(stack: string, scales: Record<string, number>, principal: Principal, source: Source) {
    for (const [service, n] of Object.entries(scales)) {
      if (n > deps.policy.maxScale) throw invalid(`scales.${service}: ${n} containers is above the site's limit of ${deps.policy.maxScale} per service`, `scales.${service}`);
    }
    await deps.mayTouch(stack, principal);
    const op = newOpId();
    const { version } = await deps.givingPorts(async () => {
      const [ports, hosts, placed] = [await deps.portPool(stack), await deps.liveHosts(), await deps.othersPlaced(stack)];
      return command(stack, () => ({ type: "Scale", stack, op, scales, by: principal.name, source, ports, hosts, placed }));
    });
    return { stack, op, version };
  }

  return { command, up, scale };
}

export type Deploys = ReturnType<typeof deploys>;
/** What `up` answers: a plan (dryRun, 200), or the operation it started (202). */
export type UpAnswer = Awaited<ReturnType<Deploys["up"]>>;
