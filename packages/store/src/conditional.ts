import { ConditionalCheckFailedException, PutItemCommand, type AttributeValue, type DynamoDBClient } from "@aws-sdk/client-dynamodb";

const keyIsFree = "attribute_not_exists(pk)";

/** Write an item only if its key is free; false when it was taken. */
export async function putIfAbsent(db: DynamoDBClient, table: string, item: Record<string, AttributeValue>): Promise<boolean> {
  try {
    await db.send(new PutItemCommand({ TableName: table, Item: item, ConditionExpression: keyIsFree }));
    return true;
  } catch (e) {
    if (e instanceof ConditionalCheckFailedException) return false;
    throw e;
  }
}
