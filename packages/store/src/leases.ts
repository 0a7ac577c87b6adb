import { randomBytes } from "node:crypto";
import { ConditionalCheckFailedException, DeleteItemCommand, PutItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";

const keyIsFree = "attribute_not_exists(pk)";
const leaseRanOut = "expiresAt < :now";
const heldByMe = "holder = :me";

/** The lease could not be had in time: someone else holds it (and keeps renewing it, or holds it long). */
export class LeaseBusyError extends Error {
  constructor(readonly lease: string) {
    super(`${lease} is busy: another request holds it; try again`);
    this.name = "LeaseBusyError";
  }
}

export interface LeaseOptions {
  /** How long a holder may keep it before others may take it (a holder that crashed gives it up so). */
  leaseMs?: number;
  /** How long to wait for it before giving up with LeaseBusyError. */
  waitMs?: number;
}

/**
 * A mutual exclusion across processes (API instances, Lambdas), as one item
 * written only if free or run out: the same on DynamoDB and on dynalite
 * (single-item conditional writes). Used where a decision reads many stacks
 * and writes one, so that two such decisions do not both act on what the
 * other has not written yet: host ports given out to slots.
 */
export class LeaseStore {
  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
    private readonly clock: () => number = Date.now,
    /**
     * This process is the only one taking leases, since this time (the embedded server): a lease taken before
     * it was taken by a process that is gone (SIGKILLed holding it), and is free now, not when it runs out.
     */
    private readonly soleSince?: number,
  ) {}

  #key(name: string) {
    return { pk: { S: `LEASE#${name}` }, sk: { S: "lease" } };
  }

  /** Run `fn` holding the lease `name`; released after, whatever `fn` did. */
  async with<T>(name: string, fn: () => Promise<T>, { leaseMs = 30_000, waitMs = 20_000 }: LeaseOptions = {}): Promise<T> {
    const me = randomBytes(12).toString("base64url");
    const deadline = this.clock() + waitMs;
    for (let pause = 5; !(await this.#take(name, me, leaseMs)); pause = Math.min(pause * 2, 100)) {
      if (this.clock() >= deadline) throw new LeaseBusyError(name);
      await new Promise((r) => setTimeout(r, pause + Math.random() * pause));
    }
    try {
      return await fn();
    } finally {
      await this.#give(name, me);
    }
  }

  async #take(name: string, me: string, leaseMs: number): Promise<boolean> {
    const now = this.clock();
    try {
      await this.db.send(
        new PutItemCommand({
          TableName: this.table,
          Item: { ...this.#key(name), holder: { S: me }, expiresAt: { N: String(now + leaseMs) }, takenAt: { N: String(now) } },
          ConditionExpression: this.soleSince === undefined ? `${keyIsFree} OR ${leaseRanOut}` : `${keyIsFree} OR ${leaseRanOut} OR attribute_not_exists(takenAt) OR takenAt < :since`,
          ExpressionAttributeValues: { ":now": { N: String(now) }, ...(this.soleSince === undefined ? {} : { ":since": { N: String(this.soleSince) } }) },
        }),
      );
      return true;
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException) return false;
      throw e;
    }
  }

  async #give(name: string, me: string): Promise<void> {
    try {
      await this.db.send(new DeleteItemCommand({ TableName: this.table, Key: this.#key(name), ConditionExpression: heldByMe, ExpressionAttributeValues: { ":me": { S: me } } }));
    } catch (e) {
      if (!(e instanceof ConditionalCheckFailedException)) throw e; // run out and taken by another: theirs now
    }
  }
}
