import { createHash } from "node:crypto";
import { constants } from "node:fs";
import { lstat, open, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { labels as L, wantedAnswerSchema, type ExitedReport, type Logger, type WantedAnswer, type WantedContainer } from "@corral/core/host";
import { SECRET_OWNER_FILE, secretFolder, stackNetwork } from "./names.js";
import type { ContainerEvent, ContainerInfo, ContainerRuntime } from "./runtime.js";

/** A short fingerprint of the control plane's public key: the io.corral.control label of the containers its agents make. */
export const controlFingerprint = (controlKey: string) => createHash("sha256").update(controlKey).digest("hex").slice(0, 16);

export const DEFAULT_RECONCILE_MS = 30_000;
export const DEFAULT_ORPHAN_GRACE_MS = 60_000;

export interface ReconcileOptions {
  hostId: string;
  /** This agent's control plane (controlFingerprint): only its containers are this agent's to remove. */
  controlId: string;
  runtime: ContainerRuntime;
  /** Whether a step of this agent is acting on a container (by name) or a secret folder (`secrets:FOLDER`) right now. */
  acting: (key: string) => boolean;
  /** What the control plane wants on this host (GET /v1/hosts/:id/wanted); throws when it cannot be asked. */
  wanted: () => Promise<unknown>;
  /** Tell the control plane that a container it has running exited (a signed control message). */
  reportExit: (report: ExitedReport) => Promise<void>;
  /** Where secret files live, one folder per container (see StepRunner). */
  secretsDir?: string;
  /** How long a corral container nobody wants stays before it is removed (default 60 s). */
  graceMs?: number;
  clock?: () => number;
  /** How long after Docker's die event the container is looked at again before its exit is reported (default 2 s): an engine shutting down kills its containers, and is gone by then. */
  dieCheckMs?: number;
  /** After a start nobody here caused: a round in 3 s, and the second this much later (default 5 s). */
  recheckMs?: number;
  log?: Logger;
}

/** What a round did, for the log and for tests. */
export interface RoundOutcome {
  /** Why nothing was done this round (the engine or the control plane could not be asked). */
  skipped?: string;
  removed: string[];
  /** Wanted containers found exited and reported. */
  reported: string[];
  /** Containers the control plane has down, found running and stopped. */
  stopped: string[];
  /** Secret folders swept (their containers are gone). */
  swept: string[];
}

/** Docker's words for a container whose process has ended and that no restart policy is bringing back. */
const ended = (status: string | undefined) => status === "exited" || status === "dead";

/**
 * The agent's reconcile of its host against what the control plane wants of
 * it, on start and every interval:
 *
 * - a corral container (label io.corral.stack) that no stack wants, made by
 *   this host's agent for this control plane (io.corral.host, io.corral.control:
 *   agents of several hosts, or of several control planes, may share an
 *   engine), is remembered from the round it is first seen unwanted; once it
 *   has stayed unwanted past the grace period, and no step is acting on it,
 *   it is removed, and its secret folder with it;
 * - a container the control plane has running, found exited (no restart
 *   policy at work: Docker says `restarting` while one is) in two rounds
 *   running, the same exit, is reported (an engine starting again shows
 *   its containers exited until their restart policy starts them);
 * - a container the control plane has down (created, or stopped by a step),
 *   found running in two rounds running, with no step acting on it, is
 *   stopped: a restart policy brings a container back when its engine
 *   starts again, when a stop was cut short by the engine going down; a
 *   start event nobody here caused asks for those two rounds soon;
 * - secret folders of this host whose container is gone from the engine are
 *   removed.
 *
 * It never touches a container without corral's labels, and removes nothing
 * on missing information: a round in which the control plane cannot be asked
 * (or answers incompletely) removes nothing, and starts the grace afresh.
 */
export class Reconciler {
  readonly #o: ReconcileOptions & { graceMs: number; clock: () => number };
  /** Engine id → when it was first seen unwanted, in an unbroken run of rounds that could tell. */
  readonly #unwanted = new Map<string, number>();
  /**
   * Engine id → when it ended, for wanted containers found exited in the last round and not reported yet: an exit is
   * reported when the next round finds the same one (a restarting engine shows its containers exited for a moment
   * before their restart policy starts them again, and that is not an exit of theirs).
   */
  #exitedOnce = new Map<string, number | undefined>();
  /** Engine ids of containers the control plane has down found running in the last round: stopped if the next finds them so too. */
  #upOnce = new Set<string>();
  #soon: NodeJS.Timeout[] = [];
  #round: Promise<RoundOutcome> | undefined;

  constructor(options: ReconcileOptions) {
    this.#o = { graceMs: DEFAULT_ORPHAN_GRACE_MS, clock: Date.now, ...options };
  }

  #stopped = false;

  /** One round; a round asked for while one runs is that one. */
  round(): Promise<RoundOutcome> {
    if (this.#stopped) return Promise.resolve({ skipped: "stopped", removed: [], reported: [], stopped: [], swept: [] });
    this.#round ??= this.#run().finally(() => (this.#round = undefined));
    return this.#round;
  }

  /** No more rounds, nor reports of events; resolves once a round in flight is done. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#soon) clearTimeout(t);
    await this.#round?.catch(() => undefined);
  }

  /** Whether the container is this host's agent's, for this control plane: the only ones a reconcile may remove. */
  #ours(c: ContainerInfo): boolean {
    return c.labels[L.host] === this.#o.hostId && c.labels[L.control] === this.#o.controlId;
  }

  async #run(): Promise<RoundOutcome> {
    const { runtime, log } = this.#o;
    const outcome: RoundOutcome = { removed: [], reported: [], stopped: [], swept: [] };
    let engine: ContainerInfo[];
    try {
      engine = await runtime.listByLabel(L.stack);
    } catch (e) {
      log?.error("reconcile: cannot list the engine's containers; nothing done this round", { error: String(e) });
      return { ...outcome, skipped: "engine" };
    }
    // listed first, asked second: whatever the engine held was planned before the answer was made
    let answer: WantedAnswer | undefined;
    try {
      answer = wantedAnswerSchema.parse(await this.#o.wanted());
    } catch (e) {
      log?.warn?.("reconcile: cannot tell what the control plane wants on this host; nothing removed this round", { error: String(e) });
    }
    const now = this.#o.clock();
    const wanted = new Map<string, Map<string, WantedContainer>>();
    for (const s of answer?.stacks ?? []) wanted.set(s.stack, new Map(s.containers.map((c) => [c.name, c])));
    const mayRemove = answer?.complete === true;
    if (!mayRemove) this.#unwanted.clear();
    const present = new Set(engine.map((c) => c.id));
    for (const id of this.#unwanted.keys()) if (!present.has(id)) this.#unwanted.delete(id);
    const exitedBefore = this.#exitedOnce;
    this.#exitedOnce = new Map();
    const upBefore = this.#upOnce;
    this.#upOnce = new Set();
    const emptied = new Set<string>();
    for (const c of engine) {
      const stack = c.labels[L.stack];
      if (!stack) continue; // (the engine's filter says it has one)
      const w = wanted.get(stack)?.get(c.name);
      if (w) {
        this.#unwanted.delete(c.id);
        const exited = w.running && !c.running && ended(c.status) && (w.dockerId === undefined || w.dockerId === c.id);
        if (exited && (await this.#reportIfExited(stack, c.name, c.id, exitedBefore))) outcome.reported.push(c.name);
        const up = w.stopped && c.running && (w.dockerId === undefined || w.dockerId === c.id) && !this.#o.acting(c.name);
        if (up && (await this.#stopIfStillUp(stack, c, upBefore))) outcome.stopped.push(c.name);
        continue;
      }
      if (!mayRemove || !this.#ours(c)) continue;
      const since = this.#unwanted.get(c.id) ?? now;
      this.#unwanted.set(c.id, since);
      if (now - since < this.#o.graceMs || this.#o.acting(c.name)) continue;
      try {
        await this.#removeOrphan(c, stack, now - since);
        this.#unwanted.delete(c.id);
        present.delete(c.id);
        outcome.removed.push(c.name);
        emptied.add(stack);
      } catch (e) {
        log?.error("reconcile: could not remove an orphan container", { container: c.name, stack, error: String(e) });
      }
    }
    // a stack nobody wants here any more, its last container gone: its network too (unless another's container still uses it)
    for (const stack of emptied) {
      if (wanted.has(stack) || engine.some((c) => present.has(c.id) && c.labels[L.stack] === stack)) continue;
      await runtime.removeNetworkIfUnused(stackNetwork(stack)).catch((e: unknown) => log?.warn?.("reconcile: could not remove a network", { stack, error: String(e) }));
    }
    const folders = new Set(engine.filter((c) => present.has(c.id) && c.labels[L.step]).map((c) => secretFolder(c.labels[L.step]!)));
    outcome.swept = await this.#sweepSecrets(folders, now);
    return outcome;
  }

  /** Stop a container the control plane has down, found running a second round in a row (true when stopped). */
  async #stopIfStillUp(stack: string, c: ContainerInfo, seenBefore: Set<string>): Promise<boolean> {
    this.#upOnce.add(c.id);
    if (!seenBefore.has(c.id)) return false;
    try {
      if (this.#o.acting(c.name)) return false;
      await this.#o.runtime.stop(c.id);
      this.#upOnce.delete(c.id);
      this.#o.log?.info(`stopped container ${c.name} of stack ${stack}: the control plane has it stopped (a restart policy had started it again)`, { id: c.id.slice(0, 12) });
      return true;
    } catch (e) {
      this.#o.log?.error("reconcile: could not stop a container the control plane has stopped", { container: c.name, stack, error: String(e) });
      return false;
    }
  }

  async #removeOrphan(c: ContainerInfo, stack: string, unwantedMs: number): Promise<void> {
    // by engine id: a container made since under the same name is another one
    await this.#o.runtime.remove(c.id);
    const step = c.labels[L.step];
    if (this.#o.secretsDir && step) await rm(join(this.#o.secretsDir, secretFolder(step)), { recursive: true, force: true });
    this.#o.log?.info(`removed orphan container ${c.name} of stack ${stack} (not wanted by the control plane for ${Math.round(unwantedMs / 1000)}s)`, { id: c.id.slice(0, 12) });
  }

  /**
   * Report a container whose process has ended, unless a step is acting on
   * it (corral stopping or removing it says so itself) or a restart policy
   * is bringing it back (inspect, now, says `restarting`). True when reported.
   */
  async #reportIfExited(stack: string, name: string, id: string, seenBefore: Map<string, number | undefined> | "confirmed"): Promise<boolean> {
    if (this.#o.acting(name)) return false;
    const info = await this.#o.runtime.inspect(id).catch(() => undefined);
    // (renamed since, an upgrade's previous container: it is known by its new name now, and stopped by a step)
    if (!info || info.id !== id || info.name !== name || info.running || !ended(info.status) || this.#o.acting(name)) return false;
    // seen ended once: the next round reports it if it is still the same exit
    if (seenBefore !== "confirmed") {
      this.#exitedOnce.set(id, info.finishedAt);
      if (!seenBefore.has(id) || seenBefore.get(id) !== info.finishedAt) return false;
    }
    const at = Math.max(0, Math.round(info.finishedAt ?? this.#o.clock()));
    const report: ExitedReport = { kind: "exited", stack, host: this.#o.hostId, container: name, dockerId: id, exitCode: info.exitCode ?? -1, at };
    try {
      await this.#o.reportExit(report);
      this.#o.log?.info("container exited", { container: name, stack, exitCode: report.exitCode });
      return true;
    } catch (e) {
      this.#o.log?.error("reconcile: could not report an exited container", { container: name, error: String(e) });
      return false;
    }
  }

  /**
   * Docker's events: a corral container whose process died, not by a step of
   * this agent's, is reported at once (the control plane records it only for
   * a container it has running there, with that engine id).
   */
  onContainerEvent(e: ContainerEvent): void {
    const stack = e.labels[L.stack];
    if (this.#stopped || (e.action !== "die" && e.action !== "start") || !stack || !e.id) return;
    const host = e.labels[L.host];
    if (host !== undefined && host !== this.#o.hostId) return; // another host's agent, on a shared engine, says it
    if (e.action === "start") {
      // started by nobody here (a restart policy, an engine starting again): two rounds soon tell whether it is to be up
      if (this.#o.acting(e.name) || this.#soon.length > 0) return;
      const round = () => void this.round().catch(() => undefined);
      const second = () => {
        this.#soon = []; // (the next start nobody caused asks again)
        round();
      };
      this.#soon = [setTimeout(round, 3000).unref(), setTimeout(second, 3000 + (this.#o.recheckMs ?? 5000)).unref()];
      return;
    }
    // looked at again a moment later: an engine going down kills its containers too, and cannot be asked by then
    const id = e.id;
    setTimeout(() => void (!this.#stopped && this.#reportIfExited(stack, e.name, id, "confirmed")), this.#o.dieCheckMs ?? 2000).unref();
  }

  /**
   * Remove the secret folders of this host whose container is gone from the
   * engine (a removal by hand, a create that failed after writing them):
   * only folders this host's agent wrote (their owner file says so), older
   * than the grace period, that no step is writing.
   */
  async #sweepSecrets(keep: Set<string>, now: number): Promise<string[]> {
    const dir = this.#o.secretsDir;
    if (!dir) return [];
    const swept: string[] = [];
    try {
      const st = await lstat(dir).catch(() => undefined);
      const uid = process.geteuid?.() ?? 0;
      if (!st || st.isSymbolicLink() || !st.isDirectory() || st.uid !== uid) return [];
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        if (!entry.isDirectory() || keep.has(entry.name) || this.#o.acting(`secrets:${entry.name}`)) continue;
        const folder = join(dir, entry.name);
        const info = await lstat(folder).catch(() => undefined);
        if (!info?.isDirectory() || now - info.mtimeMs < this.#o.graceMs) continue;
        if ((await ownerOf(join(folder, SECRET_OWNER_FILE))) !== this.#o.hostId) continue;
        if (this.#o.acting(`secrets:${entry.name}`)) continue;
        await rm(folder, { recursive: true, force: true });
        swept.push(entry.name);
        this.#o.log?.info("removed the secret files of a container gone from the engine", { folder: entry.name });
      }
    } catch (e) {
      this.#o.log?.warn?.("reconcile: could not sweep the secrets folder", { error: String(e) });
    }
    return swept;
  }
}

/** The host named in a secret folder's owner file (never through a symlink), or undefined. */
async function ownerOf(file: string): Promise<string | undefined> {
  try {
    const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      return (await handle.readFile({ encoding: "utf8" })).slice(0, 100).trim();
    } finally {
      await handle.close();
    }
  } catch {
    return undefined;
  }
}

export interface RunningReconcile {
  reconciler: Reconciler;
  stop(): Promise<void>;
}

/** A reconcile at once, then every `intervalMs` (default 30 s), until stopped (which waits for a round in flight). */
export function startReconcile(options: ReconcileOptions & { intervalMs?: number }): RunningReconcile {
  const reconciler = new Reconciler(options);
  const round = () => void reconciler.round().catch((e: unknown) => options.log?.error("reconcile failed", { error: String(e) }));
  round();
  const timer = setInterval(round, options.intervalMs ?? DEFAULT_RECONCILE_MS);
  timer.unref?.();
  return {
    reconciler,
    async stop() {
      clearInterval(timer);
      await reconciler.stop();
    },
  };
}
