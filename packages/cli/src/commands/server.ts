import { isIP } from "node:net";
import { homedir } from "node:os";
import { resolve } from "node:path";
import { Option, type Command } from "commander";
import { parseDuration } from "@corral/core/light";
import { CliError } from "../client.js";
import { readText } from "../compose.js";
import { verb, type Ctx } from "./context.js";
import { waitForSignal } from "./signals.js";

interface ServerOptions {
  port: number;
  listen?: string;
  data: string;
  agent: boolean;
  hostId?: string;
  policy?: string;
  hostTimeout: number;
  kmsKeyId?: string;
  logLevel: "debug" | "info" | "error";
}

/** `--port`: a TCP port, 0 for any free one. */
function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new CliError(`--port: expected a port number (0-65535), got "${value}"`);
  return n;
}

export function logLevel(value: string): "debug" | "info" | "error" {
  if (value === "debug" || value === "info" || value === "error") return value;
  throw new CliError(`log level "${value}": expected debug, info or error (CORRAL_LOG_LEVEL)`);
}

function hostTimeout(v: string): number {
  const ms = parseDuration(v);
  if (ms === undefined || ms < 1000 || ms > 24 * 3_600_000) throw new CliError(`--host-timeout: expected a duration from 1s to 24h (e.g. 30s, 2m), got "${v}"`);
  return ms;
}

async function loadPolicy(file: string) {
  const text = readText(file);
  if (text === undefined) throw new CliError(`${file}: no such file`);
  // (loaded here, not with the CLI: a client verb needs neither)
  const [{ parse: parseYaml }, { sitePolicySchema }] = await Promise.all([import("yaml"), import("@corral/core")]);
  const parsed = sitePolicySchema.safeParse(parseYaml(text) ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = issue.code === "unrecognized_keys" ? issue.keys[0] : issue.path.join(".");
    const why = issue.code === "unrecognized_keys" ? "not a policy key (keys: registries, bindRoots, capAdd, portRange, publicPorts, environment, domain)" : issue.message;
    throw new CliError(`${file}: ${key}: ${why}`);
  }
  return parsed.data;
}

/** `corral server`: the embedded control plane and a local agent, until Ctrl-C. */
export function serverCommand(ctx: Ctx): Command {
  const listenHelp = "the address the API listens on (default 127.0.0.1, this machine only; agents on other machines need an address they reach)";
  return verb(ctx, "server")
    .description("embedded control plane (DynamoDB and SQS stand-ins, API, controller) and a local agent; Ctrl-C stops it")
    .option("--port <port>", "API port (0: any free one)", (v) => port(v), 8080)
    .option("--listen <ip>", listenHelp, (v) => {
      if (isIP(v) === 0) throw new CliError(`--listen: expected an IP address, got "${v}"`);
      return v;
    })
    .option("--data <dir>", "state directory (default: CORRAL_DATA or ~/.corral)", process.env.CORRAL_DATA ?? resolve(homedir(), ".corral"))
    .option("--no-agent", "do not run a local agent")
    .option("--host-id <id>", "id of the local agent's host (default: this machine's hostname)")
    .option("--policy <file>", "site policy (YAML: registries, bindRoots, capAdd, portRange, publicPorts, environment, domain)")
    .option("--host-timeout <duration>", "a host not heard from for this long is disconnected: nothing new is placed on it (e.g. 30s, 2m)", hostTimeout, 30_000)
    .option("--kms-key-id <id>", "seal secrets under this AWS KMS key instead of DATA/master.key (default: CORRAL_KMS_KEY_ID)", process.env.CORRAL_KMS_KEY_ID)
    .addOption(
      new Option("--log-level <level>", "debug adds the routine (heartbeats, polls) to what info shows (default: CORRAL_LOG_LEVEL or info)")
        .choices(["debug", "info", "warn", "error"])
        .default(process.env.CORRAL_LOG_LEVEL ?? "info"),
    )
    .action(async (opts: ServerOptions) => {
      const { startServer, stderrLogger } = await import("@corral/local");
      const env = process.env;
      const policy = opts.policy ? await loadPolicy(opts.policy) : undefined;
      const server = await startServer({
        ...(policy ? { policy } : {}),
        port: opts.port,
        ...(opts.listen ? { listen: opts.listen } : {}),
        dataDir: resolve(opts.data),
        agent: opts.agent,
        ...(opts.hostId ? { hostId: opts.hostId } : {}),
        hostTimeoutMs: opts.hostTimeout,
        ...(opts.kmsKeyId ? { kmsKeyId: opts.kmsKeyId } : {}),
        ...(env.DOCKER_HOST ? { dockerHost: env.DOCKER_HOST } : {}),
        ...(env.CORRAL_VISIBILITY_SECONDS ? { visibilitySeconds: Number(env.CORRAL_VISIBILITY_SECONDS) } : {}),
        ...(env.CORRAL_RESEND_MS ? { resendAfterMs: Number(env.CORRAL_RESEND_MS) } : {}),
        ...(env.CORRAL_TICK_MS ? { tickMs: Number(env.CORRAL_TICK_MS) } : {}),
        duplicateMessages: env.CORRAL_TEST_DUPLICATE_MESSAGES === "1",
        log: stderrLogger(logLevel(opts.logLevel)),
      });
      ctx.io.out(`corral server on ${server.url} (token in ${resolve(opts.data, "token")})`);
      const failed = await Promise.race([waitForSignal().then(() => undefined), server.failed]);
      if (failed !== undefined) throw new CliError(`corral server stopped by itself: ${failed}`);
      await server.stop();
      ctx.io.out("corral server stopped");
    });
}
