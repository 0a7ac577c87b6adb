import { createHmac } from "node:crypto";
import { GetItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DecryptCommand, EncryptCommand, GenerateDataKeyCommand, type KMSClient } from "@aws-sdk/client-kms";
import { putIfAbsent } from "./conditional.js";
import { deriveKey, type MasterKey } from "./secrets.js";

/** Bound to every wrap: a data key wrapped for corral's secrets opens for nothing else. */
const context = { purpose: "corral-secret" };
const MAC_KEY = { pk: { S: "MASTERKEY" }, sk: { S: "mac" } };

/**
 * The master key on AWS: data keys are wrapped and unwrapped by a KMS key
 * (Encrypt/Decrypt with an encryption context), so the key never leaves KMS.
 * The key for content MACs is a KMS data key, kept wrapped in the table and
 * opened once at start: the same on every server, never stored in clear.
 */
export class KmsMasterKey implements MasterKey {
  private constructor(
    private readonly kms: KMSClient,
    readonly id: string,
    private readonly macKey: Buffer,
  ) {}

  static async open(kms: KMSClient, keyId: string, db: DynamoDBClient, table: string): Promise<KmsMasterKey> {
    const read = async () => (await db.send(new GetItemCommand({ TableName: table, Key: MAC_KEY, ConsistentRead: true }))).Item?.wrapped?.B;
    let wrapped = await read();
    if (!wrapped) {
      const made = await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: "AES_256", EncryptionContext: { purpose: "corral-mac" } }));
      if (!made.CiphertextBlob) throw new Error(`KMS key ${keyId}: GenerateDataKey returned no key`);
      // two servers starting at once: one wins, both use the winner's
      if (!(await putIfAbsent(db, table, { ...MAC_KEY, wrapped: { B: made.CiphertextBlob } }))) wrapped = await read();
      else wrapped = made.CiphertextBlob;
    }
    const opened = await kms.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob: wrapped, EncryptionContext: { purpose: "corral-mac" } }));
    if (!opened.Plaintext) throw new Error(`KMS key ${keyId}: could not open the MAC key`);
    return new KmsMasterKey(kms, keyId, Buffer.from(opened.Plaintext));
  }

  async wrap(dataKey: Buffer): Promise<string> {
    const out = await this.kms.send(new EncryptCommand({ KeyId: this.id, Plaintext: dataKey, EncryptionContext: context }));
    if (!out.CiphertextBlob) throw new Error(`KMS key ${this.id}: Encrypt returned nothing`);
    return Buffer.from(out.CiphertextBlob).toString("base64");
  }

  async unwrap(wrapped: string): Promise<Buffer> {
    const out = await this.kms.send(new DecryptCommand({ KeyId: this.id, CiphertextBlob: Buffer.from(wrapped, "base64"), EncryptionContext: context }));
    if (!out.Plaintext) throw new Error(`KMS key ${this.id}: Decrypt returned nothing`);
    return Buffer.from(out.Plaintext);
  }

  async mac(value: Buffer): Promise<string> {
    return createHmac("sha256", this.macKey).update(value).digest("base64");
  }

  async derive(purpose: string): Promise<Buffer> {
    return deriveKey(this.macKey, purpose);
  }
}
