/// <reference path="./.sst/platform/config.d.ts" />

/**
 * corral on AWS (DESIGN.md, "On AWS"): the table, the control queue and its
 * dead letters, the API behind a function URL, the controller as the control
 * queue's subscriber, the reconcile tick, the chat queue and its function, the master key for secrets and the
 * control plane's signing key. The components live in infra/, one file each.
 *
 * Checked offline by `npm run check:infra` (sst install + tsc); never
 * deployed from CI.
 */
export default $config({
  app(input) {
    return {
      name: "corral",
      removal: input?.stage === "prod" ? "retain" : "remove",
      protect: input?.stage === "prod",
      home: "aws",
      providers: {
        aws: { region: process.env.CORRAL_AWS_REGION ?? "us-east-1" },
      },
    };
  },
  async run() {
    const { table } = await import("./infra/storage");
    const { chat, control, controlDlq } = await import("./infra/queues");
    await import("./infra/keys");
    const { api } = await import("./infra/api");
    await import("./infra/controller");
    await import("./infra/reconcile");
    await import("./infra/chat");
    const { agentPolicy } = await import("./infra/agent-policy");
    return {
      api: api.url,
      table: table.name,
      controlQueue: control.url,
      controlDeadLetterQueue: controlDlq.url,
      chatQueue: chat.url,
      agentPolicy: agentPolicy.arn,
    };
  },
});
