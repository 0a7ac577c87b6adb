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
 * holds for `corral server`). It signs every message to a host, and the
 * event log's commit MAC key is derived from it; hosts learn only the
 * public half. Set it with `npx sst secret set ControlKey < control.key`.
 */
export const controlKey = new sst.Secret("ControlKey");

/** The admin's bearer token (DATA/token for `corral server`): `npx sst secret set AdminToken`. */
export const adminToken = new sst.Secret("AdminToken");
