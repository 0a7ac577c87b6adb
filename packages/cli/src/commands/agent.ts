import { isIP } from "node:net";
import type { Command } from "commander";
import { CliError, clientConfig } from "../client.js";
import { verb, type Ctx } from "./context.js";
import { logLevel } from "./server.js";
import { waitForSignal } from "./signals.js";

interface AgentOptions {
  hostId?: string;
  join?: string;
  token?: string;
  dockerHost?: string;
  address?: string;
  stateDir?: string;
  overlay?: string;
}

const help = {
  address: "the IP users reach this host's published ports on (default: the Docker host's IP for tcp://, else this machine's first non-loopback IPv4)",
  overlay:
    "the stack networks across hosts (VXLAN, corral's name servers): on, off, or auto (default, or CORRAL_OVERLAY): " +
    "on when run as root with iproute2 and iptables and the host's --address is this machine's",
  stateDir:
    "where the agent keeps its host credentials, to start again without a join token (default: CORRAL_AGENT_STATE, else /var/lib/corral/agent for root, ~/.local/state/corral/agent for others)",
};

/** `corral agent`: a host agent, until Ctrl-C or until its host is removed. */
export function agentCommand(ctx: Ctx): Command {
  return verb(ctx, "agent")
    .description("a host agent: runs steps from its queue on this host's Docker engine")
    .option("--host-id <id>", "this host's id (default: the one its join token was made for)")
    .option("--join <url>", "the control plane's URL (with --token: a join token from 'corral host add')")
    .option("--token <token>", "a one-time join token (default: CORRAL_TOKEN)")
    .option("--docker-host <url>", "Docker engine (default: DOCKER_HOST or the local socket)")
    .option("--address <ip>", help.address, (v) => {
      if (isIP(v) === 0) throw new CliError(`--address: expected an IP address, got "${v}"`);
      return v;
    })
    .option("--overlay <mode>", help.overlay, (v) => {
      if (!["on", "off", "auto"].includes(v)) throw new CliError(`--overlay: expected on, off or auto, got "${v.slice(0, 40)}"`);
      return v;
    })
    .option("--state-dir <dir>", help.stateDir)
    .action((opts: AgentOptions) => runAgent(ctx, opts));
}

async function runAgent(ctx: Ctx, opts: AgentOptions): Promise<void> {
  // CORRAL_OVERLAY: 1/on, 0/off, auto
  const fromEnv = { "1": "on", "0": "off", on: "on", off: "off", auto: "auto" }[process.env.CORRAL_OVERLAY ?? ""];
  if (process.env.CORRAL_OVERLAY && !fromEnv) throw new CliError(`CORRAL_OVERLAY: expected on, off, auto, 1 or 0, got "${process.env.CORRAL_OVERLAY.slice(0, 40)}"`);
  const overlayMode = opts.overlay ?? fromEnv ?? "auto";
  const { CredentialStore, defaultStateDir, startAgent } = await import("@corral/agent");
  const { lineLogger } = await import("@corral/core/host");
  const credentials = new CredentialStore(opts.stateDir ?? process.env.CORRAL_AGENT_STATE ?? defaultStateDir());
  const url = (opts.join ?? process.env.CORRAL_URL ?? "http://127.0.0.1:8080").replace(/\/$/, "");
  // a token given wins; else the host token this agent saved when it joined; else the CLI's own (CORRAL_TOKEN, the server's token file)
  const saved = opts.token
    ? undefined
    : await credentials.load(url, opts.hostId).catch((e: unknown) => {
        throw new CliError((e as Error).message);
      });
  const config = opts.token ? { url, token: opts.token } : saved ? { url, token: saved.hostToken } : { ...clientConfig(), url };
  const hostId = opts.hostId ?? saved?.hostId ?? /^join\.([a-zA-Z0-9][a-zA-Z0-9_-]{0,62})\./.exec(config.token)?.[1];
  if (!hostId) throw new CliError("corral agent needs --host-id ID, or a join token from 'corral host add ID' (--join URL --token T)");
  const dockerHost = opts.dockerHost ?? process.env.DOCKER_HOST;
  const agent = await startAgent({
    hostId,
    apiUrl: config.url,
    token: config.token,
    credentials,
    tokenIsSaved: saved !== undefined,
    overlay: overlayMode === "auto" ? "auto" : overlayMode === "on",
    ...(dockerHost ? { dockerHost } : {}),
    ...(opts.address ? { address: opts.address } : {}),
    duplicateMessages: process.env.CORRAL_TEST_DUPLICATE_MESSAGES === "1",
    // (the logger is core's: @corral/local would load the stand-ins, dynalite and fauxqs, into every agent)
    log: lineLogger(logLevel(process.env.CORRAL_LOG_LEVEL ?? "info"), (l) => void process.stderr.write(l)),
  });
  ctx.io.out(`corral agent ${agent.hostId} connected to ${config.url}`);
  const ended = await Promise.race([waitForSignal().then(() => undefined), agent.ended]);
  await agent.stop();
  if (ended) throw new CliError(ended); // removed from the control plane: nothing more to do here
  ctx.io.out("corral agent stopped");
}
