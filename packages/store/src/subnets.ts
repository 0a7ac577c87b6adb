import { createHash } from "node:crypto";
import { ConditionalCheckFailedException, DeleteItemCommand, GetItemCommand, PutItemCommand, QueryCommand, ScanCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";

/** No subnet of the pool is free. */
export class SubnetPoolExhaustedError extends Error {
  constructor(
    readonly stackName: string,
    readonly host: string,
    readonly size: number,
  ) {
    super(`no free subnet for stack ${stackName} on host ${host}: all ${size} of the pool are taken; widen the policy's subnetPool or remove stacks`);
    this.name = "SubnetPoolExhaustedError";
  }
}

/**
 * The subnets of stack networks: each stack gets a subnet of its own on each
 * host it runs on, from one pool for the whole fleet, so that every address
 * of every stack is routable across hosts (the overlay routes a host's
 * subnets to it). Two items per assignment, single-item conditional writes
 * only (as DynamoDB and dynalite both do them):
 *
 * - `STACKNET#stack / host` → the subnet the stack has (or is taking) there;
 * - `SUBNET#cidr / claim` → who holds the subnet: put only if free or already theirs.
 *
 * The first is written before the second, so a process that dies in between
 * leaves a pointer to a subnet it did not claim, which the next assignment
 * claims (or moves on from): nothing is held by nobody, nothing twice.
 */
export class SubnetStore {
  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
    /** The candidate subnets, in pool order. */
    private readonly pool: readonly string[],
  ) {
    if (pool.length === 0) throw new Error("SubnetStore: an empty subnet pool");
  }

  #pointer(stack: string, host: string) {
    return { pk: { S: `STACKNET#${stack}` }, sk: { S: host } };
  }
  #claimKey(subnet: string) {
    return { pk: { S: `SUBNET#${subnet}` }, sk: { S: "claim" } };
  }

  /** The subnet of `stack` on `host`, assigned now if it has none: the same answer every time, and never another's. */
  async assign(stack: string, host: string): Promise<string> {
    // where to start looking: spread by stack and host, so that concurrent assignments seldom meet
    const start = createHash("sha256").update(`${stack}/${host}`).digest().readUInt32BE(0) % this.pool.length;
    for (let round = 0; round < 8; round++) {
      const current = await this.#read(stack, host);
      if (current && (await this.#claim(current, stack, host))) return current;
      let prev = current;
      let moved = false;
      for (let i = 0; i < this.pool.length; i++) {
        const candidate = this.pool[(start + i) % this.pool.length]!;
        if (candidate === current) continue;
        if (!(await this.#point(stack, host, candidate, prev))) {
          moved = true; // another process assigns this stack on this host right now: read again, take what it took
          break;
        }
        prev = candidate;
        if (await this.#claim(candidate, stack, host)) return candidate;
      }
      if (!moved) {
        if (prev !== current) await this.#unpoint(stack, host, prev);
        throw new SubnetPoolExhaustedError(stack, host, this.pool.length);
      }
    }
    throw new Error(`subnet for stack ${stack} on host ${host}: too many concurrent assignments; try again`);
  }

  /** The stack's subnets, by host: what the overlay routes. */
  async ofStack(stack: string): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    let start: Record<string, { S: string }> | undefined;
    do {
      const page = await this.db.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: "pk = :pk",
          ExpressionAttributeValues: { ":pk": { S: `STACKNET#${stack}` } },
          ConsistentRead: true,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const item of page.Items ?? []) {
        const host = item.sk?.S;
        const subnet = item.subnet?.S;
        // only what is claimed counts: a pointer left by a crash mid-assignment routes nothing
        if (host && subnet && (await this.#holder(subnet)) === `${stack}/${host}`) out[host] = subnet;
      }
      start = page.LastEvaluatedKey as Record<string, { S: string }> | undefined;
    } while (start);
    return out;
  }

  /** Give back every subnet of `stack` (it was removed). */
  async release(stack: string): Promise<void> {
    const page = await this.db.send(
      new QueryCommand({ TableName: this.table, KeyConditionExpression: "pk = :pk", ExpressionAttributeValues: { ":pk": { S: `STACKNET#${stack}` } }, ConsistentRead: true }),
    );
    for (const item of page.Items ?? []) {
      const host = item.sk?.S;
      const subnet = item.subnet?.S;
      if (!host) continue;
      if (subnet) await this.#unclaim(subnet, stack, host);
      await this.db.send(new DeleteItemCommand({ TableName: this.table, Key: this.#pointer(stack, host) }));
    }
    if (page.LastEvaluatedKey) await this.release(stack);
  }

  /** Give back the subnet `stack` holds on `host` (a host removed). */
  async releaseOne(stack: string, host: string): Promise<void> {
    const subnet = await this.#read(stack, host);
    if (subnet) await this.#unclaim(subnet, stack, host);
    await this.db.send(new DeleteItemCommand({ TableName: this.table, Key: this.#pointer(stack, host) }));
  }

  /**
   * Who holds the pool's subnets (stack and host): a scan of the whole
   * table, for reclaiming what removed stacks and hosts still hold when the
   * pool runs out (not for every request).
   */
  async holders(): Promise<Array<{ stack: string; host: string }>> {
    const pool = new Set(this.pool);
    const out: Array<{ stack: string; host: string }> = [];
    let start: Record<string, { S: string }> | undefined;
    do {
      const page = await this.db.send(
        new ScanCommand({
          TableName: this.table,
          FilterExpression: "begins_with(pk, :p) AND sk = :claim",
          ExpressionAttributeValues: { ":p": { S: "SUBNET#" }, ":claim": { S: "claim" } },
          ConsistentRead: true,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const item of page.Items ?? []) {
        const subnet = item.pk?.S?.slice("SUBNET#".length);
        const holder = item.holder?.S;
        if (!subnet || !holder || !pool.has(subnet)) continue;
        // host ids have no '/'; stack names might
        const cut = holder.lastIndexOf("/");
        out.push({ stack: holder.slice(0, cut), host: holder.slice(cut + 1) });
      }
      start = page.LastEvaluatedKey as Record<string, { S: string }> | undefined;
    } while (start);
    return out.sort((a, b) => (a.stack === b.stack ? (a.host < b.host ? -1 : 1) : a.stack < b.stack ? -1 : 1));
  }

  async #read(stack: string, host: string): Promise<string | undefined> {
    const got = await this.db.send(new GetItemCommand({ TableName: this.table, Key: this.#pointer(stack, host), ConsistentRead: true }));
    return got.Item?.subnet?.S;
  }

  async #holder(subnet: string): Promise<string | undefined> {
    const got = await this.db.send(new GetItemCommand({ TableName: this.table, Key: this.#claimKey(subnet), ConsistentRead: true }));
    return got.Item?.holder?.S;
  }

  /** Point the stack's host at `subnet`, if the pointer is still what we last saw. */
  async #point(stack: string, host: string, subnet: string, prev: string | undefined): Promise<boolean> {
    try {
      await this.db.send(
        new PutItemCommand({
          TableName: this.table,
          Item: { ...this.#pointer(stack, host), subnet: { S: subnet } },
          ...(prev === undefined
            ? { ConditionExpression: "attribute_not_exists(pk)" }
            : { ConditionExpression: "subnet = :prev", ExpressionAttributeValues: { ":prev": { S: prev } } }),
        }),
      );
      return true;
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException) return false;
      throw e;
    }
  }

  async #unpoint(stack: string, host: string, subnet: string | undefined): Promise<void> {
    if (subnet === undefined) return;
    try {
      await this.db.send(new DeleteItemCommand({ TableName: this.table, Key: this.#pointer(stack, host), ConditionExpression: "subnet = :s", ExpressionAttributeValues: { ":s": { S: subnet } } }));
    } catch (e) {
      if (!(e instanceof ConditionalCheckFailedException)) throw e;
    }
  }

  /** Claim `subnet` for the stack's host: true when it is now (or was already) theirs. */
  async #claim(subnet: string, stack: string, host: string): Promise<boolean> {
    try {
      await this.db.send(
        new PutItemCommand({
          TableName: this.table,
          Item: { ...this.#claimKey(subnet), holder: { S: `${stack}/${host}` } },
          ConditionExpression: "attribute_not_exists(pk) OR holder = :me",
          ExpressionAttributeValues: { ":me": { S: `${stack}/${host}` } },
        }),
      );
      return true;
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException) return false;
      throw e;
    }
  }

  async #unclaim(subnet: string, stack: string, host: string): Promise<void> {
    try {
      await this.db.send(
        new DeleteItemCommand({
          TableName: this.table,
          Key: this.#claimKey(subnet),
          ConditionExpression: "holder = :me",
          ExpressionAttributeValues: { ":me": { S: `${stack}/${host}` } },
        }),
      );
    } catch (e) {
      if (!(e instanceof ConditionalCheckFailedException)) throw e;
    }
  }
}
