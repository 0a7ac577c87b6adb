import { z } from "zod";

/**
 * What the Lambda functions need to build the control plane, read from the
 * resources SST links to them, or from plain environment variables (tests,
 * and deployments without SST: Alternator + ElasticMQ, say).
 *
 * SST's runtime puts each linked resource in an environment variable
 * `SST_RESOURCE_<Name>` holding its properties as JSON; its `Resource`
 * object only reads those. corral reads them itself, validated here, so
 * that no package imports `sst` (issue 14: only sst.config.ts and infra/ do).
 *
 * | resource (SST)   | shape          | fallback                    |
 * |------------------|----------------|-----------------------------|
 * | `Table`          | `{ name }`     | CORRAL_TABLE                |
 * | `Control`        | `{ url }`      | CORRAL_CONTROL_QUEUE_URL    |
 * | `ControlDlq`     | `{ url }`      | CORRAL_CONTROL_DLQ_URL (default: the queue's `-dlq.fifo` twin) |
 * | `Chat`           | `{ url }`      | CORRAL_CHAT_QUEUE_URL (chat commands' work, for chat.ts) |
 * | `Secrets`        | `{ arn, id }`  | CORRAL_KMS_KEY_ID, else CORRAL_MASTER_KEY_FILE (off AWS) |
 * | `AdminToken`     | `{ value }`    | CORRAL_ADMIN_TOKEN          |
 * | `ControlKey`     | `{ value }`    | CORRAL_CONTROL_KEY (optional, see below) |
 *
 * The control plane's signing key (Ed25519, PEM) may be given as an SST
 * secret, `ControlKey`; by default it is not: the first cold start makes
 * one and keeps it in the table wrapped by the master key (KMS), as the MAC
 * key already is (see storedControlKeys). That way it is never in clear in
 * a function's configuration (an SST secret is an environment variable any
 * `lambda:GetFunctionConfiguration` caller reads), there is nothing to set
 * before the first deploy, and every function gets the same key.
 *
 * Plain variables too: AWS_REGION (set by Lambda), CORRAL_QUEUE_PREFIX (host
 * queues are `PREFIX-host-ID.fifo`; default `corral`; a stage's own prefix
 * keeps stages apart), CORRAL_DYNAMO_ENDPOINT and CORRAL_SQS_ENDPOINT (a
 * stand-in: dynalite, fauxqs), CORRAL_VISIBILITY_SECONDS,
 * CORRAL_RESEND_AFTER_MS, CORRAL_HOST_TIMEOUT_MS, CORRAL_MAX_FOLLOW_MS,
 * CORRAL_OVERLAY_POOL, CORRAL_VTEP_POOL.
 */
export interface AwsConfig {
  table: string;
  region: string;
  controlQueueUrl: string;
  /** Where chat commands' work goes (the chat function's queue): a Lambda is frozen once it answered, so the work cannot stay behind in it. */
  chatQueueUrl: string;
  /** Where refused control messages go at once (SST names queues with a suffix: the `-dlq.fifo` convention does not hold there). */
  controlDlqUrl?: string;
  /** The master key: a KMS key (id or ARN), or off AWS a key file. */
  masterKey: { kms: string } | { file: string };
  adminToken: string;
  /** The control plane's private key (PEM), when given; else kept wrapped in the table. */
  controlKey?: { pem: string; from: string };
  queuePrefix: string;
  dynamoEndpoint?: string;
  sqsEndpoint?: string;
  visibilitySeconds: number;
  resendAfterMs?: number;
  hostTimeoutMs?: number;
  /** The longest an event stream stays open: under the API function's timeout (default 25 s). */
  maxFollowMs: number;
  overlayPool?: string;
  vtepPool?: string;
}

/** The configuration is missing or wrong: the message names the variable to set. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

type Env = Record<string, string | undefined>;

const named = z.object({ name: z.string().min(1) });
const located = z.object({ url: z.string().url() });
const key = z.object({ id: z.string().min(1).optional(), arn: z.string().min(1).optional() }).refine((k) => k.id ?? k.arn, "an id or an arn");
const secret = z.object({ value: z.string().min(1) });

/** A linked resource's properties, or undefined when it is not linked; a value that is there but wrong is an error naming it. */
function resource<T>(env: Env, name: string, schema: z.ZodType<T>): T | undefined {
  const variable = `SST_RESOURCE_${name}`;
  const raw = env[variable];
  if (raw === undefined || raw === "") return undefined;
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new ConfigError(`${variable}: not JSON (SST sets it to the resource's properties, such as {"name":"..."})`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`${variable}: ${issue?.path.join(".") || "value"}: ${issue?.message ?? "invalid"}`);
  }
  return parsed.data;
}

function plain(env: Env, variable: string): string | undefined {
  const value = env[variable]?.trim();
  return value === "" ? undefined : value;
}

function required<T>(value: T | undefined, what: string, sst: string, fallback: string): T {
  if (value === undefined) throw new ConfigError(`${what}: link the resource ${sst} (SST_RESOURCE_${sst}) or set ${fallback}`);
  return value;
}

function whole(env: Env, variable: string, min: number, max: number): number | undefined {
  const raw = plain(env, variable);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) throw new ConfigError(`${variable}: expected a whole number from ${min} to ${max}, not "${raw}"`);
  return n;
}

function url(env: Env, variable: string): string | undefined {
  const raw = plain(env, variable);
  if (raw !== undefined && !(/^https?:\/\//.test(raw) && z.string().url().safeParse(raw).success)) throw new ConfigError(`${variable}: not a URL (http:// or https://): "${raw}"`);
  return raw;
}

/** The configuration from `env` (default: this process's environment); throws a ConfigError naming what is missing or wrong. */
export function readConfig(env: Env = process.env): AwsConfig {
  const table = required(resource(env, "Table", named)?.name ?? plain(env, "CORRAL_TABLE"), "the table", "Table", "CORRAL_TABLE");
  const controlQueueUrl = required(resource(env, "Control", located)?.url ?? url(env, "CORRAL_CONTROL_QUEUE_URL"), "the control queue", "Control", "CORRAL_CONTROL_QUEUE_URL");
  const controlDlqUrl = resource(env, "ControlDlq", located)?.url ?? url(env, "CORRAL_CONTROL_DLQ_URL");
  const chatQueueUrl = required(resource(env, "Chat", located)?.url ?? url(env, "CORRAL_CHAT_QUEUE_URL"), "the chat queue", "Chat", "CORRAL_CHAT_QUEUE_URL");
  const kms = resource(env, "Secrets", key);
  const kmsKeyId = kms ? (kms.arn ?? kms.id) : plain(env, "CORRAL_KMS_KEY_ID");
  const keyFile = plain(env, "CORRAL_MASTER_KEY_FILE");
  const masterKey = kmsKeyId ? { kms: kmsKeyId } : keyFile ? { file: keyFile } : undefined;
  const adminToken = required(resource(env, "AdminToken", secret)?.value ?? plain(env, "CORRAL_ADMIN_TOKEN"), "the admin token", "AdminToken", "CORRAL_ADMIN_TOKEN");
  if (adminToken.length < 16) throw new ConfigError(`the admin token (AdminToken or CORRAL_ADMIN_TOKEN) is at least 16 characters, this one has ${adminToken.length}`);
  const linkedKey = resource(env, "ControlKey", secret)?.value;
  const plainKey = plain(env, "CORRAL_CONTROL_KEY");
  const controlKey = linkedKey
    ? { pem: linkedKey, from: "SST_RESOURCE_ControlKey" }
    : plainKey
      ? { pem: plainKey, from: "CORRAL_CONTROL_KEY" }
      : undefined;
  const queuePrefix = plain(env, "CORRAL_QUEUE_PREFIX") ?? "corral";
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(queuePrefix)) throw new ConfigError(`CORRAL_QUEUE_PREFIX: letters, digits, '-' and '_', at most 40, not "${queuePrefix}"`);
  const dynamoEndpoint = url(env, "CORRAL_DYNAMO_ENDPOINT");
  const sqsEndpoint = url(env, "CORRAL_SQS_ENDPOINT");
  const resendAfterMs = whole(env, "CORRAL_RESEND_AFTER_MS", 0, 3_600_000);
  const hostTimeoutMs = whole(env, "CORRAL_HOST_TIMEOUT_MS", 1000, 3_600_000);
  const overlayPool = plain(env, "CORRAL_OVERLAY_POOL");
  const vtepPool = plain(env, "CORRAL_VTEP_POOL");
  return {
    table,
    region: plain(env, "AWS_REGION") ?? plain(env, "AWS_DEFAULT_REGION") ?? "us-east-1",
    controlQueueUrl,
    chatQueueUrl,
    ...(controlDlqUrl ? { controlDlqUrl } : {}),
    masterKey: required(masterKey, "the master key", "Secrets", "CORRAL_KMS_KEY_ID (or, off AWS, CORRAL_MASTER_KEY_FILE)"),
    adminToken,
    ...(controlKey ? { controlKey } : {}),
    queuePrefix,
    ...(dynamoEndpoint ? { dynamoEndpoint } : {}),
    ...(sqsEndpoint ? { sqsEndpoint } : {}),
    visibilitySeconds: whole(env, "CORRAL_VISIBILITY_SECONDS", 1, 43_200) ?? 30,
    ...(resendAfterMs !== undefined ? { resendAfterMs } : {}),
    ...(hostTimeoutMs !== undefined ? { hostTimeoutMs } : {}),
    maxFollowMs: whole(env, "CORRAL_MAX_FOLLOW_MS", 0, 900_000) ?? 25_000,
    ...(overlayPool ? { overlayPool } : {}),
    ...(vtepPool ? { vtepPool } : {}),
  };
}
