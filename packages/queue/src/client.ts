import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs";

export interface SqsConfig {
  /** Override for local stand-ins (fauxqs); unset on AWS. */
  endpoint?: string;
  region?: string;
}

export function sqsClient(config: SqsConfig): SQSClient {
  return new SQSClient({
    region: config.region ?? process.env.AWS_REGION ?? "us-east-1",
    ...(config.endpoint
      ? { endpoint: config.endpoint, credentials: { accessKeyId: "corral", secretAccessKey: "corral" } }
      : {}),
  });
}

export interface QueueOptions {
  visibilityTimeoutSeconds?: number;
  /** Messages received this many times go to `NAME-dlq.fifo` (default 5: every queue has a dead-letter queue). */
  maxReceiveCount?: number;
}

/** The dead-letter twin of a queue: `NAME.fifo` -> `NAME-dlq.fifo`, on AWS and on the stand-in alike. */
export const deadLetterUrlOf = (queueUrl: string) => queueUrl.replace(/\.fifo$/, "-dlq.fifo");

/** Create a FIFO queue and its dead-letter queue unless they exist; returns the queue's URL. */
export async function ensureFifoQueue(sqs: SQSClient, name: string, options: QueueOptions = {}): Promise<string> {
  const base = name.replace(/\.fifo$/, "");
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `${base}-dlq.fifo`, Attributes: { FifoQueue: "true" } }));
  const arn = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ["QueueArn"] }));
  const attributes: Record<string, string> = {
    FifoQueue: "true",
    VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? 30),
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn.Attributes?.QueueArn, maxReceiveCount: String(options.maxReceiveCount ?? 5) }),
  };
  const created = await sqs.send(new CreateQueueCommand({ QueueName: `${base}.fifo`, Attributes: attributes }));
  if (!created.QueueUrl) throw new Error(`queue ${name} has no URL`);
  return created.QueueUrl;
}

export const controlQueueName = (prefix: string) => `${prefix}-control.fifo`;
export const hostQueueName = (prefix: string, host: string) => `${prefix}-host-${host}.fifo`;
