import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, QueryCommand, ResourceNotFoundException, type AttributeValue, type DynamoDBClientConfig } from "@aws-sdk/client-dynamodb";

export interface DynamoConfig {
  /** Override for local stand-ins (dynalite); unset on AWS. */
  endpoint?: string;
  region?: string;
  table: string;
  /** SDK options that reach a stand-in another way (a Unix socket: see the queue package's standInOptions). */
  sdk?: Pick<DynamoDBClientConfig, "endpoint" | "credentials" | "requestHandler">;
}

/** A DynamoDB client: with an endpoint for the local stand-in, from the environment on AWS. */
export function dynamoClient(config: DynamoConfig): DynamoDBClient {
  return new DynamoDBClient({
    region: config.region ?? process.env.AWS_REGION ?? "us-east-1",
    ...(config.endpoint
      ? { endpoint: config.endpoint, credentials: { accessKeyId: "corral", secretAccessKey: "corral" } }
      : {}),
    ...config.sdk,
  });
}

/** Create the single table (pk, sk strings) unless it exists. On AWS, SST declares it instead. */
export async function ensureTable(client: DynamoDBClient, table: string): Promise<void> {
  try {
    await client.send(new DescribeTableCommand({ TableName: table }));
    return;
  } catch (e) {
    if (!(e instanceof ResourceNotFoundException)) throw e;
  }
  await client.send(
    new CreateTableCommand({
      TableName: table,
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [
        { AttributeName: "pk", AttributeType: "S" },
        { AttributeName: "sk", AttributeType: "S" },
      ],
      KeySchema: [
        { AttributeName: "pk", KeyType: "HASH" },
        { AttributeName: "sk", KeyType: "RANGE" },
      ],
    }),
  );
  for (let i = 0; i < 100; i++) {
    const d = await client.send(new DescribeTableCommand({ TableName: table }));
    if (d.Table?.TableStatus === "ACTIVE") return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`table ${table} did not become active`);
}

/** Every item of one partition (those whose sort key begins with `prefix`, when given), read consistently, page by page. */
export async function queryPartition(db: DynamoDBClient, table: string, pk: string, prefix?: string): Promise<Array<Record<string, AttributeValue>>> {
  const out: Array<Record<string, AttributeValue>> = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await db.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: prefix ? "pk = :pk AND begins_with(sk, :prefix)" : "pk = :pk",
        ExpressionAttributeValues: { ":pk": { S: pk }, ...(prefix ? { ":prefix": { S: prefix } } : {}) },
        ConsistentRead: true,
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    out.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return out;
}
