import { randomUUID } from "node:crypto";
import { isIP } from "node:net";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { Command, Option } from "commander";
import { parse as parseYaml } from "yaml";
import {
  ago,
  ComposeError,
  parseComposeYaml,
  parseDuration,
  parseHostLabel,
  resolveComposeFiles,
  sitePolicySchema,
  type ComposeIssue,
  type ContainerRow,
  type HistoryLife,
  type HistoryRow,
  type NamedDocument,
  type ServiceRow,
} from "@corral/core";
import { ApiClient, CliError, clientConfig } from "./client.js";
import { processRawOut, runSession, sinceSeconds, streamEvents, type StreamedEvent } from "./sessions.js";
import { ExitError, follow, printIssues, printList, printTable, readStdin, seg, type Out } from "./output.js";
import { addServiceCommands } from "./commands/service.js";
import { addHookCommands } from "./commands/hook.js";
import { addChatCommands } from "./commands/chat.js";

/** Read standard input to its end, refusing more than `limit` bytes (a password is small; a stray pipe of a file is not one). */
/** A password is at most 16 KiB (the API's bound); a byte more is refused before anything is sent. */
const PASSWORD_STDIN_LIMIT = 16 * 1024 + 2;

const defaultOut: Out = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  raw: processRawOut,
};

/** A host as `GET /v1/hosts` answers: a user sees id, name and state only. */
interface HostRow {
  id: string;
  name: string;
  state: string;
  address?: string;
  labels?: Record<string, string>;
  containers?: number;
  lastSeen?: string;
}

/** Labels as `k=v,k2=v2`, by key. */
const showLabels = (labels: Record<string, string>) =>
  Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(",");

/** The version in the CLI's package.json. */
export function cliVersion(): string {
  return (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;
}

/** The stack name from a folder name, as Rancher did: lower case, other characters as '-'. */
export function stackNameFromDir(dir: string): string {
  return basename(dir).toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "") || "default";
}

interface UpOptions {
  detach?: boolean;
  stack?: string;
  file?: string[];
  rancherFile?: string;
  render?: boolean;
  upgrade?: boolean;
  forceUpgrade?: boolean;
  confirmUpgrade?: boolean;
  rollback?: boolean;
  toRevision?: number;
  batchSize?: number;
  interval?: number;
  startFirst?: boolean;
  autoConfirm?: number;
  pull?: boolean;
  dryRun?: boolean;
}

/** `--port`: a TCP port, 0 for any free one. */
function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new CliError(`--port: expected a port number (0-65535), got "${value}"`);
  return n;
}

function logLevel(value: string): "debug" | "info" | "error" {
  if (value === "debug" || value === "info" || value === "error") return value;
  throw new CliError(`log level "${value}": expected debug, info or error (CORRAL_LOG_LEVEL)`);
}

function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`${flag}: expected a positive whole number, got "${value}"`);
  return n;
}

/** The compose file in this folder, if there is one (confirm and rollback do without). */
function defaultComposeFile(): string[] {
  for (const f of ["docker-compose.yml", "docker-compose.yaml", "compose.yaml", "compose.yml"]) if (existsSync(f)) return [f];
  return [];
}

const composeNames = ["docker-compose.yml", "docker-compose.yaml", "compose.yaml", "compose.yml"];

function composeFiles(files: string[] | undefined): string[] {
  if (files && files.length > 0) return files;
  for (const f of composeNames) if (existsSync(f)) return [f];
  throw new CliError("no compose file: pass -f FILE, or run in a folder with a docker-compose.yml");
}

/** `-f DIR` names the compose file in that folder (the Spin lessons keep one example per folder); its rancher-compose.yml is found beside it. */
function composeFileIn(path: string): string {
  if (!existsSync(path) || !statSync(path).isDirectory()) return path;
  const found = composeNames.map((f) => join(path, f)).find((f) => existsSync(f));
  if (!found) throw new CliError(`${path}: a folder with no compose file in it (looked for ${composeNames.join(", ")})`);
  return found;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

/** Read, interpolate and resolve the compose files here, where the environment is; the API gets documents only. */
export function loadComposeFiles(given: string[], rancherFile: string | undefined, env = process.env): { files: NamedDocument[]; rancher?: NamedDocument } {
  const files = given.map(composeFileIn);
  const sources = files.map((name) => {
    const text = readText(name);
    if (text === undefined) throw new CliError(`${name}: no such file`);
    return { name: basename(name), path: resolve(name), text };
  });
  const documents = resolveComposeFiles({ files: sources, env, home: homedir(), readFile: readText });
  const rancherPath = rancherFile ?? join(dirname(resolve(files[0]!)), "rancher-compose.yml");
  const rancherText = readText(rancherPath);
  if (rancherFile && rancherText === undefined) throw new CliError(`${rancherFile}: no such file`);
  if (rancherText === undefined) return { files: documents };
  return { files: documents, rancher: { name: basename(rancherPath), document: parseComposeYaml(rancherText, basename(rancherPath)) } };
}

/** Top-level secrets whose value the CLI holds: a file, or a variable of its environment. */
function secretSources(files: NamedDocument[], env = process.env): Array<{ name: string; from: string; read: () => Buffer }> {
  const out = new Map<string, { name: string; from: string; read: () => Buffer }>();
  for (const f of files) {
    const secrets = (f.document as { secrets?: Record<string, { name?: string; file?: string; environment?: string } | null> } | null)?.secrets ?? {};
    for (const [key, s] of Object.entries(secrets)) {
      const name = s?.name ?? key;
      if (s?.file) {
        const path = s.file;
        out.set(name, { name, from: `file ${path}`, read: () => readFileSync(path) });
      } else if (s?.environment) {
        const variable = s.environment;
        out.set(name, {
          name,
          from: `variable ${variable}`,
          read: () => {
            const v = env[variable];
            if (v === undefined) throw new CliError(`${f.name}: secrets.${key}.environment: variable ${variable} is not set`);
            return Buffer.from(v);
          },
        });
      }
    }
  }
  return [...out.values()];
}

export function buildProgram(io: Out = defaultOut): Command {
  const program = new Command("corral")
    .description("Run Docker Compose stacks on a fleet of Docker hosts")
    .version(cliVersion(), "-V, --version", "print corral's version")
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .exitOverride();
  const api = () => new ApiClient(clientConfig());

  program
    .command("server")
    .description("embedded control plane (DynamoDB and SQS stand-ins, API, controller) and a local agent; Ctrl-C stops it")
    .option("--port <port>", "API port (0: any free one)", (v) => port(v), 8080)
    .option("--listen <ip>", "the address the API listens on (default 127.0.0.1, this machine only; agents on other machines need an address they reach)", (v) => {
      if (isIP(v) === 0) throw new CliError(`--listen: expected an IP address, got "${v}"`);
      return v;
    })
    .option("--data <dir>", "state directory (default: CORRAL_DATA or ~/.corral)", process.env.CORRAL_DATA ?? resolve(homedir(), ".corral"))
    .option("--no-agent", "do not run a local agent")
    .option("--host-id <id>", "id of the local agent's host (default: this machine's hostname)")
    .option("--policy <file>", "site policy (YAML: registries, bindRoots, capAdd, portRange, publicPorts, environment, domain)")
    .option("--host-timeout <duration>", "a host not heard from for this long is disconnected: nothing new is placed on it (e.g. 30s, 2m)", (v) => {
      const ms = parseDuration(v);
      if (ms === undefined || ms < 1000 || ms > 24 * 3_600_000) throw new CliError(`--host-timeout: expected a duration from 1s to 24h (e.g. 30s, 2m), got "${v}"`);
      return ms;
    }, 30_000)
    .option("--kms-key-id <id>", "seal secrets under this AWS KMS key instead of DATA/master.key (default: CORRAL_KMS_KEY_ID)", process.env.CORRAL_KMS_KEY_ID)
    .addOption(new Option("--log-level <level>", "debug adds the routine (heartbeats, polls) to what info shows (default: CORRAL_LOG_LEVEL or info)").choices(["debug", "info", "warn", "error"]).default(process.env.CORRAL_LOG_LEVEL ?? "info"))
    .action(async (opts: { port: number; listen?: string; data: string; agent: boolean; hostId?: string; policy?: string; hostTimeout: number; kmsKeyId?: string; logLevel: "debug" | "info" | "error" }) => {
      const { startServer, stderrLogger } = await import("@corral/local");
      const env = process.env;
      const policy = opts.policy ? loadPolicy(opts.policy) : undefined;
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
      io.out(`corral server on ${server.url} (token in ${resolve(opts.data, "token")})`);
      await waitForSignal();
      await server.stop();
      io.out("corral server stopped");
    });

  program
    .command("agent")
    .description("a host agent: runs steps from its queue on this host's Docker engine")
    .option("--host-id <id>", "this host's id (default: the one its join token was made for)")
    .option("--join <url>", "the control plane's URL (with --token: a join token from 'corral host add')")
    .option("--token <token>", "a one-time join token (default: CORRAL_TOKEN)")
    .option("--docker-host <url>", "Docker engine (default: DOCKER_HOST or the local socket)")
    .option("--address <ip>", "the IP users reach this host's published ports on (default: the Docker host's IP for tcp://, else this machine's first non-loopback IPv4)", (v) => {
      if (isIP(v) === 0) throw new CliError(`--address: expected an IP address, got "${v}"`);
      return v;
    })
    .option("--overlay <mode>", "the stack networks across hosts (VXLAN, corral's name servers): on, off, or auto (default, or CORRAL_OVERLAY): on when run as root with iproute2 and iptables and the host's --address is this machine's", (v) => {
      if (!["on", "off", "auto"].includes(v)) throw new CliError(`--overlay: expected on, off or auto, got "${v.slice(0, 40)}"`);
      return v;
    })
    .option("--state-dir <dir>", "where the agent keeps its host credentials, to start again without a join token (default: CORRAL_AGENT_STATE, else /var/lib/corral/agent for root, ~/.local/state/corral/agent for others)")
    .action(async (opts: { hostId?: string; join?: string; token?: string; dockerHost?: string; address?: string; stateDir?: string; overlay?: string }) => {
      // CORRAL_OVERLAY: 1/on, 0/off, auto
      const fromEnv = { "1": "on", "0": "off", on: "on", off: "off", auto: "auto" }[process.env.CORRAL_OVERLAY ?? ""];
      if (process.env.CORRAL_OVERLAY && !fromEnv) throw new CliError(`CORRAL_OVERLAY: expected on, off, auto, 1 or 0, got "${process.env.CORRAL_OVERLAY.slice(0, 40)}"`);
      const overlayMode = opts.overlay ?? fromEnv ?? "auto";
      const { CredentialStore, defaultStateDir, startAgent } = await import("@corral/agent");
      const { stderrLogger } = await import("@corral/local");
      const credentials = new CredentialStore(opts.stateDir ?? process.env.CORRAL_AGENT_STATE ?? defaultStateDir());
      const url = (opts.join ?? process.env.CORRAL_URL ?? "http://127.0.0.1:8080").replace(/\/$/, "");
      // a token given wins; else the host token this agent saved when it joined; else the CLI's own (CORRAL_TOKEN, the server's token file)
      const saved = opts.token ? undefined : await credentials.load(url, opts.hostId).catch((e: unknown) => {
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
        log: stderrLogger(logLevel(process.env.CORRAL_LOG_LEVEL ?? "info")),
      });
      io.out(`corral agent ${agent.hostId} connected to ${config.url}`);
      const ended = await Promise.race([waitForSignal().then(() => undefined), agent.ended]);
      await agent.stop();
      if (ended) throw new CliError(ended); // removed from the control plane: nothing more to do here
      io.out("corral agent stopped");
    });

  program
    .command("up")
    .description("bring a stack up from compose files; returns once it has settled")
    .option("-d, --detach", "return once the operation has settled (without it, the stack's logs follow until Ctrl-C)")
    .option("-s, --stack <name>", "stack name (default: the current folder's name)")
    .option("-f, --file <file...>", "compose file(s); later files override earlier ones")
    .option("--rancher-file <file>", "rancher-compose.yml (default: the one beside the first file, if any)")
    .option("--render", "print the normalized compose files and any policy errors; change nothing")
    .option("--pull", "pull images for the containers it creates, even when the host has them")
    .option("-u, --upgrade", "upgrade the services whose configuration changed (old containers kept, stopped)")
    .option("--force-upgrade", "upgrade every service, changed or not")
    .option("-c, --confirm-upgrade", "confirm an upgrade: remove the old containers")
    .option("-r, --rollback", "roll an upgrade back: the old containers run again")
    .option("--to-revision <n>", "with --rollback: deploy revision N's whole configuration as a new upgrade", (v) => positiveInt(v, "--to-revision"))
    .option("--batch-size <n>", "slots upgraded at once", (v) => positiveInt(v, "--batch-size"))
    .option("--interval <ms>", "pause between batches, in milliseconds", (v) => positiveInt(v, "--interval"))
    .option("--start-first", "start each new container (healthy) before stopping the old one")
    .option("--auto-confirm <duration>", "confirm by itself once the new containers have run this long (e.g. 10m)", (v) => {
      const ms = parseDuration(v);
      if (ms === undefined || ms <= 0) throw new CliError(`--auto-confirm: expected a duration such as 30s, 10m or 1h, got "${v}"`);
      return ms;
    })
    .option("--dry-run", "print what the upgrade would do and why; change nothing")
    .argument("[services...]", "only these services of the file, and those they depend on (the others keep what they have)")
    .action(async (only: string[], opts: UpOptions) => {
      const needsFiles = !(opts.confirmUpgrade || opts.rollback) || opts.upgrade || opts.forceUpgrade;
      const files = opts.file ?? (needsFiles ? composeFiles(undefined) : defaultComposeFile());
      const input = files.length > 0 ? loadComposeFiles(files, opts.rancherFile) : { files: [] };
      const stack = opts.stack ?? stackNameFromDir(process.cwd());
      const client = api();
      const body = {
        ...input,
        source: "cli",
        ...(opts.upgrade ? { upgrade: true } : {}),
        ...(opts.forceUpgrade ? { forceUpgrade: true } : {}),
        ...(opts.confirmUpgrade ? { confirmUpgrade: true } : {}),
        ...(opts.rollback ? { rollback: true } : {}),
        ...(opts.toRevision ? { toRevision: opts.toRevision } : {}),
        ...(opts.batchSize ? { batchSize: opts.batchSize } : {}),
        ...(opts.interval ? { intervalMs: opts.interval } : {}),
        ...(opts.startFirst ? { startFirst: true } : {}),
        ...(opts.autoConfirm ? { autoConfirmMs: opts.autoConfirm } : {}),
        ...(opts.pull ? { pull: true } : {}),
        ...(only.length > 0 ? { services: only } : {}),
      };
      if (opts.render) {
        const res = await client.request<{ files: Record<string, string>; issues: ComposeIssue[] }>("POST", `/v1/stacks/${seg(stack)}/render`, body);
        for (const [name, text] of Object.entries(res.files)) io.out(`# ${name}\n${text.trimEnd()}`);
        printIssues(io, res.issues);
        if (res.issues.length > 0) throw new ExitError(1);
        return;
      }
      if (opts.dryRun) {
        const plan = await client.request<{
          kind: string;
          revision: number;
          upgrade: Array<{ service: string; keys: string[] }>;
          create: string[];
          placements?: Array<{ container: string; host: string; why: string }>;
          failed?: string;
        }>("POST", `/v1/stacks/${seg(stack)}/up`, { ...body, dryRun: true });
        const placements = plan.placements ?? [];
        if (plan.upgrade.length === 0 && plan.create.length === 0 && placements.length === 0 && !plan.failed) io.out("Nothing would change");
        for (const u of plan.upgrade) io.out(`Would upgrade ${u.service}: ${u.keys.join(", ") || "forced"}`);
        for (const n of plan.create) io.out(`Would create service ${n}`);
        // the scheduler's why begins with the host: "h2: fewest web containers (0), then fewest overall (1)"
        for (const p of placements) io.out(`Would create ${p.container} on ${p.why.startsWith(`${p.host}: `) ? p.why : `${p.host}: ${p.why}`}`);
        if (plan.failed) {
          io.err(`Would fail: ${plan.failed}`);
          throw new ExitError(1);
        }
        return;
      }
      const secrets = secretSources(input.files);
      if (secrets.length > 0) {
        // check first: a refused up must change nothing, secrets included
        const check = await client.request<{ issues: ComposeIssue[] }>("POST", `/v1/stacks/${seg(stack)}/render`, body);
        if (check.issues.length > 0) throw new CliError("refused", 400, check.issues);
        for (const s of secrets) {
          const res = await client.request<{ kind: string; version: number }>("POST", `/v1/secrets/${encodeURIComponent(s.name)}`, { value: s.read().toString("base64") });
          if (res.kind === "created") io.out(`Creating secret ${s.name} with contents from ${s.from}`);
          else if (res.kind === "unchanged") io.out(`Secret ${s.name} already exists`);
          else io.out(`Secret ${s.name}: new version ${res.version} from ${s.from}`);
        }
      }
      const res = await client.request<{ op: string; version: number }>("POST", `/v1/stacks/${seg(stack)}/up`, body, { "idempotency-key": randomUUID() });
      const ok = await follow(client, stack, res.op, res.version - 1, io);
      if (!ok) throw new ExitError(1);
      if (opts.detach || opts.dryRun) return;
      // attached, as compose: the stack's logs follow until Ctrl-C; the stack keeps running
      io.err(`Following the logs of ${stack} (Ctrl-C stops following; the stack keeps running)`);
      const code = await runSession(client, { type: "logs", target: stack, follow: true, timestamps: false }, io.raw ?? processRawOut, interrupted());
      if (code !== 0) throw new ExitError(code);
    });

  const secretCmd = program.command("secret").description("secrets: encrypted at rest, mounted at /run/secrets, never shown");
  secretCmd
    .command("create")
    .description("create a secret, or a new version of it, from FILE or standard input (-)")
    .argument("<name>", "SERVICE.STACK.FILE")
    .argument("[file]", "a file, or - for standard input", "-")
    .action(async (name: string, file: string) => {
      const value = file === "-" ? readFileSync(0) : readFileSync(file);
      const res = await api().request<{ kind: string; version: number }>("POST", `/v1/secrets/${encodeURIComponent(name)}`, { value: value.toString("base64") }, { "idempotency-key": randomUUID() });
      io.out(res.kind === "unchanged" ? `Secret ${name} already exists (version ${res.version}, same content)` : `${name} version ${res.version}`);
    });
  secretCmd
    .command("ls")
    .description("list secrets (never their values)")
    .addOption(new Option("--format <format>", "output format").choices(["table", "json"]).default("table"))
    .action(async (opts: { format: string }) => {
      const rows = await api().request<Array<{ name: string; versions: number; owner: string; group: string; created: string }>>("GET", "/v1/secrets");
      return printList(io, opts.format, rows, ["NAME", "VERSIONS", "OWNER", "GROUP", "CREATED"], (r) => [r.name, String(r.versions), r.owner, r.group, r.created]);
    });
  secretCmd
    .command("rm")
    .description("remove a secret (refused while a running container uses it)")
    .argument("<name>")
    .action(async (name: string) => {
      await api().request("DELETE", `/v1/secrets/${encodeURIComponent(name)}`, undefined, { "idempotency-key": randomUUID() });
      io.out(name);
    });

  const registryCmd = program.command("registry").description("logins to private registries: agents pull your stacks' images with them; passwords are sealed as secrets are, never shown");
  registryCmd
    .command("add")
    .description("add (or replace) your login for a registry; the password is read from standard input, never from the command line")
    .argument("<server>", "the registry's host[:port], as images name it (SERVER/repo:tag)")
    .requiredOption("-u, --username <username>", "the registry username")
    .option("--password-stdin", "read the password from standard input (e.g. printf %s \"$PW\" | corral registry add ...)")
    .action(async (server: string, opts: { username: string; passwordStdin?: boolean }) => {
      if (!opts.passwordStdin) throw new CliError("the password comes from standard input only: pipe it in and give --password-stdin (on the command line, other users would see it)");
      // as docker login --password-stdin: one trailing newline is not part of the password
      const password = (io.stdin ?? readStdin)(PASSWORD_STDIN_LIMIT).toString("utf8").replace(/\r?\n$/, "");
      if (password.length === 0) throw new CliError("standard input held no password");
      const res = await api().request<{ kind: string; server: string; owner: string }>("POST", "/v1/registries", { server, username: opts.username, password }, { "idempotency-key": randomUUID() });
      io.out(`${res.kind === "created" ? "Added" : "Replaced"} the login of ${res.owner} for ${res.server}`);
    });
  registryCmd
    .command("ls")
    .description("list the registry logins you may see (yours and your groups'), never their passwords")
    .addOption(new Option("--format <format>", "output format").choices(["table", "json"]).default("table"))
    .action(async (opts: { format: string }) => {
      const rows = await api().request<Array<{ server: string; username: string; owner: string; group: string; created: string }>>("GET", "/v1/registries");
      const shown = rows.map((r) => ({ server: r.server, username: r.username, owner: r.owner, group: r.group, created: r.created }));
      return printList(io, opts.format, shown, ["SERVER", "USERNAME", "OWNER", "GROUP", "CREATED"], (r) => [r.server, r.username, r.owner, r.group, r.created]);
    });
  registryCmd
    .command("rm")
    .description("remove your login for a registry (--owner: a member of your group's)")
    .argument("<server>")
    .option("--owner <user>", "whose login (default: yours)")
    .action(async (server: string, opts: { owner?: string }) => {
      const q = opts.owner ? `?${new URLSearchParams({ owner: opts.owner })}` : "";
      await api().request("DELETE", `/v1/registries/${encodeURIComponent(server)}${q}`, undefined, { "idempotency-key": randomUUID() });
      io.out(server);
    });

  program
    .command("export")
    .description("write a stack's docker-compose.yml and rancher-compose.yml (into ./STACK/, or to stdout with -f -)")
    .argument("<stack>", "the stack")
    .option("-f, --file <dest>", "'-' for stdout")
    .action(async (stack: string, opts: { file?: string }) => {
      const res = await api().request<{ files: Record<string, string> }>("GET", `/v1/stacks/${seg(stack)}/export`);
      if (opts.file === "-") {
        for (const [name, text] of Object.entries(res.files)) io.out(`# ${name}\n---\n${text.trimEnd()}`);
        return;
      }
      const dir = resolve(opts.file ?? stack);
      mkdirSync(dir, { recursive: true });
      for (const [name, text] of Object.entries(res.files)) {
        writeFileSync(join(dir, name), text);
        io.out(join(dir, name));
      }
    });

  program
    .command("ps")
    .description("list services (or containers), of every stack you may see or of one stack or service")
    .argument("[target]", "STACK or STACK/SERVICE")
    .option("-a, --all", "include stopped containers and inactive services")
    .option("-c, --containers", "list containers")
    .addOption(new Option("--format <format>", "output format").choices(["table", "json"]).default("table"))
    .action(async (target: string | undefined, opts: { all?: boolean; containers?: boolean; format: string }) => {
      const client = api();
      const listed = target ? await oneStack(client, target) : undefined;
      if (opts.containers) {
        const rows = (listed?.containers ?? (await client.request<ContainerRow[]>("GET", "/v1/containers"))).filter((r) => opts.all || r.state === "running" || r.state === "unknown");
        return printList(io, opts.format, rows, ["ID", "NAME", "IMAGE", "STATE", "HOST", "IP", "DOCKER", "DETAIL"], (r) => [r.id, r.name, r.image, r.state, r.host, r.ip, r.docker.slice(0, 12), r.detail]);
      }
      const rows = (listed?.services ?? (await client.request<ServiceRow[]>("GET", "/v1/services"))).filter((r) => opts.all || r.state !== "inactive");
      return printList(io, opts.format, rows, ["ID", "TYPE", "NAME", "IMAGE", "STATE", "SCALE", "ENDPOINTS", "DETAIL"], (r) => [r.id, r.type, r.name, r.image, r.state, r.scale, r.endpoints, r.detail]);
    });

  program
    .command("rm")
    .description("remove a stack (and its containers), a service of a stack, one container (its slot is made anew), a secret or a volume; returns once done")
    .addOption(new Option("--type <type>", "what NAME is (default: worked out from NAME: STACK/SERVICE is a service, else whichever of the others exists)").choices([...rmTypes]))
    .argument("<name>", "STACK, STACK/SERVICE, CONTAINER, or a secret's or volume's name")
    .action(async (name: string, opts: { type?: RmType }) => {
      const client = api();
      const type = opts.type ?? (await rmTypeOf(client, name));
      const key = { "idempotency-key": randomUUID() };
      if (type === "secret" || type === "volume") {
        await client.request("DELETE", `/v1/${type}s/${seg(name)}`, undefined, key);
        return io.out(name);
      }
      let path = `/v1/stacks/${seg(name)}`;
      if (type === "service") {
        const [stack, service, extra] = name.split("/");
        if (!stack || !service || extra !== undefined) throw new CliError(`${name}: expected STACK/SERVICE`);
        path = `/v1/stacks/${seg(stack)}/services/${seg(service)}`;
      }
      if (type === "container") path = `/v1/containers/${seg(name)}`;
      const res = await client.request<{ stack: string; op: string; version: number }>("DELETE", path, undefined, key);
      const ok = await follow(client, res.stack ?? name, res.op, res.version - 1, io);
      if (!ok) throw new ExitError(1);
      io.out(name);
    });

  /** `STACK` or `STACK/SERVICE` arguments, grouped by stack (services: undefined = the whole stack). */
  const byStack = (targets: string[]) => {
    const out = new Map<string, string[] | undefined>();
    for (const t of targets) {
      const [stack, service, extra] = t.split("/");
      if (!stack || extra !== undefined || service === "") throw new CliError(`${t}: expected STACK or STACK/SERVICE`);
      if (!service) out.set(stack, undefined);
      else if (!out.has(stack) || out.get(stack)) out.set(stack, [...(out.get(stack) ?? []), service]);
    }
    return out;
  };

  program
    .command("scale")
    .description("set the number of containers of services (adds or removes slots, highest first; not a new revision)")
    .argument("<targets...>", "STACK/SERVICE=N")
    .action(async (targets: string[]) => {
      const scales = new Map<string, Record<string, number>>();
      for (const t of targets) {
        const m = /^([^/=]+)\/([^/=]+)=(\d+)$/.exec(t);
        if (!m) throw new CliError(`${t}: expected STACK/SERVICE=N`);
        scales.set(m[1]!, { ...scales.get(m[1]!), [m[2]!]: Number(m[3]) });
      }
      const client = api();
      let ok = true;
      for (const [stack, s] of scales) {
        const res = await client.request<{ op: string; version: number }>("POST", `/v1/stacks/${seg(stack)}/scale`, { scales: s }, { "idempotency-key": randomUUID() });
        ok = (await follow(client, stack, res.op, res.version - 1, io)) && ok;
      }
      if (!ok) throw new ExitError(1);
    });

  for (const [verb, description] of [
    ["stop", "stop the containers of a stack or service (state inactive); 'corral start' brings them back"],
    ["start", "start the stopped containers of a stack or service"],
    ["restart", "restart the containers of a stack or service, in batches"],
  ] as const) {
    const cmd = program.command(verb).description(description).argument("<targets...>", "STACK or STACK/SERVICE");
    if (verb === "restart") {
      cmd
        .option("--batch-size <n>", "containers restarted at once", (v) => positiveInt(v, "--batch-size"))
        .option("--interval <ms>", "wait between batches, in milliseconds", (v) => positiveInt(v, "--interval"));
    }
    cmd.action(async (targets: string[], opts: { batchSize?: number; interval?: number }) => {
      const client = api();
      let ok = true;
      for (const [stack, services] of byStack(targets)) {
        const body = { ...(services ? { services } : {}), ...(opts.batchSize ? { batchSize: opts.batchSize } : {}), ...(opts.interval !== undefined ? { intervalMs: opts.interval } : {}) };
        const res = await client.request<{ op: string; version: number }>("POST", `/v1/stacks/${seg(stack)}/${verb}`, body, { "idempotency-key": randomUUID() });
        ok = (await follow(client, stack, res.op, res.version - 1, io)) && ok;
      }
      if (!ok) throw new ExitError(1);
    });
  }

  const stackCmd = program.command("stack").description("stacks");
  stackCmd
    .command("ls")
    .description("list stacks")
    .addOption(new Option("--format <format>", "output format").choices(["table", "json"]).default("table"))
    .action(async (opts: { format: string }) => {
      const rows = await api().request<Array<{ name: string; state: string; services: number; revision: number; owner: string }>>("GET", "/v1/stacks");
      return printList(io, opts.format, rows, ["NAME", "STATE", "SERVICES", "REVISION", "OWNER"], (r) => [r.name, r.state, String(r.services), String(r.revision), r.owner]);
    });
  stackCmd
    .command("create")
    .description("create a stack with no services yet (then 'corral up -s NAME')")
    .requiredOption("--empty", "create it empty (the only way for now)")
    .argument("<name>")
    .action(async (name: string) => {
      await api().request("POST", "/v1/stacks", { name }, { "idempotency-key": randomUUID() });
      io.out(name);
    });

  /** Ctrl-C ends a follow (or an exec) by cancelling its session: the host stops sending. */
  const interrupted = () => {
    const ctl = new AbortController();
    process.once("SIGINT", () => ctl.abort());
    return ctl.signal;
  };

  program
    .command("logs")
    .description("the output of a stack's or a service's containers (each line prefixed with its container) or of one container; stdout and stderr kept apart")
    .argument("<target>", "STACK, STACK/SERVICE or CONTAINER")
    .option("-f, --follow", "keep following until interrupted")
    .option("--tail <n>", "only the last N lines of each container", (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new CliError(`--tail: expected a whole number, got "${v}"`);
      return n;
    })
    .option("--since <t>", "only lines since: a duration back (10m, 2h), a date, or unix seconds")
    .option("-t, --timestamps", "prefix each line with its time")
    .action(async (target: string, opts: { follow?: boolean; tail?: number; since?: string; timestamps?: boolean }) => {
      const body = {
        type: "logs",
        target,
        follow: opts.follow ?? false,
        timestamps: opts.timestamps ?? false,
        ...(opts.tail !== undefined ? { tail: opts.tail } : {}),
        ...(opts.since ? { since: sinceSeconds(opts.since) } : {}),
      };
      const code = await runSession(api(), body, io.raw ?? processRawOut, interrupted());
      if (code !== 0) throw new ExitError(code);
    });

  program
    .command("exec")
    .description("run a command in a running container and return its output and exit code (corral exec hello/web -- ls -l)")
    .argument("<target>", "STACK/SERVICE or CONTAINER")
    .argument("<cmd...>", "the command, after --")
    .option("--slot <n>", "which container of the service (default 1)", (v) => positiveInt(v, "--slot"))
    .option("-i, --interactive", "keep stdin open: what you type or pipe goes to the command")
    .option("-t, --tty", "a terminal on the container's side (with -i: an interactive shell, exec -it ... -- sh)")
    .action(async (target: string, cmd: string[], opts: { slot?: number; interactive?: boolean; tty?: boolean }) => {
      const stdin = process.stdin;
      const raw = Boolean(opts.tty && opts.interactive && stdin.isTTY);
      const body = {
        type: "exec",
        target,
        cmd,
        ...(opts.slot ? { slot: opts.slot } : {}),
        ...(opts.interactive ? { interactive: true } : {}),
        ...(opts.tty ? { tty: { rows: process.stdout.rows || 24, cols: process.stdout.columns || 80 } } : {}),
      };
      if (raw) stdin.setRawMode(true); // keys, Ctrl-C included, go to the command, as docker exec -it does
      try {
        const code = await runSession(api(), body, io.raw ?? processRawOut, raw ? undefined : interrupted(), opts.interactive ? stdin : undefined);
        if (code !== 0) throw new ExitError(code);
      } finally {
        if (raw) stdin.setRawMode(false);
        if (opts.interactive) stdin.destroy(); // nothing more to read: let the process end
      }
    });

  program
    .command("inspect")
    .description("one JSON object: state, health, revision, image, scale, containers, fqdn, publicEndpoints, the config as deployed")
    .argument("<target>", "STACK, STACK/SERVICE or CONTAINER")
    .action(async (target: string) => {
      io.out(JSON.stringify(await api().request("GET", `/v1/inspect?target=${encodeURIComponent(target)}`), null, 2));
    });

  program
    .command("history")
    .description("what changed what runs: a stack's revisions and rollbacks, when, by whom, from where, which services and keys")
    .argument("<stack>", "the stack")
    .option("-a, --all", "also the earlier lives of the stack: a stack removed and made again under its name starts afresh at revision 1")
    .addOption(new Option("--format <format>", "output format").choices(["table", "json"]).default("table"))
    .addHelpText(
      "after",
      `
Columns (oldest first; --format json has the same keys, in lower case):
  REVISION  the configuration that runs after the entry: a number per change, from 1 in each life
            of the stack; for a rollback, the revision it went back to
  CURRENT   * on the entry that put in place what runs now
  TIME      when the change was asked for (a rollback: when it was done)
  BY        the user (or corral itself, for an automatic rollback)
  SOURCE    where it came from: cli, api, webhook or chatops
  CHANGED   the services it changed, each with the keys that changed (added, removed, secret versions)
  ROLLBACK  for a rollback: "rollback to N"; empty for a plain change
With --all, each life of the stack comes under a heading saying when it was removed
(in json, every row has "life" and "removed" too).`,
    )
    .action(async (stack: string, opts: { all?: boolean; format: string }) => {
      const res = await api().request<{ stack: string; lives: HistoryLife[] }>("GET", `/v1/stacks/${seg(stack)}/history${opts.all ? "?all=1" : ""}`);
      const columns = ["REVISION", "CURRENT", "TIME", "BY", "SOURCE", "CHANGED", "ROLLBACK"];
      const cells = (r: HistoryRow) => [String(r.revision), r.current ? "*" : "", r.time ?? "", r.by, r.source, r.changed.map((c) => `${c.service} (${c.keys.join(", ")})`).join("; "), r.rollback ?? ""];
      if (opts.format === "json") {
        const rows = res.lives.flatMap((l) => l.rows.map((r) => (opts.all ? { life: l.life, removed: l.removed?.time ?? (l.removed ? "" : null), ...r } : r)));
        return io.out(JSON.stringify(rows, null, 2));
      }
      res.lives.forEach((l, i) => {
        const removed = l.removed ? `removed${l.removed.time ? ` at ${l.removed.time}` : ""}${l.removed.by ? ` by ${l.removed.by}` : ""}` : "";
        // a heading per life when there is more than one to tell apart, or when the stack is gone
        if (opts.all || l.removed) io.out(`${i > 0 ? "\n" : ""}Life ${l.life} of stack ${res.stack}: ${l.current ? "current" : removed}`);
        printTable(io, columns, l.rows.map(cells));
      });
    });

  const volumeCmd = program.command("volume").description("named volumes (SERVICE.STACK), made on the host where a container lands");
  volumeCmd
    .command("create")
    .description("create a named volume")
    .argument("<name>", "SERVICE.STACK")
    .addOption(new Option("--driver <driver>", "local, or nfs (Docker's local driver with NFS options)").choices(["local", "nfs"]).default("local"))
    .option("--opt <k=v>", "a driver option, repeatable (nfs: addr=HOST, device=:/path, o=...)", (v: string, all: string[]) => [...all, v], [] as string[])
    .action(async (name: string, opts: { driver: string; opt: string[] }) => {
      const pairs = opts.opt.map((kv) => {
        const at = kv.indexOf("=");
        if (at < 1) throw new CliError(`--opt ${kv}: expected KEY=VALUE`);
        return [kv.slice(0, at), kv.slice(at + 1)] as const;
      });
      await api().request("POST", "/v1/volumes", { name, driver: opts.driver, opts: Object.fromEntries(pairs) }, { "idempotency-key": randomUUID() });
      io.out(name);
    });
  volumeCmd
    .command("ls")
    .description("list volumes: inactive until a container uses one, then active")
    .option("-a, --all", "include inactive volumes")
    .addOption(new Option("--format <format>", "output format").choices(["table", "json"]).default("table"))
    .action(async (opts: { all?: boolean; format: string }) => {
      const rows = (await api().request<Array<{ id: string; name: string; state: string; driver: string; detail: string }>>("GET", "/v1/volumes")).filter((r) => opts.all || r.state === "active");
      return printList(io, opts.format, rows, ["ID", "NAME", "STATE", "DRIVER", "DETAIL"], (r) => [r.id, r.name, r.state, r.driver, r.detail]);
    });
  volumeCmd
    .command("rm")
    .description("remove a volume and its data on every host (refused while a container uses it)")
    .argument("<name>")
    .action(async (name: string) => {
      await api().request("DELETE", `/v1/volumes/${encodeURIComponent(name)}`, undefined, { "idempotency-key": randomUUID() });
      io.out(name);
    });

  const userCmd = program.command("user").description("users and groups (the admin's)");
  userCmd
    .command("create")
    .description("create a user; prints the user's token, once")
    .argument("<name>")
    .option("-g, --group <group...>", "groups (the first is the primary group: new stacks and secrets belong to it)")
    .action(async (name: string, opts: { group?: string[] }) => {
      const res = await api().request<{ token: string }>("POST", "/v1/users", { name, groups: opts.group ?? [] });
      io.out(res.token);
    });
  userCmd
    .command("ls")
    .description("list users")
    .addOption(new Option("--format <format>", "output format").choices(["table", "json"]).default("table"))
    .action(async (opts: { format: string }) => {
      const rows = await api().request<Array<{ name: string; groups: string[]; created: string }>>("GET", "/v1/users");
      return printList(io, opts.format, rows, ["NAME", "GROUPS", "CREATED"], (r) => [r.name, r.groups.join(","), r.created]);
    });
  userCmd
    .command("rm")
    .description("remove a user (their token stops working)")
    .argument("<name>")
    .action(async (name: string) => {
      await api().request("DELETE", `/v1/users/${encodeURIComponent(name)}`);
      io.out(name);
    });
  userCmd
    .command("token")
    .description("issue a new token for a user (the old one stops working); prints it once")
    .argument("<name>")
    .action(async (name: string) => {
      const res = await api().request<{ token: string }>("POST", `/v1/users/${encodeURIComponent(name)}/token`);
      io.out(res.token);
    });

  addServiceCommands(program, io, api);
  addHookCommands(program, io, api);
  addChatCommands(program, io, api);

  const hostCmd = program.command("host").description("the Docker hosts corral places containers on");
  hostCmd
    .command("add")
    .description("make a one-time join token for a new host (the admin's), with its labels; prints it with the command to run on the node. For a registered host: a token to join it again (its labels and state are kept)")
    .argument("<name>", "the host's name (its id)")
    .option("-l, --label <key=value>", "a host label (repeatable; io.corral.* keys are corral's)", (v: string, all: string[] = []) => [...all, v])
    .action(async (name: string, opts: { label?: string[] }) => {
      const labels: Record<string, string> = {};
      for (const text of opts.label ?? []) {
        const parsed = parseHostLabel(text);
        if ("problem" in parsed) throw new CliError(`--label: ${parsed.problem}`);
        labels[parsed.key] = parsed.value;
      }
      const res = await api().request<{ id: string; token: string; expiresAt: string; rejoin: boolean }>("POST", `/v1/hosts/${seg(name)}/join`, { labels });
      io.out(`${res.rejoin ? "re-join" : "join"} token for host ${res.id} (good once, until ${res.expiresAt}):`);
      io.out(res.token);
      io.out("on the node, run:");
      io.out(`  corral agent --join ${clientConfig().url} --token ${res.token}`);
    });
  hostCmd
    .command("ls")
    .description("list hosts: state (active, draining, inactive, or disconnected when not heard from), address, labels, containers, last heartbeat")
    .addOption(new Option("--format <format>", "output format").choices(["table", "json"]).default("table"))
    .action(async (opts: { format: string }) => {
      const rows = await api().request<HostRow[]>("GET", "/v1/hosts");
      const now = Date.now();
      return printList(io, opts.format, rows, ["ID", "NAME", "STATE", "ADDRESS", "LABELS", "CONTAINERS", "LAST SEEN"], (r) => [
        r.id,
        r.name,
        r.state,
        r.address ?? "",
        showLabels(r.labels ?? {}),
        r.containers === undefined ? "" : String(r.containers),
        r.lastSeen ? ago(Date.parse(r.lastSeen), now) : "",
      ]);
    });
  hostCmd
    .command("label")
    .description("set (KEY=VALUE) and remove (KEY-) labels of a host (the admin's)")
    .argument("<name>", "the host")
    .argument("<labels...>", "KEY=VALUE to set, KEY- to remove")
    .action(async (name: string, changes: string[]) => {
      const set: Record<string, string> = {};
      const remove: string[] = [];
      for (const text of changes) {
        if (!text.includes("=") && text.endsWith("-")) {
          remove.push(text.slice(0, -1));
          continue;
        }
        const parsed = parseHostLabel(text);
        if ("problem" in parsed) throw new CliError(`${parsed.problem} (or KEY- to remove one)`);
        set[parsed.key] = parsed.value;
      }
      const res = await api().request<{ name: string; labels: Record<string, string> }>("POST", `/v1/hosts/${seg(name)}/labels`, { set, remove });
      io.out(`${res.name}: ${showLabels(res.labels) || "no labels"}`);
    });
  const hostState = (verb: string, path: string, description: string) =>
    hostCmd
      .command(verb)
      .description(description)
      .argument("<name>", "the host")
      .action(async (name: string) => {
        const res = await api().request<{ name: string; state: string }>("POST", `/v1/hosts/${seg(name)}/${path}`, {});
        io.out(`${res.name}: ${res.state}`);
      });
  hostState("drain", "drain", "drain a host (the admin's): no new container lands on it; what it runs stays until moved");
  hostState("activate", "activate", "return a draining or inactive host to active (the admin's)");
  hostState("deactivate", "deactivate", "deactivate a host (the admin's): no new container lands on it");
  hostCmd
    .command("rm")
    .description("remove a host (the admin's): refused while a container of any stack is on it; its token and queue stop working")
    .argument("<name>", "the host")
    .option("--force", "remove a draining or inactive host even with containers on it: they are forgotten here, not stopped there")
    .action(async (name: string, opts: { force?: boolean }) => {
      const res = await api().request<{ name: string }>("DELETE", `/v1/hosts/${seg(name)}${opts.force ? "?force=1" : ""}`);
      io.out(res.name);
    });

  program
    .command("events")
    .description("the event log of a stack, or of every stack you may see, as lines; -f follows (server-sent events)")
    .argument("[stack]", "the stack (default: all)")
    .option("-f, --follow", "keep printing new events until interrupted")
    .option("--since <t>", "only events since: a duration back (10m, 2h), a date, or unix seconds")
    .action(async (stack: string | undefined, opts: { follow?: boolean; since?: string }) => {
      const print = (e: StreamedEvent) => io.out(`${e.at}  ${e.stack}  ${String(e.version).padStart(4)}  ${e.type}${e.line ? `  ${e.line.replace(/\n/g, " | ")}` : ""}`);
      const path = (since: number | undefined) => `/v1/events?${new URLSearchParams({ ...(stack ? { stack } : {}), ...(opts.follow ? { follow: "1" } : {}), ...(since !== undefined ? { since: String(since) } : {}) })}`;
      let since = opts.since ? sinceSeconds(opts.since) * 1000 : undefined;
      const signal = interrupted();
      if (!opts.follow) return streamEvents(api(), path(since), print, signal);
      // a server may end a follow (on AWS, after CORRAL_MAX_FOLLOW_MS): follow on from the last event's time, printing
      // none twice (the events of a commit come again in the same order: count them per commit)
      const printed = new Map<string, { n: number; at: number }>();
      while (!signal.aborted) {
        const counted = new Map<string, number>();
        await streamEvents(
          api(),
          path(since),
          (e) => {
            const key = `${e.stack}#${e.version}`;
            const n = (counted.get(key) ?? 0) + 1;
            counted.set(key, n);
            if (n <= (printed.get(key)?.n ?? 0)) return;
            since = Date.parse(e.at);
            printed.set(key, { n, at: since });
            print(e);
          },
          signal,
        );
        for (const [key, p] of printed) if (since !== undefined && p.at < since) printed.delete(key); // those never come again
        if (!signal.aborted) await new Promise((r) => setTimeout(r, 200));
      }
    });

  // every verb refuses what it does not take, with its usage line: never an argument silently ignored
  const strict = (cmd: Command, path: string) => {
    cmd.allowExcessArguments(false);
    cmd.showHelpAfterError(`usage: ${path} ${cmd.usage()}   (see '${path} --help')`);
    for (const sub of cmd.commands) strict(sub, `${path} ${sub.name()}`);
  };
  strict(program, "corral");
  return program;
}

function loadPolicy(file: string) {
  const text = readText(file);
  if (text === undefined) throw new CliError(`${file}: no such file`);
  const parsed = sitePolicySchema.safeParse(parseYaml(text) ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = issue.code === "unrecognized_keys" ? issue.keys[0] : issue.path.join(".");
    throw new CliError(`${file}: ${key}: ${issue.code === "unrecognized_keys" ? "not a policy key (keys: registries, bindRoots, capAdd, portRange, publicPorts, environment, domain)" : issue.message}`);
  }
  return parsed.data;
}

/**
 * Ctrl-C or SIGTERM: resolves, and the caller stops cleanly. Another one while it stops ends the process at
 * once, unless it comes within a second of the first: Ctrl-C under `npm start` reaches the server both from
 * the terminal and forwarded by npm, and that is one Ctrl-C.
 */
function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    let first: number | undefined;
    const onSignal = (signal: NodeJS.Signals) => {
      if (first !== undefined && Date.now() - first > 1000) process.exit(signal === "SIGINT" ? 130 : 143);
      first ??= Date.now();
      resolve();
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
}

type StackListing = { services: ServiceRow[]; containers: ContainerRow[] };

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** `ps STACK | STACK/SERVICE`: that stack's rows (a stack you may not see is not found), or one service's. */
async function oneStack(client: ApiClient, target: string): Promise<StackListing> {
  const [stack, service, extra] = target.split("/");
  if (!stack || service === "" || extra !== undefined) throw new CliError(`${target}: expected STACK or STACK/SERVICE`);
  const s = await client.request<StackListing>("GET", `/v1/stacks/${seg(stack)}`);
  if (service === undefined) return s;
  const name = `${stack}/${service}`;
  if (!s.services.some((r) => r.name === name)) {
    throw new CliError(`stack ${stack} has no service ${service} (services: ${s.services.map((r) => r.name.slice(stack.length + 1)).join(", ") || "none"})`);
  }
  // its containers: STACK-SERVICE-N and a job's STACK-SERVICE.run-N (a service "web-2" has STACK-web-2-N, never STACK-web-N)
  const mine = new RegExp(`^${escapeRe(stack)}-${escapeRe(service)}(-\\d+|\\.run-\\d+)$`);
  return { services: s.services.filter((r) => r.name === name), containers: s.containers.filter((c) => mine.test(c.name)) };
}

const rmTypes = ["stack", "service", "container", "secret", "volume"] as const;
type RmType = (typeof rmTypes)[number];

/**
 * What `rm NAME` removes, as Rancher's rm worked it out: STACK/SERVICE is a
 * service; otherwise whichever stack, container (STACK-SERVICE-N), secret or
 * volume of that name the caller may see; none is a stack (not found), more
 * than one an error listing the `--type` to choose.
 */
export async function rmTypeOf(client: Pick<ApiClient, "request">, name: string): Promise<RmType> {
  if (name.includes("/")) return "service";
  const absent = (e: unknown) => {
    if (e instanceof CliError && (e.status === 404 || e.status === 400)) return false;
    throw e;
  };
  const named = (rows: Array<{ name: string }>) => rows.some((r) => r.name === name);
  const [stack, container, secret, volume] = await Promise.all([
    client.request("GET", `/v1/stacks/${seg(name)}`).then(() => true, absent),
    /-\d+$/.test(name) ? client.request<ContainerRow[]>("GET", "/v1/containers").then(named) : false,
    client.request<Array<{ name: string }>>("GET", "/v1/secrets").then(named),
    client.request<Array<{ name: string }>>("GET", "/v1/volumes").then(named),
  ]);
  const is: Record<RmType, boolean> = { stack, service: false, container, secret, volume };
  const found = rmTypes.filter((t) => is[t]);
  if (found.length === 1) return found[0]!;
  // nothing of that name: a stack, as Rancher's rm took it (the API then says the stack is not found, as it says
  // of one the caller may not see)
  if (found.length === 0) return "stack";
  throw new CliError(`${name} names several things (${found.map((t) => `a ${t}`).join(", ")}); say which: ${found.map((t) => `corral rm --type ${t} ${name}`).join(" or ")}`);
}

/** Run the CLI; returns the exit status. */
export async function main(argv: string[], io: Out = defaultOut): Promise<number> {
  try {
    await buildProgram(io).parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof ExitError) return e.code;
    const ce = e as { code?: string; exitCode?: number };
    if (typeof ce.code === "string" && ce.code.startsWith("commander.")) return ce.exitCode ?? 1;
    if (e instanceof ComposeError) {
      printIssues(io, e.issues);
      return 1;
    }
    if (e instanceof CliError) {
      if (e.issues) printIssues(io, e.issues);
      else io.err(`error: ${e.message}`);
      return 1;
    }
    io.err(`error: ${e instanceof Error ? (process.env.CORRAL_DEBUG ? (e.stack ?? e.message) : e.message) : String(e)}`);
    return 1;
  }
}
