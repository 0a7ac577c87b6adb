import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { KMSClient } from "@aws-sdk/client-kms";
import type { SQSClient } from "@aws-sdk/client-sqs";
import type { Logger } from "@corral/core";
import { controlKeysOf } from "@corral/local/keys";
import { buildPlane, type Plane } from "@corral/local/plane";
import { sqsClient } from "@corral/queue";
import { dynamoClient, KeyFileMasterKey, KmsMasterKey, type MasterKey } from "@corral/store";
import type { AwsConfig } from "./config.js";
import { storedControlKeys } from "./control-key.js";
import { PollingFeed } from "./feed.js";
import { TableReplays } from "./replays.js";

export interface AwsPlane extends Plane {
  config: AwsConfig;
  db: DynamoDBClient;
  sqs: SQSClient;
}

/**
 * The control plane `corral server` runs (buildPlane), on the real
 * services: no stand-ins, no heardSince (a cold start says nothing of the
 * hosts: only their heartbeats count), a change feed that polls, and keys
 * from KMS and the table.
 */
export async function awsPlane(config: AwsConfig, log?: Logger): Promise<AwsPlane> {
  const db = dynamoClient({ table: config.table, region: config.region, ...(config.dynamoEndpoint ? { endpoint: config.dynamoEndpoint } : {}) });
  const sqsConfig = { region: config.region, ...(config.sqsEndpoint ? { endpoint: config.sqsEndpoint } : {}) };
  const sqs = sqsClient(sqsConfig);
  const masterKey: MasterKey =
    "kms" in config.masterKey
      ? await KmsMasterKey.open(new KMSClient({ region: config.region }), config.masterKey.kms, db, config.table)
      : new KeyFileMasterKey(config.masterKey.file);
  const keys = config.controlKey ? controlKeysOf(config.controlKey.pem, config.controlKey.from) : await storedControlKeys(db, config.table, masterKey);
  const plane = await buildPlane({
    db,
    table: config.table,
    sqs,
    sqsConfig,
    controlQueueUrl: config.controlQueueUrl,
    chatQueueUrl: config.chatQueueUrl,
    queuePrefix: config.queuePrefix,
    keys,
    masterKey,
    adminToken: config.adminToken,
    feed: new PollingFeed(),
    replays: new TableReplays(db, config.table),
    visibilitySeconds: config.visibilitySeconds,
    maxFollowMs: config.maxFollowMs,
    ...(config.resendAfterMs !== undefined ? { resendAfterMs: config.resendAfterMs } : {}),
    ...(config.hostTimeoutMs !== undefined ? { hostTimeoutMs: config.hostTimeoutMs } : {}),
    ...(config.overlayPool ? { overlayPool: config.overlayPool } : {}),
    ...(config.vtepPool ? { vtepPool: config.vtepPool } : {}),
    ...(log ? { log } : {}),
  });
  return { ...plane, config, db, sqs };
}
