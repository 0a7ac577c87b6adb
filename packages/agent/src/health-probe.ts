/**
 * corral's own first probes of a container's health check. The engine runs
 * a check for the first time one `interval` after the start (Docker 20.10
 * ignores `start_interval`), so a service that serves 100 ms after its
 * start is held "starting" for a whole interval, and a rolling upgrade
 * waits that long per slot. Right after the start the agent runs the same
 * test in the container itself (as `docker exec` does), every `everyMs`,
 * until one passes (healthy: the step goes on at once, as the engine would
 * call it after that probe) or until `untilMs` after the start, when the
 * engine's own probes have begun. A failing probe of the agent's counts for
 * nothing: unhealthy stays the engine's verdict, after its `retries`.
 */
import type Docker from "dockerode";
import { waitExit } from "./docker-stream.js";

/** What the engine says of a container's health check (nanoseconds, as inspect gives them). */
export interface EngineHealthcheck {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
}

/** Docker's defaults for what a check leaves unset (ms). */
const DEFAULT_INTERVAL = 30_000;
const DEFAULT_TIMEOUT = 30_000;

export interface ProbePlan {
  /** the command to exec in the container */
  cmd: string[];
  /** pause between two of the agent's probes */
  everyMs: number;
  /** no probe of the agent's starts later than this after the start: the engine's own have begun */
  untilMs: number;
  /** a probe that has not answered in this long counts as failed */
  timeoutMs: number;
}

const ms = (ns: number | undefined, fallback: number) => (ns && ns > 0 ? ns / 1e6 : fallback);

/**
 * The agent's probes for a check, or undefined when it has none (no test,
 * NONE). CMD runs as written; CMD-SHELL through the container's shell
 * (Config.Shell, else /bin/sh -c), as the engine runs it. The cadence is
 * `start_interval` when written, else a fifth of the interval, between
 * 100 ms and 1 s.
 */
export function probePlan(hc: EngineHealthcheck | undefined, shell?: string[]): ProbePlan | undefined {
  const test = hc?.Test;
  if (!test || test.length === 0 || test[0] === "NONE") return undefined;
  const cmd = test[0] === "CMD" ? test.slice(1) : test[0] === "CMD-SHELL" ? [...(shell?.length ? shell : ["/bin/sh", "-c"]), test.slice(1).join(" ")] : test;
  if (cmd.length === 0 || cmd[0] === "") return undefined;
  const interval = ms(hc.Interval, DEFAULT_INTERVAL);
  const everyMs = hc.StartInterval ? ms(hc.StartInterval, 0) : Math.min(1_000, Math.max(100, interval / 5));
  return { cmd, everyMs, untilMs: ms(hc.StartPeriod, 0) + interval, timeoutMs: ms(hc.Timeout, DEFAULT_TIMEOUT) };
}

/**
 * Probe until one passes (true) or the plan's window closes or `settled`
 * says the engine has spoken (false). `probe` answers whether the test
 * exited 0; one that throws counts as failed.
 */
export async function probeUntilHealthy(
  plan: ProbePlan,
  probe: () => Promise<boolean>,
  settled: () => boolean,
  clock: () => number = Date.now,
  sleep: (ms: number) => Promise<void> = (t) => new Promise((r) => setTimeout(r, t)),
): Promise<boolean> {
  const end = clock() + plan.untilMs;
  while (!settled() && clock() < end) {
    if (await probe().catch(() => false)) return !settled();
    if (settled()) return false;
    await sleep(plan.everyMs);
  }
  return false;
}

/** At most `limit` of the agent's probes at once on an engine (a hundred containers starting together exec a few at a time). */
export class ProbeSlots {
  #free: number;
  readonly #waiting: Array<() => void> = [];
  constructor(limit: number) {
    this.#free = limit;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((r) => this.#waiting.push(r));
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

/** Run a health check's test in the container once, as the engine would: whether it exited 0 within its timeout. */
export async function execProbe(docker: Docker, id: string, plan: ProbePlan): Promise<boolean> {
  const exec = await docker.getContainer(id).exec({ Cmd: plan.cmd, AttachStdout: true, AttachStderr: true });
  const stream = (await exec.start({ hijack: true, stdin: false })) as NodeJS.ReadableStream & { destroy?: () => void };
  let timer: NodeJS.Timeout | undefined;
  const ended = await Promise.race([
    new Promise<boolean>((resolve) => {
      stream.on("end", () => resolve(true));
      stream.on("close", () => resolve(true));
      stream.on("error", () => resolve(false));
      stream.resume(); // its output is the engine's to keep (State.Health.Log), not the agent's
    }),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), plan.timeoutMs))),
  ]);
  clearTimeout(timer);
  if (!ended) {
    stream.destroy?.();
    return false;
  }
  return (await waitExit(() => exec.inspect(), 1)) === 0;
}
