import { faultPoint } from "@corral/queue";
import { labels as L, parseRoutes } from "@corral/core/host";
import { engineMessage, staleTask } from "../engine-errors.js";
import type { AgentOptions } from "../options.js";
import type { ContainerInfo, HealthOutcome } from "../runtime.js";
import { notOurs } from "./ownership.js";
import type { Outcome, StepHandler } from "./types.js";

/** The engine's words for a published host port another socket holds. */
const portInUse = /address already in use|port is already allocated/i;

/**
 * Start a container, again after a pause while the engine says one of its
 * host ports is in use; undefined once started, else why not, naming the
 * port and this host. Any other failure is thrown as it came.
 */
async function startHoldingPorts(name: string, info: ContainerInfo, o: AgentOptions): Promise<string | undefined> {
  const { attempts, delayMs } = o.portRetry ?? { attempts: 5, delayMs: 250 };
  for (let attempt = 1; ; attempt++) {
    try {
      await o.runtime.start(name);
      return undefined;
    } catch (e) {
      const message = engineMessage(e);
      if (!portInUse.test(message)) throw e;
      if (attempt >= attempts) {
        const port = /(?:listen \w+ |Bind for )\S*:(\d+)/.exec(message)?.[1] ?? info.ports.map((p) => p.published).join(", ");
        return `host port ${port || "(unknown)"} is in use on ${o.hostId}: ${message} (tried ${attempts} times)`;
      }
      o.log?.info("host port in use, starting again shortly", { container: name, attempt, error: message });
      await new Promise((r) => setTimeout(r, delayMs * 2 ** (attempt - 1)));
    }
  }
}

/** A health check's verdict other than healthy, as the step's error. */
function unhealthyError(name: string, health: Extract<HealthOutcome, { status: "unhealthy" | "timeout" }>): Outcome {
  const what =
    health.status === "unhealthy"
      ? `is unhealthy: health check "${health.check}" failed ${health.failures} time${health.failures === 1 ? "" : "s"}`
      : `did not become healthy in time: health check "${health.check}"`;
  return { ok: false, error: `container ${name} ${what}${health.output ? ` (${health.output.slice(0, 200)})` : ""}` };
}

/** Start the container (one running already is done) and wait for its health check; its ports and address reported. */
export const start: StepHandler<"start"> = async (step, { options: o }) => {
  const rt = o.runtime;
  const name = step.container ?? "";
  const before = await rt.inspect(name);
  if (!before) return { ok: false, error: `container ${name} does not exist` };
  const refused = notOurs(step, before);
  if (refused) return { ok: false, error: refused };
  let recreated: string | undefined;
  if (!before.running) {
    const held = await startHoldingPorts(name, before, o).catch(async (e: unknown) => {
      if (!staleTask(e)) throw e;
      // a dockerd stopped while it started this container left containerd a task no start replaces (a first start,
      // or a rollback's old container started again): the container is made anew with its own configuration,
      // labels, mounts and address (a new id, reported); what it wrote outside its volumes goes with the old one
      const ran = before.status !== "created" ? " (it had run before: what it wrote outside its volumes is gone)" : "";
      o.log?.warn?.(`a start cut short by an engine restart left a task behind: the container is made anew${ran}`, { container: name, error: engineMessage(e) });
      recreated = await rt.recreate(name);
      return startHoldingPorts(name, before, o);
    });
    if (held) return { ok: false, error: held };
  }
  // a container with a health check counts as started once healthy
  faultPoint(`health:${step.service}`);
  const health = await rt.waitHealthy(name, o.healthTimeoutMs);
  if (health.status === "unhealthy" || health.status === "timeout") return unhealthyError(name, health);
  const after = (await rt.inspect(name)) ?? before;
  // routed ports: in the rotation before the step reports, so an old container is stopped only once this one serves
  const routed = parseRoutes(after.labels[L.routes]);
  if (routed.length > 0) await o.router?.refresh();
  const ports = [...after.ports, ...routed.map((r) => ({ target: r.target, published: r.published, host_ip: r.hostIp ?? "0.0.0.0", protocol: "tcp" as const }))];
  return {
    ok: true,
    ...(before.running ? { alreadyDone: true } : {}),
    ...(recreated ? { containerId: recreated } : {}),
    ports,
    ...(after.ip ? { ip: after.ip } : {}),
    ...(health.status === "healthy" ? { health: "healthy" as const } : {}),
  };
};
