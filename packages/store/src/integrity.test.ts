import { randomBytes } from "node:crypto";
import { PutItemCommand, UpdateItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDynamo, type StandIn } from "@corral/local";
import type { StackEvent } from "@corral/core";
import { dynamoClient, ensureTable, EventStore, hmacIntegrity, UntrustedCommitError } from "./index.js";

// Commits carry an HMAC under the control plane's key: the table may be
// reachable by more than the control plane, and a forged StepPlanned must
// never become a step an agent runs.
let dynamo: StandIn;
let db: DynamoDBClient;
let signed: EventStore;
let attacker: EventStore;
const TABLE = "corral-integrity";

beforeAll(async () => {
  dynamo = await startDynamo();
  db = dynamoClient({ endpoint: dynamo.endpoint, table: TABLE });
  await ensureTable(db, TABLE);
  signed = new EventStore(db, { table: TABLE, integrity: hmacIntegrity(randomBytes(32)), snapshotEvery: 2 });
  attacker = new EventStore(db, { table: TABLE }); // writes without a key
});
afterAll(() => dynamo.stop());

const created = (stack: string): StackEvent => ({ type: "StackCreated", stack, by: "admin" });
const started = (op: string): StackEvent => ({ type: "OperationStarted", op, kind: "up", revision: 1, by: "admin", source: "cli" });

describe("commit integrity", () => {
  it("reads back what it signed, snapshots included", async () => {
    await signed.append("ok", 0, [created("ok")]);
    await signed.append("ok", 1, [started("op1")]);
    await signed.append("ok", 2, [started("op2")]);
    expect((await signed.load("ok")).version).toBe(3);
    expect((await signed.load("ok")).version).toBe(3); // from the snapshot the first load wrote
  });

  it("refuses a commit written without the key", async () => {
    await signed.append("forged", 0, [created("forged")]);
    await attacker.append("forged", 1, [started("evil")]);
    await expect(signed.load("forged")).rejects.toThrow(UntrustedCommitError);
    await expect(signed.load("forged")).rejects.toThrow(/stack forged: commit 2 was not written by this control plane/);
  });

  it("refuses a signed commit whose events were changed", async () => {
    await signed.append("tampered", 0, [created("tampered")]);
    await db.send(
      new UpdateItemCommand({
        TableName: TABLE,
        Key: { pk: { S: "STACK#tampered" }, sk: { S: "v000000000001" } },
        UpdateExpression: "SET events = :e",
        ExpressionAttributeValues: { ":e": { S: JSON.stringify([created("tampered"), started("evil")]) } },
      }),
    );
    await expect(signed.load("tampered")).rejects.toThrow(UntrustedCommitError);
  });

  it("ignores a forged snapshot: the state comes from the signed commits", async () => {
    await signed.append("snap", 0, [created("snap")]);
    const forged = { ...(await signed.load("snap")), version: 1, owner: "mallory" };
    await db.send(new PutItemCommand({ TableName: TABLE, Item: { pk: { S: "STACK#snap" }, sk: { S: "snapshot" }, version: { N: "1" }, state: { S: JSON.stringify(forged) } } }));
    expect((await signed.load("snap")).owner).not.toBe("mallory");
  });
});
