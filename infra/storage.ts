/**
 * The single table (packages/store `ensureTable`): string keys `pk` (hash) and
 * `sk` (range), no secondary indexes (the stores only Get, Put, Update, Delete
 * and Query on pk). Items that expire carry `expiresAt`, which DynamoDB's TTL
 * deletes once it is in the past: TTL reads epoch SECONDS, which is what the
 * idempotency keys and sessions write; leases and join tokens write epoch
 * milliseconds there (TTL sees those as far in the future and leaves them:
 * their reads check them, leases are deleted on release, a join token when
 * used).
 */
export const table = new sst.aws.Dynamo("Table", {
  fields: {
    pk: "string",
    sk: "string",
  },
  primaryIndex: { hashKey: "pk", rangeKey: "sk" },
  ttl: "expiresAt",
  deletionProtection: $app.stage === "prod",
  transform: {
    table: {
      pointInTimeRecovery: { enabled: $app.stage === "prod" },
    },
  },
});
