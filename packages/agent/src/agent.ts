import {
  directPorts,
  effectiveHealthcheck,
  groupOf,
  labels as L,
  parseRoutes,
  registryOf,
  routedPorts,
  routesLabel,
  hostMessageSchema,
  type HostMessage,
  type Logger,
  type ServiceSpec,
  type Step,
  type StepMessage,
  type StepReport,
} from "@corral/core";
import { existsSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { CONTROL, extendVisibility, receiveLoop, type Opener, type OutgoingMessage, type QueueSender, type Received } from "@corral/queue";
import type { SQSClient } from "@aws-sdk/client-sqs";
import { bindProblem, resolveBind } from "./binds.js";
import { ensurePrivateDir, writeNewFile } from "./secret-files.js";
import type { PortRouter } from "./router.js";
import type { SessionRunner } from "./sessions.js";
import { engineMessage, engineUnreachable, staleTask, type ContainerInfo, type ContainerRuntime, type CreateSpec, type MountRequest, type NetworkAssignment, type RegistryAuth } from "./runtime.js";

/** What the API says of a pull's registry: the stack's login, or "anonymous" (a private registry, no login for this stack). */
export type RegistryAccess = RegistryAuth | "anonymous";

type Outcome = Omit<StepReport, "kind" | "stack" | "stepId" | "host">;

export const stackNetwork = (stack: string) => `corral-${stack}`;

/** The engine's words for a published host port another socket holds. */
const portInUse = /address already in use|port is already allocated/i;

/** A container's secret folder under the secrets dir: named by the create step that made it (its io.corral.step label). */
export const secretFolder = (createStepId: string) => createStepId.replace(/[^A-Za-z0-9_.-]/g, "_");

/** In each secret folder, the host whose agent wrote it (agents of several hosts may share a machine and its secrets dir): a sweep takes only its own host's. */
export const SECRET_OWNER_FILE = ".host";

/** A tmpfs where one exists (/dev/shm), so that secret values never touch a disk. */
export const defaultSecretsDir = () => join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "corral-secrets");

/** A step's failure when the engine stayed away: what happened in a line, the engine's error last. */
export function unreachableError(hostId: string, message: string, waitedMs: number): string {
  return `the Docker engine of host ${hostId} could not be reached (${message.split("\n")[0]!.slice(0, 200)}); waited ${Math.round(waitedMs / 1000)} s for it`;
}

/**
 * Why a step may not touch a container found under its name: the container
 * must carry the step's stack and service labels, and, where the step knows
 * the create that made it, that create's step label. Undefined when it may.
 * A name alone proves nothing: another stack's container, or one corral does
 * not manage, may hold it.
 */
function notOurs(step: Step, c: ContainerInfo): string | undefined {
  const expected: Array<[string, string]> = [[L.stack, step.stack], [L.service, step.service], ...(step.createdBy ? [[L.step, step.createdBy] as [string, string]] : [])];
  const wrong = expected.find(([label, value]) => c.labels[label] !== value);
  if (!wrong) return undefined;
  const [label, value] = wrong;
  const has = c.labels[label] === undefined ? "no such label" : `${label}=${c.labels[label]}`;
  return `refusing to ${step.action} container ${c.name} (${c.id.slice(0, 12)}): it does not belong to this step (expected ${label}=${value}, found ${has})`;
}

/** The container's restart policy: `restart:`, else deploy.restart_policy (Swarm's conditions in Docker's words). */
function restartOf(spec: ServiceSpec): string | undefined {
  if (spec.restart) return spec.restart;
  const p = spec.deploy?.restart_policy;
  if (!p?.condition) return undefined;
  if (p.condition === "none") return "no";
  if (p.condition === "any") return "always";
  return p.max_attempts !== undefined ? `on-failure:${p.max_attempts}` : "on-failure";
}

export interface AgentOptions {
  hostId: string;
  /** On the overlay: the stack network's subnet and bridge here, from the control plane (and, once made, tell the overlay). */
  stackNetwork?: (stack: string) => Promise<NetworkAssignment>;
  networkMade?: (stack: string) => Promise<void>;
  /** The control plane's fingerprint (see controlFingerprint): a label on every container, so that a reconcile takes only its own control plane's. */
  controlId?: string;
  runtime: ContainerRuntime;
  /** Where reports go: the control queue. */
  /** `group`: the step's own queue group (a slot of a service), kept for its report. */
  report: (report: StepReport, attempt: number, group: string) => Promise<void>;
  /** Override every container's own stop grace period (stop_grace_period, else Docker's 10 s). */
  stopGraceSeconds?: number;
  /** A secret's value, asked of the API with this host's own token, for a create step. */
  fetchSecret?: (step: Step, name: string, version: number) => Promise<Buffer>;
  /**
   * The login for the registry a pull's image comes from (the stack owner's),
   * asked of the API with this host's own token for that very step: never on
   * the queue. "anonymous": a registry others hold logins for, the stack
   * none; the image is pulled without one even when the host has it (a copy
   * another stack's login pulled proves nothing). Undefined: a registry
   * corral knows no login for; pulled without one, when missing.
   */
  registryAuth?: (step: Step, server: string) => Promise<RegistryAccess | undefined>;
  /** Where secret files live on the host (a tmpfs), one folder per container. */
  secretsDir?: string;
  /** Holds routed host ports and forwards them to healthy containers (see router.ts). */
  router?: PortRouter;
  /** Override how long a start waits for a health verdict. */
  healthTimeoutMs?: number;
  /**
   * A start refused because a published host port is held (an outgoing
   * connection's source port for a moment, a process just letting go) is
   * tried again: this many times in all, the first pause this long, doubling
   * (default 5 attempts, 250 ms: about 4 s).
   */
  portRetry?: { attempts: number; delayMs: number };
  /**
   * The site policy's bindRoots (the API tells an agent at registration): a
   * bind mount's real path, symlinks resolved, must lie strictly under one.
   * None: no bind mounts, as the policy's default.
   */
  bindRoots?: readonly string[];
  /**
   * A step that cannot reach the engine (dockerd stopped or restarting) is
   * run again, from the top, every `retryMs`, for up to `waitMs` (default
   * 120 s: within the controller's patience, ten resends of 30 s); then it
   * fails, saying the engine could not be reached.
   */
  engineWait?: { waitMs: number; retryMs: number };
  log?: Logger;
}

/**
 * Runs steps on one host. Before acting it asks the engine whether the step
 * is already done (container labels), so a message delivered twice, or
 * again after a crash, acts once.
 */
export class StepRunner {
  readonly #o: AgentOptions;
  /** Steps seen by this process: a duplicate waits for the first run instead of acting. */
  readonly #runs = new Map<string, Promise<Outcome>>();
  /** Steps that failed in this process, for the steps planned after them. */
  readonly #failed = new Map<string, Outcome>();

  /** What steps are acting on right now, counted: container names and create step ids (see acting). */
  readonly #acting = new Map<string, number>();

  constructor(options: AgentOptions) {
    this.#o = options;
  }

  /**
   * Is a step of this process acting on this container (by name) right now,
   * or on this secret folder (`secrets:FOLDER`, its create's)? The reconcile
   * leaves those alone: the step says how it went.
   */
  acting(key: string): boolean {
    return (this.#acting.get(key) ?? 0) > 0;
  }

  #hold(keys: string[]): () => void {
    for (const k of keys) this.#acting.set(k, (this.#acting.get(k) ?? 0) + 1);
    return () => {
      for (const k of keys) {
        const n = (this.#acting.get(k) ?? 1) - 1;
        if (n > 0) this.#acting.set(k, n);
        else this.#acting.delete(k);
      }
    };
  }

  /** Networks being created: services of a stack created at once share one. */
  readonly #networks = new Map<string, Promise<NetworkAssignment | undefined>>();

  /** The stack's network here, made if missing; on the control plane's subnet when this host is on the overlay. */
  #ensureNetwork(network: string, stack: string): Promise<NetworkAssignment | undefined> {
    let pending = this.#networks.get(network);
    if (!pending) {
      pending = (async () => {
        const assigned = this.#o.stackNetwork ? await this.#o.stackNetwork(stack) : undefined;
        await this.#o.runtime.ensureNetwork(network, { [L.stack]: stack }, assigned);
        if (assigned) await this.#o.networkMade?.(stack);
        return assigned;
      })().finally(() => this.#networks.delete(network));
      this.#networks.set(network, pending);
    }
    return pending;
  }

  /** Run a step (once per process), then report its outcome. */
  async handle(message: StepMessage): Promise<void> {
    const outcome = await this.run(message.step);
    await this.#o.report({ kind: "report", stack: message.step.stack, stepId: message.step.id, host: this.#o.hostId, ...outcome }, message.attempt, groupOf(message.step));
  }

  run(step: Step): Promise<Outcome> {
    let run = this.#runs.get(step.id);
    if (!run) {
      run = this.#afterDependencies(step);
      this.#runs.set(step.id, run);
      if (this.#runs.size > 5000) this.#runs.delete(this.#runs.keys().next().value as string);
      // a failure may be transient: let a redelivery try again, but remember it for the steps that wait on it
      void run.then((o) => {
        if (o.ok) return;
        this.#runs.delete(step.id);
        this.#failed.set(step.id, o);
        if (this.#failed.size > 5000) this.#failed.delete(this.#failed.keys().next().value as string);
      });
    }
    return run;
  }

  async #afterDependencies(step: Step): Promise<Outcome> {
    for (const dep of step.after) {
      const failed = this.#failed.get(dep);
      const before = this.#runs.get(dep) ?? (failed ? Promise.resolve(failed) : undefined);
      if (!before) continue; // done by an earlier process, or arriving later: the engine will tell
      const outcome = await before;
      if (!outcome.ok && !step.afterAny) return { ok: false, error: `skipped: ${dep.split(".")[3] ?? "an earlier step"} failed` };
    }
    if (step.delayMs) await new Promise((r) => setTimeout(r, step.delayMs)); // the interval between upgrade batches, as asked
    const release = this.#hold([step.container, step.renameTo, `secrets:${secretFolder(step.id)}`].filter((k): k is string => k !== undefined));
    try {
      const { waitMs, retryMs } = this.#o.engineWait ?? { waitMs: 120_000, retryMs: 1000 };
      const since = Date.now();
      for (let attempt = 1; ; attempt++) {
        try {
          const outcome = await this.#execute(step);
          this.#o.log?.info("step done", { step: step.id, action: step.action, ...(attempt > 1 ? { afterEngineWaitMs: Date.now() - since } : {}) });
          return outcome;
        } catch (e) {
          const message = engineMessage(e);
          // a dockerd on its way down answers a call it cuts off in many ways: any failure while the engine no
          // longer answers is its absence, not the step's
          if (engineUnreachable(e) || !(await this.#engineAnswers())) {
            // the engine is away (stopped, restarting): every step checks the engine before acting, so the same
            // step, run again from the top once it answers, does what is left of it
            const waited = Date.now() - since;
            if (waited + retryMs <= waitMs) {
              if (attempt === 1) this.#o.log?.warn?.("the Docker engine cannot be reached; the step waits for it", { step: step.id, error: message });
              await new Promise((r) => setTimeout(r, retryMs));
              continue;
            }
            const error = unreachableError(this.#o.hostId, message, waited);
            this.#o.log?.error("step failed", { step: step.id, error });
            return { ok: false, error };
          }
          this.#o.log?.error("step failed", { step: step.id, error: message });
          return { ok: false, error: message };
        }
      }
    } finally {
      release();
    }
  }

  /** Whether the engine answers at all (its version). */
  #engineAnswers(): Promise<boolean> {
    return this.#o.runtime.engineVersion().then(
      () => true,
      () => false,
    );
  }

  /**
   * Write the secrets a container mounts into its own folder on the host's
   * tmpfs (0700, the agent's user's, checked: see ensurePrivateDir), each file
   * new, never through a symlink, with the owner and mode the service asked
   * for, and bind them read-only at /run/secrets/TARGET.
   */
  async #secretFiles(step: Step): Promise<MountRequest[]> {
    if (!step.secrets?.length) return [];
    const { fetchSecret, secretsDir } = this.#o;
    if (!fetchSecret || !secretsDir) throw new Error("this agent cannot mount secrets (no secret path configured)");
    // one folder per container, named by its create step (the container's name moves aside in an upgrade)
    const dir = join(secretsDir, secretFolder(step.id));
    await ensurePrivateDir(secretsDir);
    await rm(dir, { recursive: true, force: true }); // a leftover of an earlier attempt; rm does not follow links
    await mkdir(dir, { mode: 0o700 }); // fails if anything took the name meanwhile
    await ensurePrivateDir(dir);
    await writeNewFile(join(dir, SECRET_OWNER_FILE), Buffer.from(this.#o.hostId), { uid: process.geteuid?.() ?? 0, gid: process.getegid?.() ?? 0 }, 0o600);
    const mounts: MountRequest[] = [];
    for (const [i, s] of step.secrets.entries()) {
      const file = join(dir, String(i));
      await writeNewFile(file, await fetchSecret(step, s.name, s.version), { uid: Number(s.uid), gid: Number(s.gid) }, s.mode);
      const target = s.target.startsWith("/") ? s.target : posix.join("/run/secrets", s.target);
      mounts.push({ type: "bind", source: file, target, readOnly: true });
    }
    return mounts;
  }

  /**
   * Labels under io.corral.* steer this agent on the host: the router holds
   * the ports in io.corral.routes of every container that has it, even after
   * a restart, and stack/service/step say whose a container is. The invariant:
   * only the agent sets them, at create, from the step. Docker gives a
   * container its image's labels too, so an image that carries any
   * io.corral.* label is refused, and so is a service whose own labels set
   * one of the agent's (io.corral.cron.* are the service's to set: the
   * control plane reads those from the spec, never from a container).
   */
  async #reservedLabels(spec: ServiceSpec): Promise<string | undefined> {
    const own = new Set<string>(Object.values(L));
    const set = Object.keys({ ...spec.deploy?.labels, ...spec.labels }).filter((k) => own.has(k));
    if (set.length > 0) return `the label${set.length > 1 ? "s" : ""} ${set.join(", ")} ${set.length > 1 ? "are" : "is"} corral's own: a service may not set ${set.length > 1 ? "them" : "it"}`;
    const fromImage = Object.keys((await this.#o.runtime.imageLabels(spec.image)) ?? {}).filter((k) => k.startsWith("io.corral."));
    if (fromImage.length > 0) {
      return `image ${spec.image} carries the label${fromImage.length > 1 ? "s" : ""} ${fromImage.join(", ")}: io.corral.* labels are corral's own, and a container would inherit ${fromImage.length > 1 ? "them" : "it"}; rebuild the image without ${fromImage.length > 1 ? "them" : "it"}`;
    }
    return undefined;
  }

  /**
   * Start a container, again after a pause while the engine says one of its
   * host ports is in use; undefined once started, else why not, naming the
   * port and this host. Any other failure is thrown as it came.
   */
  async #startHoldingPorts(name: string, info: ContainerInfo): Promise<string | undefined> {
    const { attempts, delayMs } = this.#o.portRetry ?? { attempts: 5, delayMs: 250 };
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#o.runtime.start(name);
        return undefined;
      } catch (e) {
        const message = engineMessage(e);
        if (!portInUse.test(message)) throw e;
        if (attempt >= attempts) {
          const port = /(?:listen \w+ |Bind for )\S*:(\d+)/.exec(message)?.[1] ?? info.ports.map((p) => p.published).join(", ");
          return `host port ${port || "(unknown)"} is in use on ${this.#o.hostId}: ${message} (tried ${attempts} times)`;
        }
        this.#o.log?.info("host port in use, starting again shortly", { container: name, attempt, error: message });
        await new Promise((r) => setTimeout(r, delayMs * 2 ** (attempt - 1)));
      }
    }
  }

  /**
   * Make sure a step's image is on the host: pulled when missing or forced,
   * and always from a private registry (one corral holds logins for), with
   * the login the API gives this host for this step, if any. False when it
   * was there already and nothing was pulled.
   */
  async #ensureImage(step: Step, force: boolean): Promise<boolean> {
    const access = this.#o.registryAuth ? await this.#o.registryAuth(step, registryOf(step.image)) : undefined;
    if (!force && access === undefined && (await this.#o.runtime.imageExists(step.image))) return false;
    await this.#o.runtime.pull(step.image, typeof access === "object" ? access : undefined);
    return true;
  }

  async #execute(step: Step): Promise<Outcome> {
    const rt = this.#o.runtime;
    const name = step.container ?? "";
    switch (step.action) {
      case "pull":
        return (await this.#ensureImage(step, step.forcePull ?? false)) ? { ok: true } : { ok: true, alreadyDone: true };
      case "create": {
        const existing = await rt.inspect(name);
        if (existing?.labels[L.step] === step.id) return { ok: true, alreadyDone: true, containerId: existing.id };
        if (existing) {
          if (existing.labels[L.stack] !== step.stack || existing.labels[L.service] !== step.service) {
            return { ok: false, error: `the name ${name} is taken by a container that is not ${step.stack}/${step.service}'s (${existing.id.slice(0, 12)})` };
          }
          await rt.remove(name); // a leftover of this service that the log no longer knows
        }
        if (!step.spec) return { ok: false, error: "create step without a service spec" };
        const spec = step.spec;
        // a port the control plane gave no host port: never left to the engine, which would pick one outside the site's range
        const unassigned = directPorts(spec).filter((p) => p.published === undefined);
        if (unassigned.length > 0) {
          return { ok: false, error: `port${unassigned.length > 1 ? "s" : ""} ${unassigned.map((p) => `${p.target}/${p.protocol}`).join(", ")} of ${name} came without a host port: the control plane gives each container its own; refusing to let the engine choose one` };
        }
        const reserved = await this.#reservedLabels(spec);
        if (reserved) return { ok: false, error: reserved };
        const network = stackNetwork(step.stack);
        const assigned = await this.#ensureNetwork(network, step.stack);
        const mounts: MountRequest[] = [];
        for (const m of spec.volumes ?? []) {
          let source = m.source;
          if (m.type === "bind" && m.source) {
            // the API checked the path as written; here, on the host, what it really points at: that is what gets mounted
            const bind = await resolveBind(m.source, this.#o.bindRoots ?? []);
            if ("problem" in bind) return { ok: false, error: bind.problem };
            source = bind.path;
            const problem = await bindProblem(source, spec.user, spec.group_add);
            if (problem) return { ok: false, error: problem };
          }
          const declared = m.type === "volume" && m.source ? step.volumes?.[m.source] : undefined;
          if (declared) source = declared.name ?? m.source;
          if (declared && source) {
            await rt.ensureVolume({
              name: source,
              ...(declared.driver ? { driver: declared.driver } : {}),
              ...(declared.driver_opts ? { driverOpts: declared.driver_opts } : {}),
              labels: { ...declared.labels, [L.stack]: step.stack },
              // a volume made with 'corral volume create' is created here, where the container lands
              external: (declared.external ?? false) && !declared.labels?.["io.corral.volume"],
            });
          }
          mounts.push({
            type: m.type,
            target: m.target,
            ...(source ? { source } : {}),
            ...(m.read_only ? { readOnly: true } : {}),
            ...(m.tmpfs?.size !== undefined ? { tmpfsSize: m.tmpfs.size } : {}),
            ...(m.tmpfs?.mode !== undefined ? { tmpfsMode: m.tmpfs.mode } : {}),
            ...(m.volume?.nocopy ? { noCopy: true } : {}),
            ...(m.bind?.propagation ? { propagation: m.bind.propagation } : {}),
          });
        }
        mounts.push(...(await this.#secretFiles(step)));
        const routes = routedPorts(spec);
        if (routes.length > 0) {
          if (!this.#o.router) return { ok: false, error: `ports ${routes.map((p) => p.published).join(", ")} are routed, and this agent runs no port router` };
          const taken = await this.#o.router.claim(routes.map((p) => ({ ...(p.host_ip ? { hostIp: p.host_ip } : {}), published: p.published!, target: p.target })));
          if (taken) return { ok: false, error: taken };
        }
        const healthcheck = effectiveHealthcheck(spec);
        const request: CreateSpec = {
          name,
          image: spec.image,
          ...(spec.command ? { command: spec.command } : {}),
          ...(spec.entrypoint ? { entrypoint: spec.entrypoint } : {}),
          env: spec.environment,
          // the agent's own io.corral.* labels, from the step alone: no image label and no user label of those names gets here (#reservedLabels)
          labels: {
            ...spec.deploy?.labels,
            ...spec.labels,
            [L.stack]: step.stack,
            [L.service]: step.service,
            [L.slot]: String(step.slot ?? 1),
            [L.revision]: String(step.revision),
            [L.step]: step.id,
            [L.hash]: step.hash ?? "",
            [L.host]: this.#o.hostId,
            ...(this.#o.controlId ? { [L.control]: this.#o.controlId } : {}),
            ...(routes.length > 0 ? { [L.routes]: routesLabel(spec) } : {}),
          },
          ports: directPorts(spec),
          capAdd: spec.cap_add,
          capDrop: spec.cap_drop,
          ...(spec.user ? { user: spec.user } : {}),
          ...(spec.working_dir ? { workingDir: spec.working_dir } : {}),
          ...(restartOf(spec) ? { restart: restartOf(spec)! } : {}),
          ...(spec.deploy?.resources?.reservations?.memory !== undefined ? { memoryReservation: spec.deploy.resources.reservations.memory } : {}),
          ...(spec.deploy?.resources?.limits?.pids !== undefined ? { pidsLimit: spec.deploy.resources.limits.pids } : {}),
          ...(mounts.length ? { mounts } : {}),
          ...(healthcheck ? { healthcheck } : {}),
          ...(spec.stop_signal ? { stopSignal: spec.stop_signal } : {}),
          ...(spec.stop_grace_period !== undefined ? { stopGraceMs: spec.stop_grace_period } : {}),
          ...(spec.read_only !== undefined ? { readOnly: spec.read_only } : {}),
          ...(spec.tmpfs ? { tmpfs: spec.tmpfs } : {}),
          ...(spec.ulimits ? { ulimits: spec.ulimits } : {}),
          ...(spec.mem_limit !== undefined || spec.deploy?.resources?.limits?.memory !== undefined ? { memory: spec.mem_limit ?? spec.deploy?.resources?.limits?.memory } : {}),
          ...(spec.cpus !== undefined || spec.deploy?.resources?.limits?.cpus !== undefined ? { nanoCpus: Math.round((spec.cpus ?? spec.deploy?.resources?.limits?.cpus ?? 0) * 1e9) } : {}),
          ...(spec.shm_size !== undefined ? { shmSize: spec.shm_size } : {}),
          ...(spec.sysctls ? { sysctls: spec.sysctls } : {}),
          ...(spec.init !== undefined ? { init: spec.init } : {}),
          ...(spec.hostname ? { hostname: spec.hostname } : {}),
          // on the overlay, names are the stack's name server's (on the network's gateway), which Docker's own resolver asks
          ...(assigned ? { dns: [assigned.gateway, ...(spec.dns ?? [])] } : spec.dns ? { dns: spec.dns } : {}),
          ...(spec.extra_hosts ? { extraHosts: spec.extra_hosts } : {}),
          ...(spec.logging ? { logging: spec.logging } : {}),
          ...(spec.group_add ? { groupAdd: spec.group_add } : {}),
          ...(spec.expose ? { expose: spec.expose } : {}),
          ...(spec.privileged !== undefined ? { privileged: spec.privileged } : {}),
          ...(spec.network_mode ? { networkMode: spec.network_mode } : {}),
          network,
          // an alias would have Docker answer the service's name with this host's containers alone
          aliases: assigned ? [] : [step.service],
          ...(step.ip ? { ipv4Address: step.ip } : {}),
        };
        const id = await rt.create(request).catch(async (e: unknown) => {
          // the stack's network went away under us (a removal of the same stack, just before): make it again, once
          if (!/network .* not found/i.test(engineMessage(e))) throw e;
          await this.#ensureNetwork(network, step.stack);
          return rt.create(request);
        });
        return { ok: true, containerId: id };
      }
      case "start": {
        const before = await rt.inspect(name);
        if (!before) return { ok: false, error: `container ${name} does not exist` };
        const refused = notOurs(step, before);
        if (refused) return { ok: false, error: refused };
        let recreated: string | undefined;
        if (!before.running) {
          const held = await this.#startHoldingPorts(name, before).catch(async (e: unknown) => {
            if (!staleTask(e) || before.status !== "created") throw e;
            // a dockerd stopped while it first started this container left containerd a task no start replaces:
            // the container, which never ran, is made anew with its own configuration (a new id, reported)
            this.#o.log?.warn?.("a start cut short by an engine restart left a task behind: the container is made anew", { container: name, error: engineMessage(e) });
            recreated = await rt.recreate(name);
            return this.#startHoldingPorts(name, before);
          });
          if (held) return { ok: false, error: held };
        }
        // a container with a health check counts as started once healthy
        const health = await rt.waitHealthy(name, this.#o.healthTimeoutMs);
        if (health.status === "unhealthy" || health.status === "timeout") {
          const what = health.status === "unhealthy" ? `is unhealthy: health check "${health.check}" failed ${health.failures} time${health.failures === 1 ? "" : "s"}` : `did not become healthy in time: health check "${health.check}"`;
          return { ok: false, error: `container ${name} ${what}${health.output ? ` (${health.output.slice(0, 200)})` : ""}` };
        }
        const after = (await rt.inspect(name)) ?? before;
        // routed ports: in the rotation before the step reports, so an old container is stopped only once this one serves
        const routed = parseRoutes(after.labels[L.routes]);
        if (routed.length > 0) await this.#o.router?.refresh();
        const ports = [...after.ports, ...routed.map((r) => ({ target: r.target, published: r.published, host_ip: r.hostIp ?? "0.0.0.0", protocol: "tcp" as const }))];
        return { ok: true, ...(before.running ? { alreadyDone: true } : {}), ...(recreated ? { containerId: recreated } : {}), ports, ...(after.ip ? { ip: after.ip } : {}), ...(health.status === "healthy" ? { health: "healthy" as const } : {}) };
      }
      case "stop": {
        const before = await rt.inspect(name);
        const refused = before && notOurs(step, before);
        if (refused) return { ok: false, error: refused };
        if (!before?.running) return { ok: true, alreadyDone: true };
        if (before.labels[L.routes]) await this.#o.router?.drain(before.id);
        await rt.stop(name, this.#o.stopGraceSeconds);
        return { ok: true };
      }
      case "rename": {
        const to = step.renameTo ?? "";
        const [from, target] = [await rt.inspect(name), await rt.inspect(to)];
        const refused = (from && notOurs(step, from)) || (target && notOurs(step, target));
        if (refused) return { ok: false, error: refused };
        if (!from && target) return { ok: true, alreadyDone: true }; // renamed before: a redelivery
        if (!from) return { ok: false, error: `container ${name} does not exist` };
        if (target) return { ok: false, error: `cannot rename ${name} to ${to}: the name is taken` };
        await rt.rename(name, to);
        return { ok: true };
      }
      case "remove-volume":
        return (await rt.removeVolume(step.service)) ? { ok: true } : { ok: true, alreadyDone: true };
      case "remove": {
        const existing = await rt.inspect(name);
        const refused = existing && notOurs(step, existing);
        if (refused) return { ok: false, error: refused };
        const createdBy = existing?.labels[L.step];
        if (existing?.running && existing.labels[L.routes]) await this.#o.router?.drain(existing.id);
        const removed = await rt.remove(name);
        if (this.#o.secretsDir && createdBy) await rm(join(this.#o.secretsDir, secretFolder(createdBy)), { recursive: true, force: true });
        // only a stack's removal takes its network: an upgrade's removals run beside creates that need it
        if (step.dropNetwork && (await rt.listByLabel(L.stack, step.stack)).length === 0) await rt.removeNetworkIfUnused(stackNetwork(step.stack));
        return { ok: true, ...(removed ? {} : { alreadyDone: true }) };
      }
      case "run": {
        // a scheduled job's run: a one-shot container, made, started, waited for, removed; its exit code reported
        // the run's container is its own: made by this very step (the create below labels it with the run's id)
        const own = { ...step, createdBy: step.id };
        let found = await rt.inspect(name);
        const refused = found && notOurs(own, found);
        if (refused) return { ok: false, error: refused };
        if (!found) {
          await this.#ensureImage(step, false);
          const created = await this.#execute({ ...step, action: "create" });
          if (!created.ok) return created;
          found = await rt.inspect(name);
        }
        if (found?.status === "created") await rt.start(name); // a redelivery finds a finished run and only collects it
        const exitCode = await rt.wait(name);
        await this.#execute({ ...own, action: "remove" });
        return { ok: true, exitCode };
      }
      default: {
        const never: never = step.action;
        return never;
      }
    }
  }
}

export interface AgentLoopOptions {
  runner: StepRunner;
  /** Logs and exec sessions; without it, session messages are dropped. */
  sessions?: SessionRunner;
  sqs: SQSClient;
  queueUrl: string;
  /** This host: steps addressed to any other host are refused. */
  hostId: string;
  /** Checks the control plane's signature, the addressee and the expiry of every message, and refuses replays. */
  opener: Opener;
  signal: AbortSignal;
  /** Receive loops in parallel: steps of different stacks do not wait for each other. */
  concurrency?: number;
  visibilitySeconds?: number;
  log?: Logger;
}

/** Only the control plane tells this host what to run, and only what it addressed to this host. */
export function authorizeHostMessage(hostId: string, m: Received<HostMessage>): string | undefined {
  if (m.by !== CONTROL) return `${m.by ?? "an unsigned sender"} may not send steps or sessions`;
  if (m.body.kind === "step" && m.body.step.host !== hostId) return `step ${m.body.step.id} is for host ${m.body.step.host}, not ${hostId}`;
  return undefined;
}

/** Long-poll the host's queue and run what arrives. */
export async function runAgentLoop(options: AgentLoopOptions): Promise<void> {
  const { runner, sqs, queueUrl, signal } = options;
  const visibility = options.visibilitySeconds ?? 30;
  const handle = async (all: Received<HostMessage>[]) => {
    // sessions run beside the steps, for as long as they last: their messages are done once started
    for (const m of all) if (m.body.kind === "session") options.sessions?.handle(m.body);
    const batch = all.filter((m): m is Received<StepMessage> => m.body.kind === "step");
    // keep the batch invisible to others while it runs (a long pull)
    const keepAlive = setInterval(() => {
      for (const m of batch) extendVisibility(sqs, queueUrl, m.receiptHandle, visibility).catch(() => {});
    }, (visibility * 1000) / 2);
    try {
      const results = await Promise.allSettled(batch.map((m) => runner.handle(m.body)));
      return { failed: batch.filter((_, i) => results[i]?.status === "rejected").map((m) => m.messageId) };
    } finally {
      clearInterval(keepAlive);
    }
  };
  const loops = Array.from({ length: options.concurrency ?? 4 }, () =>
    receiveLoop({
      sqs,
      queueUrl,
      schema: hostMessageSchema,
      opener: options.opener,
      authorize: (m) => authorizeHostMessage(options.hostId, m),
      signal,
      waitSeconds: 10,
      handle,
      onError: (e) => options.log?.error("host queue", { error: String(e) }),
      onRefused: (r) => options.log?.error("host queue: message refused", { message: r.messageId, reason: r.reason }),
    }),
  );
  await Promise.all(loops);
}

/**
 * Reports go to the control queue, in their step's group, deduplicated by step
 * and attempt. Reports that come within a few milliseconds of each other (the
 * removals of a confirm, the starts of a batch) go out in one batch, so that
 * the controller folds them into one commit.
 */
export function queueReporter(sender: QueueSender, controlQueueUrl: string, lingerMs = 3): (report: StepReport, attempt: number, group: string) => Promise<void> {
  let pending: Array<{ message: OutgoingMessage; done: (e?: unknown) => void }> = [];
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    timer = undefined;
    const batch = pending;
    pending = [];
    sender.send(controlQueueUrl, batch.map((p) => p.message)).then(
      () => batch.forEach((p) => p.done()),
      (e: unknown) => batch.forEach((p) => p.done(e)),
    );
  };
  // the group is the step's slot, not the whole stack: the reports of a stack's slots are delivered side by side
  // (a FIFO group yields its messages one at a time), and the controller folds a batch of them into one commit
  return (report, attempt, group) =>
    new Promise<void>((resolve, reject) => {
      const message = { body: report, group, dedupId: `${report.stepId}#${attempt}#${report.ok ? "ok" : "failed"}`, to: CONTROL };
      pending.push({ message, done: (e) => (e ? reject(e instanceof Error ? e : new Error(String(e))) : resolve()) });
      if (pending.length >= 10) {
        clearTimeout(timer);
        flush();
      } else timer ??= setTimeout(flush, lingerMs);
    });
}
