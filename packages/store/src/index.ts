export { dynamoClient, ensureTable } from "./client.js";
export type { DynamoConfig } from "./client.js";
export { EventStore, VersionConflictError } from "./event-store.js";
export type { EventStoreOptions } from "./event-store.js";
export { ChangeFeed } from "./feed.js";
export { HostStore } from "./hosts.js";
export type { HostRecord } from "./hosts.js";
export { IdempotencyStore } from "./idempotency.js";
export type { Claim, StoredResponse } from "./idempotency.js";
