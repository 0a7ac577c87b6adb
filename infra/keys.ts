/**
 * The master key for secrets at rest (packages/store `KmsMasterKey`: data keys
 * wrapped with Encrypt/Decrypt under an encryption context, and a
 * GenerateDataKey for the content-MAC key). Linked as `Secrets` with {arn, id}.
 */
const secretsKey = new aws.kms.Key("SecretsKey", {
  description: `corral ${$app.stage}: master key for secrets and registry credentials`,
  enableKeyRotation: true,
  deletionWindowInDays: $app.stage === "prod" ? 30 : 7,
});

new aws.kms.Alias("SecretsKeyAlias", {
  name: `alias/corral-${$app.stage}-secrets`,
  targetKeyId: secretsKey.keyId,
});

export const secrets = new sst.Linkable("Secrets", {
  properties: { arn: secretsKey.arn, id: secretsKey.keyId },
  include: [
    sst.aws.permission({
      actions: ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"],
      resources: [secretsKey.arn],
    }),
  ],
});

/**
 * The control plane's Ed25519 private key (PKCS#8 PEM: what DATA/control.key
 * holds for `corral server`), to bring a key of one's own: `npx sst secret
 * set ControlKey < control.key`. Left empty (the placeholder), the first
 * cold start makes one and keeps it in the table wrapped by the KMS key
 * (packages/aws control-key.ts), never in clear in a function's
 * environment. It signs every message to a host, and the event log's commit
 * MAC key is derived from it: choose once, before the first deploy.
 */
export const controlKey = new sst.Secret("ControlKey", "");

/** The admin's bearer token (DATA/token for `corral server`): `npx sst secret set AdminToken`. */
export const adminToken = new sst.Secret("AdminToken");
