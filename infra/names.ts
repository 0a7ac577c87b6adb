/**
 * Physical names shared by the infrastructure and the code that runs on it.
 *
 * The control plane makes one FIFO queue per host at runtime (when a host
 * registers: packages/queue `hostQueueName(prefix, id)` = `PREFIX-host-ID.fifo`,
 * and its dead-letter twin `PREFIX-host-ID-dlq.fifo`), so the functions get the
 * prefix in `CORRAL_QUEUE_PREFIX` and IAM grants on `PREFIX-host-*`. The
 * control queue follows the same scheme (`controlQueueName(prefix)` =
 * `PREFIX-control.fifo`, dead letters in `PREFIX-control-dlq.fifo`, what
 * packages/queue `deadLetterUrlOf` expects), so its name is fixed too rather
 * than left to SST's generated one.
 *
 * One prefix per stage: `corral-STAGE`. SQS names are at most 80 characters,
 * so a host id may have at most 80 - len("corral-STAGE-host-") - len("-dlq.fifo")
 * characters on AWS (58 - len(STAGE)).
 */
export const queuePrefix = () => `${$app.name}-${$app.stage}`;

export const controlQueueName = () => `${queuePrefix()}-control.fifo`;
export const controlDeadLetterName = () => `${queuePrefix()}-control-dlq.fifo`;
export const chatQueueName = () => `${queuePrefix()}-chat.fifo`;

/** Every host queue and its dead-letter queue: `PREFIX-host-ID.fifo`, `PREFIX-host-ID-dlq.fifo`. */
export const hostQueuesPattern = () => `${queuePrefix()}-host-*.fifo`;

/** The ARN of SQS queues named like `name` (may hold `*`) in this stage's account and region. */
export function queueArn(name: string) {
  here ??= { region: aws.getRegionOutput().region, account: aws.getCallerIdentityOutput().accountId };
  return $interpolate`arn:aws:sqs:${here.region}:${here.account}:${name}`;
}
let here: { region: $util.Output<string>; account: $util.Output<string> } | undefined;
