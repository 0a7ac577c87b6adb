import { describe, expect, it, vi } from "vitest";
import { ConfigError, readConfig } from "./config.js";

// What a function's environment holds when SST links the resources to it.
const linked = {
  AWS_REGION: "eu-west-1",
  SST_RESOURCE_Table: JSON.stringify({ name: "corral-prod-TableAbc123" }),
  SST_RESOURCE_Control: JSON.stringify({ url: "https://sqs.eu-west-1.amazonaws.com/123456789012/corral-prod-ControlQueue-abc.fifo" }),
  SST_RESOURCE_ControlDlq: JSON.stringify({ url: "https://sqs.eu-west-1.amazonaws.com/123456789012/corral-prod-ControlDlq-def.fifo" }),
  SST_RESOURCE_Chat: JSON.stringify({ url: "https://sqs.eu-west-1.amazonaws.com/123456789012/corral-prod-ChatQueue-ghi.fifo" }),
  SST_RESOURCE_Secrets: JSON.stringify({ id: "1234abcd-12ab-34cd-56ef-1234567890ab", arn: "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab" }),
  SST_RESOURCE_AdminToken: JSON.stringify({ value: "an-admin-token-of-some-length" }),
};

describe("config", () => {
  it("reads the resources SST links, as Lambda has them", () => {
    expect(readConfig(linked)).toEqual({
      table: "corral-prod-TableAbc123",
      region: "eu-west-1",
      controlQueueUrl: "https://sqs.eu-west-1.amazonaws.com/123456789012/corral-prod-ControlQueue-abc.fifo",
      controlDlqUrl: "https://sqs.eu-west-1.amazonaws.com/123456789012/corral-prod-ControlDlq-def.fifo",
      chatQueueUrl: "https://sqs.eu-west-1.amazonaws.com/123456789012/corral-prod-ChatQueue-ghi.fifo",
      masterKey: { kms: "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab" },
      adminToken: "an-admin-token-of-some-length",
      queuePrefix: "corral",
      visibilitySeconds: 30,
      maxFollowMs: 25_000,
    });
  });

  it("takes a linked control key, and falls back to plain variables", () => {
    const pem = "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----\n";
    expect(readConfig({ ...linked, SST_RESOURCE_ControlKey: JSON.stringify({ value: pem }) }).controlKey).toEqual({ pem, from: "SST_RESOURCE_ControlKey" });
    const plain = readConfig({
      CORRAL_TABLE: "t",
      CORRAL_CONTROL_QUEUE_URL: "http://127.0.0.1:4566/000000000000/c.fifo",
      CORRAL_CHAT_QUEUE_URL: "http://127.0.0.1:4566/000000000000/chat.fifo",
      CORRAL_KMS_KEY_ID: "alias/corral",
      CORRAL_ADMIN_TOKEN: "another-token-0123456789",
      CORRAL_CONTROL_KEY: pem,
      CORRAL_DYNAMO_ENDPOINT: "http://127.0.0.1:8000",
      CORRAL_SQS_ENDPOINT: "http://127.0.0.1:9324",
      CORRAL_QUEUE_PREFIX: "corral-dev",
      CORRAL_RESEND_AFTER_MS: "5000",
    });
    expect(plain).toMatchObject({ table: "t", region: "us-east-1", masterKey: { kms: "alias/corral" }, controlKey: { from: "CORRAL_CONTROL_KEY" }, dynamoEndpoint: "http://127.0.0.1:8000", sqsEndpoint: "http://127.0.0.1:9324", queuePrefix: "corral-dev", resendAfterMs: 5000 });
    expect(plain.controlDlqUrl).toBeUndefined();
    // a linked resource wins over its fallback
    expect(readConfig({ ...linked, CORRAL_TABLE: "other" }).table).toBe("corral-prod-TableAbc123");
  });

  it("names the variable when a value is missing or wrong", () => {
    const without = (name: keyof typeof linked) => Object.fromEntries(Object.entries(linked).filter(([k]) => k !== name));
    const cases: Array<[Record<string, string>, RegExp]> = [
      [without("SST_RESOURCE_Table"), /the table: link the resource Table \(SST_RESOURCE_Table\) or set CORRAL_TABLE/],
      [without("SST_RESOURCE_Control"), /SST_RESOURCE_Control\b.*CORRAL_CONTROL_QUEUE_URL/],
      [without("SST_RESOURCE_Chat"), /the chat queue: link the resource Chat \(SST_RESOURCE_Chat\) or set CORRAL_CHAT_QUEUE_URL/],
      [{ ...linked, SST_RESOURCE_Chat: JSON.stringify({ url: "chat" }) }, /^SST_RESOURCE_Chat: url: Invalid url/],
      [without("SST_RESOURCE_Secrets"), /the master key: .*SST_RESOURCE_Secrets.*CORRAL_KMS_KEY_ID/],
      [without("SST_RESOURCE_AdminToken"), /SST_RESOURCE_AdminToken.*CORRAL_ADMIN_TOKEN/],
      [{ ...linked, SST_RESOURCE_Table: "corral-table" }, /^SST_RESOURCE_Table: not JSON/],
      [{ ...linked, SST_RESOURCE_Table: JSON.stringify({ table: "x" }) }, /^SST_RESOURCE_Table: name: Required/],
      [{ ...linked, SST_RESOURCE_Control: JSON.stringify({ url: "not a url" }) }, /^SST_RESOURCE_Control: url: Invalid url/],
      [{ ...linked, SST_RESOURCE_Secrets: JSON.stringify({}) }, /^SST_RESOURCE_Secrets: value: an id or an arn/],
      [{ ...linked, SST_RESOURCE_AdminToken: JSON.stringify({ value: "short" }) }, /admin token .* at least 16 characters/],
      [{ ...linked, CORRAL_VISIBILITY_SECONDS: "soon" }, /^CORRAL_VISIBILITY_SECONDS: expected a whole number/],
      [{ ...linked, CORRAL_SQS_ENDPOINT: "localhost:9324" }, /^CORRAL_SQS_ENDPOINT: not a URL/],
      [{ ...linked, CORRAL_QUEUE_PREFIX: "a b" }, /^CORRAL_QUEUE_PREFIX:/],
    ];
    for (const [env, message] of cases) {
      expect(() => readConfig(env), String(message)).toThrow(ConfigError);
      expect(() => readConfig(env), String(message)).toThrow(message);
    }
  });

  it("fails a function's invocation with that message, and the next invocation reads the environment again", async () => {
    for (const k of Object.keys(process.env)) if (k.startsWith("SST_RESOURCE_") || k.startsWith("CORRAL_")) vi.stubEnv(k, undefined);
    try {
      vi.resetModules();
      const { handler } = await import("./reconcile.js");
      await expect(handler()).rejects.toThrow(/link the resource Table \(SST_RESOURCE_Table\) or set CORRAL_TABLE/);
      vi.stubEnv("SST_RESOURCE_Table", JSON.stringify({ name: "t" }));
      await expect(handler()).rejects.toThrow(/link the resource Control \(SST_RESOURCE_Control\)/);
    } finally {
      vi.unstubAllEnvs();
    }
  }, 30_000);
});
