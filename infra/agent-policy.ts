import { control } from "./queues";
import { queueArn, queuePrefix } from "./names";

/**
 * The tag that says which host an agent's IAM principal (a role, or a user)
 * runs: `corral-host = ID`, the id it joined as. The policy below names the
 * host's queues through it, so one managed policy serves every host and each
 * principal reaches only its own queue.
 */
export const HOST_TAG = "corral-host";

/** `${aws:PrincipalTag/corral-host}`: an IAM policy variable, resolved by IAM per request, not here. */
const hostId = "${aws:PrincipalTag/" + HOST_TAG + "}";

/**
 * What an agent needs, and nothing more: take, finish and hold (extend the
 * visibility of) the steps on its OWN queue `PREFIX-host-ID.fifo`; move a
 * message that fails its checks to its own `PREFIX-host-ID-dlq.fifo`
 * (packages/queue receiveLoop); send reports to the control queue
 * (packages/agent queueReporter). Without the tag, the variable matches no
 * queue and the agent gets nothing.
 */
export function agentPolicyDocument(hostQueueArn: string, hostDeadLetterArn: string, controlQueueArn: string) {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "OwnHostQueue",
        Effect: "Allow",
        Action: ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"],
        Resource: hostQueueArn,
      },
      {
        Sid: "OwnDeadLetters",
        Effect: "Allow",
        Action: ["sqs:SendMessage"],
        Resource: hostDeadLetterArn,
      },
      {
        Sid: "ReportToControl",
        Effect: "Allow",
        Action: ["sqs:SendMessage"],
        Resource: controlQueueArn,
      },
    ],
  };
}

/** The policy as a managed policy of this stage: attach it to every agent's role or user (tagged `corral-host`). */
export const agentPolicy = new aws.iam.Policy("AgentPolicy", {
  description: `corral ${$app.stage}: a host agent's own queue (by its ${HOST_TAG} tag) and the control queue`,
  policy: $jsonStringify(
    $resolve([queueArn(`${queuePrefix()}-host-${hostId}.fifo`), queueArn(`${queuePrefix()}-host-${hostId}-dlq.fifo`), control.arn]).apply(([own, dead, ctl]) =>
      agentPolicyDocument(own, dead, ctl),
    ),
  ),
});
