import { Agent } from "node:http";
import { connect, type Socket } from "node:net";
import { CreateQueueCommand, DeleteQueueCommand, GetQueueAttributesCommand, QueueDoesNotExist, SQSClient } from "@aws-sdk/client-sqs";

export interface SqsConfig {
  /** Override for local stand-ins (fauxqs); unset on AWS. */
  endpoint?: string;
  region?: string;
  /** The stand-in listens on this Unix socket (in a folder only its user may enter), not on a port. */
  socketPath?: string;
}

/**
 * An HTTP agent whose every connection goes to one Unix socket: how the AWS
 * SDK reaches the embedded stand-ins, which listen on sockets in a private
 * folder, so that other local users cannot reach them at all. At most
 * `maxSockets` connections at once, the rest of the requests waiting for one:
 * a burst (a tick over thousands of stacks, hundreds of `up`s a second)
 * opening a connection per request overflows the socket's listen backlog,
 * and the kernel refuses the connect (EAGAIN), failing the request.
 */
export class UnixSocketAgent extends Agent {
  constructor(
    readonly socketPath: string,
    maxSockets = 32,
  ) {
    super({ keepAlive: true, maxSockets });
  }

  override createConnection(_options: unknown, callback?: (error: Error | null, socket: Socket) => void): Socket {
    const socket = connect(this.socketPath);
    callback?.(null, socket);
    return socket;
  }
}

/** SDK options for a local stand-in (an endpoint, or a Unix socket), none on AWS. */
export function standInOptions(config: { endpoint?: string; socketPath?: string }) {
  if (!config.endpoint && !config.socketPath) return {};
  return {
    endpoint: config.endpoint ?? "http://localhost",
    credentials: { accessKeyId: "corral", secretAccessKey: "corral" },
    ...(config.socketPath ? { requestHandler: { httpAgent: new UnixSocketAgent(config.socketPath) } } : {}),
  };
}

export function sqsClient(config: SqsConfig): SQSClient {
  return new SQSClient({ region: config.region ?? process.env.AWS_REGION ?? "us-east-1", ...standInOptions(config) });
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

/** Delete a FIFO queue and its dead-letter queue (those already gone are fine): what was on them goes, and nobody reads them any more. */
export async function deleteFifoQueue(sqs: SQSClient, queueUrl: string): Promise<void> {
  for (const url of [queueUrl, deadLetterUrlOf(queueUrl)]) {
    try {
      await sqs.send(new DeleteQueueCommand({ QueueUrl: url }));
    } catch (e) {
      if (!(e instanceof QueueDoesNotExist) && (e as { name?: string }).name !== "AWS.SimpleQueueService.NonExistentQueue") throw e;
    }
  }
}

export const controlQueueName = (prefix: string) => `${prefix}-control.fifo`;
export const hostQueueName = (prefix: string, host: string) => `${prefix}-host-${host}.fifo`;
