import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { SQSClient } from "@aws-sdk/client-sqs";
import { subnetPool } from "@corral/agent";
import { createApi, registryResolver } from "@corral/api";
import { Controller } from "@corral/control";
import { hostAddressesOf, type Logger, type SitePolicy } from "@corral/core";
import { CONTROL, deleteFifoQueue, ensureFifoQueue, exportPublicKey, hostQueueName, importPublicKey, Opener, QueueSender, senderHost, signer, type ReplayMemory, type SqsConfig } from "@corral/queue";
import {
  EventStore,
  hmacIntegrity,
  HostStore,
  CLAIM_LEASE_MS, IdempotencyStore,
  LeaseStore,
  RegistryStore,
  HookStore,
  ChatJobStore,
  ChatStore,
  MemoryRates,
  RateStore,
  SecretStore,
  SessionStore,
  SubnetStore,
  UserStore,
  VolumeStore,
  type ChangeFeed,
  type MasterKey,
} from "@corral/store";
import type { ControlKeys } from "./keys.js";

/** The host addresses of an IPv4 network (its network and broadcast addresses left out): VTEP addresses. */
export function vtepPool(cidr: string): string[] {
  const bits = /\/(\d+)$/.exec(cidr)?.[1];
  if (bits === undefined || Number(bits) < 16 || Number(bits) > 30) throw new Error(`VTEP pool ${cidr}: expected an IPv4 network from /16 to /30`);
  try {
    return hostAddressesOf(cidr);
  } catch {
    throw new Error(`VTEP pool ${cidr}: expected an IPv4 network from /16 to /30`);
  }
}

/**
 * What the control plane is made of, wherever it runs: `corral server`
 * hands in its stand-ins' clients and its data folder's keys, the Lambda
 * entry points (@corral/aws) the real services' and the deployment's.
 */
export interface PlaneParts {
  db: DynamoDBClient;
  table: string;
  sqs: SQSClient;
  /** What an agent is told to reach SQS with (the stand-in's endpoint, or none on AWS). */
  sqsConfig: SqsConfig & { region: string };
  controlQueueUrl: string;
  /** Host queues are named `PREFIX-host-ID.fifo`. */
  queuePrefix: string;
  keys: ControlKeys;
  masterKey: MasterKey;
  adminToken: string;
  /** Wakes long-polls in this process (see ChangeFeed); another process's writes are seen when the wait times out into a read. */
  feed: ChangeFeed;
  /**
   * This plane is its table's only writer and the only API (the embedded
   * server): the states it keeps are current (see EventStoreOptions.soleWriter),
   * and it counts requests against the rate limits in memory.
   */
  soleWriter?: boolean;
  /** Host queue visibility timeout: how long a step taken by a dead agent waits. */
  visibilitySeconds: number;
  /** When this control plane started where no heartbeat could reach it (the embedded server); unset on AWS (see ControllerOptions). */
  heardSince?: number;
  hostTimeoutMs?: number;
  resendAfterMs?: number;
  /** How often the reconcile tick reads every stack (see ControllerOptions.fullSweepMs). */
  fullSweepMs?: number;
  reconcileMs?: number;
  orphanGraceMs?: number;
  /** Test switch: every queue message is sent twice. */
  duplicateMessages?: boolean;
  /** Each token's mutating requests allowed per minute (see ApiDeps.limits). */
  mutationsPerMinute?: number;
  policy?: SitePolicy;
  /** The cross-host overlay's pools (defaults 10.128.0.0/12 for stack subnets, 10.127.0.0/16 for VTEPs). */
  overlayPool?: string;
  vtepPool?: string;
  /** Where the control queue's opener remembers handled envelopes beyond this process (see ReplayMemory). */
  replays?: ReplayMemory;
  /** The longest an event stream (`/v1/events?follow=1`) stays open (see ApiDeps). */
  maxFollowMs?: number;
  /**
   * Where chat commands' work goes to be run (AWS: a queue with a function of its own, which calls runChatJob):
   * a signed `{kind: "chat-job", id}`, nothing else. Unset: run in this process (the embedded server).
   */
  chatQueueUrl?: string;
  ready?: () => boolean;
  log?: Logger;
}

export interface Plane {
  app: ReturnType<typeof createApi>["app"];
  controller: Controller;
  /** Checks every control queue message's signature: the control plane's own, or a registered host's. */
  opener: Opener;
  store: EventStore;
  hosts: HostStore;
  /** Runs a stored chat command (see PlaneParts.chatQueueUrl). */
  runChatJob: (id: string) => Promise<void>;
}

/** What goes on the chat queue: which stored job to run (the job itself stays in the table, sealed). */
export interface ChatJobMessage {
  kind: "chat-job";
  id: string;
}

/** The API and the controller over one set of stores, queues and keys: what `corral server` and the Lambda functions both run. */
export async function buildPlane(parts: PlaneParts): Promise<Plane> {
  const { db, table, sqs, keys, masterKey, log, chatQueueUrl } = parts;
  // every stack's state kept (a few KB each): the reads of every stack (agents' reconciles, the tick's sweeps, listings)
  // then read each stack's new commits only, not its snapshot too
  const store = new EventStore(db, { table, feed: parts.feed, integrity: hmacIntegrity(keys.commitKey), cacheStacks: 20_000, soleWriter: parts.soleWriter ?? false });
  // every request of an agent and every report it signs is checked against its host's credentials: remembered 5 s
  // (what this plane writes, a registration or a removal, is seen at once; what another function writes, within 5 s)
  const hosts = new HostStore(db, table, { credentialsMs: 5_000 });
  const hostQueue = (id: string) => ensureFifoQueue(sqs, hostQueueName(parts.queuePrefix, id), { visibilityTimeoutSeconds: parts.visibilitySeconds });
  // everything the control plane puts on a queue is signed with its key; hosts know only the public half
  const sender = new QueueSender(sqs, { duplicate: parts.duplicateMessages ?? false, signer: signer(CONTROL, keys.privateKey) });
  const opener = new Opener({
    me: CONTROL,
    keyOf: async (by, fresh) => {
      if (by === CONTROL) return keys.publicKey;
      const host = senderHost(by);
      return host ? (await hosts.publicKeys(host, Date.now(), fresh)).map(importPublicKey) : undefined;
    },
    ...(parts.replays ? { replays: parts.replays } : {}),
  });
  // the webhooks' waiting deploys are taken up at the end of each reconcile tick (once their stacks are free)
  let drainHooks: () => Promise<void> = async () => {};
  const controller = new Controller({
    store,
    hosts,
    sender,
    afterTick: () => drainHooks(),
    changes: parts.feed,
    ...(parts.heardSince !== undefined ? { heardSince: parts.heardSince } : {}),
    ...(parts.hostTimeoutMs ? { hostStaleMs: parts.hostTimeoutMs } : {}),
    ...(parts.resendAfterMs !== undefined ? { resendAfterMs: parts.resendAfterMs } : {}),
    ...(parts.fullSweepMs !== undefined ? { fullSweepMs: parts.fullSweepMs } : {}),
    ...(log ? { log } : {}),
  });
  const api = createApi({
    ...(parts.ready ? { ready: parts.ready } : {}),
    store,
    hosts,
    // the embedded server holds its data folder alone: a request claimed before it started died with the last one
    idempotency: new IdempotencyStore(db, table, Date.now, CLAIM_LEASE_MS, parts.heardSince),
    leases: new LeaseStore(db, table, Date.now, parts.heardSince),
    // the cross-host stack networks: a /24 per stack and host, a /32 VTEP per host
    overlay: { subnets: new SubnetStore(db, table, subnetPool(parts.overlayPool ?? "10.128.0.0/12")), vteps: new SubnetStore(db, table, vtepPool(parts.vtepPool ?? "10.127.0.0/16")) },
    users: new UserStore(db, table),
    volumes: new VolumeStore(db, table),
    sessions: new SessionStore(db, table),
    // the master key: a file in the data dir (mode 0600), or a KMS key that never leaves KMS
    secrets: new SecretStore(db, table, masterKey),
    registries: new RegistryStore(db, table, masterKey),
    // each revision pins the digest its images' registries give (exact revisions); the site's insecure registries over HTTP
    resolveImage: registryResolver({ insecure: parts.policy?.insecureRegistries ?? [] }),
    hooks: new HookStore(db, table, masterKey),
    chat: new ChatStore(db, table, masterKey),
    chatJobs: new ChatJobStore(db, table, masterKey, Date.now, parts.heardSince),
    ...(chatQueueUrl
      ? {
          dispatchChat: async (id: string) => {
            const body: ChatJobMessage = { kind: "chat-job", id };
            await sender.send(chatQueueUrl, [{ body, to: CONTROL, group: `chat.${id}`, dedupId: `chat.${id}.${Date.now()}` }]);
          },
        }
      : {}),
    // the only API there is (the embedded server) counts in memory: no write to the table per request
    rates: parts.soleWriter ? new MemoryRates() : new RateStore(db, table),
    feed: parts.feed,
    sender,
    controlQueueUrl: parts.controlQueueUrl,
    hostQueue,
    removeHostQueue: (url) => deleteFifoQueue(sqs, url),
    ...(parts.hostTimeoutMs ? { hostStaleMs: parts.hostTimeoutMs } : {}),
    ...(parts.reconcileMs !== undefined ? { agentReconcileMs: parts.reconcileMs } : {}),
    ...(parts.orphanGraceMs !== undefined ? { agentOrphanGraceMs: parts.orphanGraceMs } : {}),
    ...(parts.heardSince !== undefined ? { heardSince: parts.heardSince } : {}),
    ...(parts.maxFollowMs !== undefined ? { maxFollowMs: parts.maxFollowMs } : {}),
    ...(parts.mutationsPerMinute ? { limits: { mutationsPerMinute: parts.mutationsPerMinute } } : {}),
    controlKey: exportPublicKey(keys.publicKey),
    sqs: parts.sqsConfig,
    visibilitySeconds: parts.visibilitySeconds,
    adminToken: parts.adminToken,
    // Idempotency-Key fingerprints: an HMAC under a key derived from the master key (the same on every server, nothing new on disk)
    idempotencyKey: await masterKey.derive("idempotency"),
    ...(parts.policy ? { policy: parts.policy } : {}),
    ...(log ? { log } : {}),
  });
  drainHooks = api.drainHooks;
  return { app: api.app, controller, opener, store, hosts, runChatJob: api.runChatJob };
}
