import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDynamo, type StandIn } from "@corral/local";
import { ChatJobStore, dynamoClient, ensureTable, KeyFileMasterKey } from "./index.js";

let dynamo: StandIn;
const TABLE = "corral-chat-jobs";
const db = () => dynamoClient({ endpoint: dynamo.endpoint, table: TABLE });
const key = new KeyFileMasterKey(join(mkdtempSync(join(tmpdir(), "corral-key-")), "master.key"));
const URL_ = "https://hooks.slack.com/commands/T1/123/very-secret-part";

beforeAll(async () => {
  dynamo = await startDynamo();
  await ensureTable(db(), TABLE);
});
afterAll(async () => {
  await dynamo.stop();
});

describe("chat jobs at rest", () => {
  let now = 1_000_000;
  const clock = () => now;
  const job = (id: string) => ({ id, chatUser: "U123", user: "ann", text: "ps shop", responseUrl: URL_, created: now });

  it("keeps the response_url sealed; one runner at a time takes a job, another after its lease ran out; gone once done", async () => {
    const jobs = new ChatJobStore(db(), TABLE, key, clock);
    await jobs.put(job("j1"));
    await expect(jobs.put(job("j1"))).rejects.toThrow(); // an id is given once
    expect(JSON.stringify((await db().send(new ScanCommand({ TableName: TABLE }))).Items)).not.toContain("very-secret-part");
    expect(await jobs.take("j1", 60_000)).toEqual(job("j1"));
    expect(await jobs.take("j1", 60_000)).toBeUndefined(); // held
    now += 60_001;
    expect((await jobs.take("j1", 60_000))?.text).toBe("ps shop"); // its runner died: taken again
    await jobs.done("j1");
    expect(await jobs.take("j1", 60_000)).toBeUndefined();
    expect(await jobs.take("no-such-job", 60_000)).toBeUndefined();
  });

  it("due: jobs nobody holds, made a while ago (their message may be lost), oldest first", async () => {
    const jobs = new ChatJobStore(db(), TABLE, key, clock);
    await jobs.put(job("j2"));
    now += 1000;
    await jobs.put(job("j3"));
    await jobs.put(job("j4"));
    expect(await jobs.due(500)).toEqual(["j2"]);
    now += 1000;
    await jobs.take("j3", 60_000);
    expect(await jobs.due(500)).toEqual(["j2", "j4"]);
    // a server started after j3 was taken: that lease died with the last process, and j3 is due again at once
    const restarted = new ChatJobStore(db(), TABLE, key, clock, now + 1);
    now += 2;
    expect(await restarted.due(500)).toEqual(["j2", "j3", "j4"]);
    expect((await restarted.take("j3", 60_000))?.id).toBe("j3");
    expect(await restarted.take("j3", 60_000)).toBeUndefined();
    for (const id of ["j2", "j3", "j4"]) await jobs.done(id);
    expect(await jobs.due(0)).toEqual([]);
  });
});
