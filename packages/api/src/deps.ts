import type { ImageResolver } from "./ops/digests.js";
import type { Logger, SitePolicy } from "@corral/core";
import type { QueueSender } from "@corral/queue";
import type {
  ChangeFeed,
  ChatJobStore,
  ChatStore,
  EventStore,
  HookStore,
  HostStore,
  IdempotencyStore,
  LeaseStore,
  RateStore,
  RegistryStore,
  SecretStore,
  SessionStore,
  SubnetStore,
  UserStore,
  VolumeStore,
} from "@corral/store";
import type { BodyLimits } from "./limits.js";

/** What the API is made of: its stores, queues, keys and bounds (see createApi). */
export interface ApiDeps {
  store: EventStore;
  hosts: HostStore;
  idempotency: IdempotencyStore;
  secrets: SecretStore;
  /** Logins to private registries (`corral registry add`), sealed as secrets are. */
  registries: RegistryStore;
  /**
   * Asks a registry what an image reference names now (ops/digests.ts's
   * registryResolver): each revision `up` makes pins that digest. Unset: no
   * registry is asked, and a revision pins what its first pull gets.
   */
  resolveImage?: ImageResolver;
  users: UserStore;
  volumes: VolumeStore;
  sessions: SessionStore;
  feed: ChangeFeed;
  sender: QueueSender;
  controlQueueUrl: string;
  /** Creates (idempotently) the queue of a host and returns its URL. */
  hostQueue: (hostId: string) => Promise<string>;
  /** What an agent needs to reach SQS. */
  sqs: { endpoint?: string; region: string; socketPath?: string };
  visibilitySeconds: number;
  adminToken: string;
  /** The control plane's public key (SPKI DER, base64), handed to agents at registration. */
  controlKey: string;
  /** Keys the HMAC that fingerprints Idempotency-Key requests (at least 32 bytes; the same on every server, e.g. `masterKey.derive("idempotency")`). */
  idempotencyKey: Buffer;
  policy?: SitePolicy;
  /**
   * Serializes the decisions that give out host ports (up, scale) across
   * every API process: each reads what all stacks hold and writes one
   * stack, so two at once could give the same port. Without it, this
   * process serializes its own (enough for one `corral server`).
   */
  leases?: Pick<LeaseStore, "with">;
  /** The stack networks' subnets and the hosts' VTEPs (the cross-host overlay); absent: no overlay routes. */
  overlay?: { subnets: SubnetStore; vteps: SubnetStore };
  /** A host not heard from for this long is disconnected: nothing new is placed on it (default 30 s, as the controller's). */
  hostStaleMs?: number;
  /** When this control plane started, where no heartbeat could reach it before (see lastHeard): the embedded server's start. */
  heardSince?: number;
  /** Chatops (a Slack slash command): its signing secret and who is who, and the commands whose work is still to run; absent: no chat routes. */
  chat?: ChatStore;
  chatJobs?: ChatJobStore;
  /** Has a stored chat command run (default: at once, in this process; on AWS: through the chat queue). */
  dispatchChat?: (id: string) => Promise<void>;
  /** Webhooks (`corral hook create`) and their deliveries; absent: no webhook routes. */
  hooks?: HookStore;
  /** Deletes a removed host's queue (and its dead-letter queue). */
  removeHostQueue?: (queueUrl: string) => Promise<void>;
  /** Told to agents at registration: how often they reconcile their host, and how long an orphan container stays (unset: the agents' defaults). */
  agentReconcileMs?: number;
  agentOrphanGraceMs?: number;
  /** Request bounds: body sizes (413 past them), and follows (long-polls, event streams) one token may hold at once (429 past it; default 8). */
  limits?: { body?: Partial<BodyLimits>; followsPerToken?: number; mutationsPerMinute?: number };
  /** Counts each token's mutating requests (rate limits, 429 past limits.mutationsPerMinute); absent: none. */
  rates?: Pick<RateStore, "take">;
  /**
   * The longest an event stream (`/v1/events?follow=1`) stays open; then it
   * ends and the client reconnects with `since`. Unset: until the client
   * goes. A function whose response is sent when it ends (Lambda) sets it
   * under its timeout.
   */
  maxFollowMs?: number;
  /** False while the server is still starting (its local agent not yet registered): /healthz answers 503. */
  ready?: () => boolean;
  clock?: () => number;
  log?: Logger;
}
