import { randomBytes } from "node:crypto";
import { ConditionalCheckFailedException, DeleteItemCommand, PutItemCommand, UpdateItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { queryPartition } from "./client.js";
import { open, seal, type MasterKey } from "./secrets.js";

/** A chat command's work, kept until it has run: who asked, as whom, what, and where the answers go. */
export interface ChatJob {
  id: string;
  chatUser: string;
  /** The corral user the chat user was mapped to when they asked. */
  user: string;
  text: string;
  /** Slack's response_url: whoever holds it posts to the channel, so it is sealed like a secret. */
  responseUrl: string;
  created: number;
}

const JOBS = "CHATJOB";
const aadOf = (id: string) => Buffer.from(JSON.stringify(["chat-job", id]));

/**
 * Chat commands whose work runs after Slack was answered (it waits 3 s at
 * most): stored before the answer, taken by one runner at a time (a lease,
 * single-item conditional writes), removed once it has run. What a message
 * that was lost, or a runner that died, would have done is found here again
 * (`due`): nothing a user asked in chat is lost to a crash.
 */
export class ChatJobStore {
  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
    private readonly key: MasterKey,
    private readonly clock: () => number = Date.now,
    /** Leases taken before this (the embedded server's start) died with their process: they are taken over at once. */
    private readonly soleSince?: number,
  ) {}

  async put(job: ChatJob): Promise<void> {
    const dataKey = randomBytes(32);
    const { id, chatUser, user, text, responseUrl } = job;
    await this.db.send(
      new PutItemCommand({
        TableName: this.table,
        Item: {
          pk: { S: JOBS },
          sk: { S: id },
          sealed: { S: seal(dataKey, Buffer.from(JSON.stringify({ chatUser, user, text, responseUrl }), "utf8"), aadOf(id)) },
          wrappedKey: { S: await this.key.wrap(dataKey) },
          created: { N: String(job.created) },
          until: { N: "0" },
          claimed: { N: "0" },
        },
        ConditionExpression: "attribute_not_exists(pk)",
      }),
    );
  }

  /** The job, leased to the caller for `leaseMs`; undefined when it is gone (done) or another runner holds it. */
  async take(id: string, leaseMs: number): Promise<ChatJob | undefined> {
    const now = this.clock();
    let item;
    try {
      item = (
        await this.db.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key: { pk: { S: JOBS }, sk: { S: id } },
            UpdateExpression: "SET #until = :until, claimed = :now ADD attempts :one",
            ConditionExpression: "attribute_exists(pk) AND (#until < :now OR claimed < :sole)",
            ExpressionAttributeNames: { "#until": "until" },
            ExpressionAttributeValues: { ":until": { N: String(now + leaseMs) }, ":now": { N: String(now) }, ":sole": { N: String(this.soleSince ?? 0) }, ":one": { N: "1" } },
            ReturnValues: "ALL_NEW",
          }),
        )
      ).Attributes;
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException) return undefined;
      throw e;
    }
    if (!item?.sealed?.S || !item.wrappedKey?.S) return undefined;
    const plain = JSON.parse(open(await this.key.unwrap(item.wrappedKey.S), item.sealed.S, aadOf(id)).toString("utf8")) as Omit<ChatJob, "id" | "created">;
    return { id, ...plain, created: Number(item.created?.N ?? 0) };
  }

  async done(id: string): Promise<void> {
    await this.db.send(new DeleteItemCommand({ TableName: this.table, Key: { pk: { S: JOBS }, sk: { S: id } } }));
  }

  /** Jobs no runner holds that were made at least `olderThanMs` ago (their message may be lost): ids, oldest first. */
  async due(olderThanMs: number): Promise<string[]> {
    const now = this.clock();
    const items = await queryPartition(this.db, this.table, JOBS);
    return items
      .filter((i) => Number(i.created?.N ?? 0) <= now - olderThanMs && (Number(i.until?.N ?? 0) < now || Number(i.claimed?.N ?? 0) < (this.soleSince ?? 0)))
      .sort((a, b) => Number(a.created?.N ?? 0) - Number(b.created?.N ?? 0))
      .map((i) => i.sk?.S ?? "");
  }
}
