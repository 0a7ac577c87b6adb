import type { Command } from "commander";
import type { NamedDocument } from "@corral/core";
import { parseDuration } from "@corral/core/light";
import { CliError, type ApiBody, type ApiClient } from "../client.js";
import { composeFiles, defaultComposeFile, loadComposeFiles, secretSources, stackNameFromDir } from "../compose.js";
import { ExitError, printIssues, printWarnings, type Out } from "../output.js";
import { runSession } from "../sessions.js";
import { verb, type Ctx } from "./context.js";
import { positiveInt } from "./flags.js";
import { runOp, started } from "./op.js";
import { interrupted } from "./signals.js";

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

/** What `up` sends: the compose documents, and what its flags ask for. */
type UpBody = ApiBody<"/v1/stacks/:stack/up", "$post"> & { files: NamedDocument[] };

/** `corral up`: a stack from compose files (or its upgrade confirmed, or rolled back), followed until it settles. */
export function upCommand(ctx: Ctx): Command {
  return verb(ctx, "up")
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
    .action((only: string[], opts: UpOptions) => up(ctx, only, opts));
}

async function up(ctx: Ctx, only: string[], opts: UpOptions): Promise<void> {
  const { io } = ctx;
  const needsFiles = !(opts.confirmUpgrade || opts.rollback) || opts.upgrade || opts.forceUpgrade;
  const files = opts.file ?? (needsFiles ? composeFiles(undefined) : defaultComposeFile());
  const input = files.length > 0 ? await loadComposeFiles(files, opts.rancherFile) : { files: [] };
  const stack = opts.stack ?? stackNameFromDir(process.cwd());
  const client = ctx.api();
  const body: UpBody = {
    ...input,
    source: "cli" as const,
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
  if (opts.render) return render(client, io, stack, body);
  if (opts.dryRun) return dryRun(client, io, stack, body);
  await sendSecrets(client, io, stack, body);
  await runOp(client, io, [{ send: async (o) => started(await client.post("/v1/stacks/:stack/up", { param: { stack }, json: body }, o)), stack }]);
  if (opts.detach) return;
  // attached, as compose: the stack's logs follow until Ctrl-C; the stack keeps running
  io.err(`Following the logs of ${stack} (Ctrl-C stops following; the stack keeps running)`);
  const code = await runSession(client, { type: "logs", target: stack, follow: true, timestamps: false }, ctx.raw, interrupted());
  if (code !== 0) throw new ExitError(code);
}

/** `up --render`: the normalized files and the policy's errors; exit status 1 when there are any. */
async function render(client: ApiClient, io: Out, stack: string, body: UpBody): Promise<void> {
  const res = await client.post("/v1/stacks/:stack/render", { param: { stack }, json: body });
  for (const [name, text] of Object.entries(res.files)) io.out(`# ${name}\n${text.trimEnd()}`);
  printIssues(io, res.issues);
  printWarnings(io, res.warnings);
  if (res.issues.length > 0) throw new ExitError(1);
}

/** `up --dry-run`: what would be upgraded, created and placed where; exit status 1 when it would fail. */
async function dryRun(client: ApiClient, io: Out, stack: string, body: UpBody): Promise<void> {
  const plan = await client.post("/v1/stacks/:stack/up", { param: { stack }, json: { ...body, dryRun: true } });
  if (!("dryRun" in plan)) throw new CliError("the server started an operation for a dry run: is it an older version than this CLI (corral --version)?");
  printWarnings(io, plan.warnings);
  const placements = plan.placements;
  if (plan.upgrade.length === 0 && plan.create.length === 0 && placements.length === 0 && !plan.failed) io.out("Nothing would change");
  for (const u of plan.upgrade) io.out(`Would upgrade ${u.service}: ${u.keys.join(", ") || "forced"}`);
  for (const n of plan.create) io.out(`Would create service ${n}`);
  // the scheduler's why begins with the host: "h2: fewest web containers (0), then fewest overall (1)"
  for (const p of placements) io.out(`Would create ${p.container} on ${p.why.startsWith(`${p.host}: `) ? p.why : `${p.host}: ${p.why}`}`);
  if (plan.failed) {
    io.err(`Would fail: ${plan.failed}`);
    throw new ExitError(1);
  }
}

/** The compose files' secrets whose values the CLI holds (a file, a variable), sent before the up that mounts them. */
async function sendSecrets(client: ApiClient, io: Out, stack: string, body: UpBody): Promise<void> {
  const secrets = secretSources(body.files);
  if (secrets.length === 0) return;
  // check first: a refused up must change nothing, secrets included
  const check = await client.post("/v1/stacks/:stack/render", { param: { stack }, json: body });
  if (check.issues.length > 0) throw new CliError("refused", 400, check.issues);
  for (const s of secrets) {
    const res = await client.post("/v1/secrets/:name", { param: { name: s.name }, json: { value: s.read().toString("base64") } });
    if (res.kind === "created") io.out(`Creating secret ${s.name} with contents from ${s.from}`);
    else if (res.kind === "unchanged") io.out(`Secret ${s.name} already exists`);
    else io.out(`Secret ${s.name}: new version ${res.version} from ${s.from}`);
  }
}
