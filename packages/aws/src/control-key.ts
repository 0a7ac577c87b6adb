import { generateKeyPairSync } from "node:crypto";
import { ConditionalCheckFailedException, GetItemCommand, PutItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { controlKeysOf, type ControlKeys } from "@corral/local/keys";
import type { MasterKey } from "@corral/store";

const KEY = { pk: { S: "CONTROLKEY" }, sk: { S: "ed25519" } };
const keyIsFree = "attribute_not_exists(pk)";

/**
 * The control plane's keys when no `ControlKey` is given: an Ed25519 key
 * made by the first cold start, kept in the table wrapped by the master key
 * (with KMS: it is opened by a Decrypt only the functions may call). Two
 * cold starts at once both write conditionally: one wins, both use the
 * winner's.
 */
export async function storedControlKeys(db: DynamoDBClient, table: string, masterKey: MasterKey): Promise<ControlKeys> {
  const read = async () => (await db.send(new GetItemCommand({ TableName: table, Key: KEY, ConsistentRead: true }))).Item?.wrapped?.S;
  let wrapped = await read();
  if (!wrapped) {
    const pem = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const made = await masterKey.wrap(Buffer.from(pem));
    try {
      await db.send(new PutItemCommand({ TableName: table, Item: { ...KEY, wrapped: { S: made } }, ConditionExpression: keyIsFree }));
      wrapped = made;
    } catch (e) {
      if (!(e instanceof ConditionalCheckFailedException)) throw e;
      wrapped = await read();
    }
  }
  if (!wrapped) throw new Error(`table ${table}: the control key was written and is not there`);
  return controlKeysOf((await masterKey.unwrap(wrapped)).toString(), `table ${table}, item CONTROLKEY`);
}
