import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ScanCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { KMSClient } from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDynamo, type StandIn } from "@corral/local";
import { dynamoClient, ensureTable, KeyFileMasterKey, KmsMasterKey, SecretStore, type MasterKey } from "./index.js";

/**
 * A KMS stand-in speaking the KMS JSON protocol (Encrypt, Decrypt,
 * GenerateDataKey) to the real SDK client. No KMS emulator ships on npm or in
 * Debian, so this is the one stand-in we wrote ourselves; it checks what real
 * KMS checks (key id, encryption context) and records every request body.
 */
function kmsStandIn(keyId: string) {
  const key = randomBytes(32);
  const bodies: string[] = [];
  const seal = (plain: Buffer, ctx: unknown) => {
    const iv = randomBytes(12);
    const c = createCipheriv("aes-256-gcm", key, iv).setAAD(Buffer.from(JSON.stringify([keyId, ctx])));
    const body = Buffer.concat([c.update(plain), c.final()]);
    return Buffer.concat([iv, c.getAuthTag(), body]).toString("base64");
  };
  const server: Server = createServer((req, res) => {
    let raw = "";
    req.on("data", (d: Buffer) => (raw += d.toString()));
    req.on("end", () => {
      bodies.push(raw);
      const body = JSON.parse(raw) as { KeyId?: string; Plaintext?: string; CiphertextBlob?: string; EncryptionContext?: Record<string, string> };
      const op = String(req.headers["x-amz-target"]).split(".")[1];
      const answer = (status: number, json: unknown) => res.writeHead(status, { "content-type": "application/x-amz-json-1.1" }).end(JSON.stringify(json));
      if (body.KeyId !== keyId) return answer(400, { __type: "NotFoundException", message: `key ${body.KeyId} not found` });
      const ctx = body.EncryptionContext ?? {};
      if (op === "Encrypt") return answer(200, { KeyId: keyId, CiphertextBlob: seal(Buffer.from(body.Plaintext!, "base64"), ctx) });
      if (op === "GenerateDataKey") {
        const plain = randomBytes(32);
        return answer(200, { KeyId: keyId, Plaintext: plain.toString("base64"), CiphertextBlob: seal(plain, ctx) });
      }
      if (op === "Decrypt") {
        try {
          const blob = Buffer.from(body.CiphertextBlob!, "base64");
          const d = createDecipheriv("aes-256-gcm", key, blob.subarray(0, 12)).setAAD(Buffer.from(JSON.stringify([keyId, ctx])));
          d.setAuthTag(blob.subarray(12, 28));
          return answer(200, { KeyId: keyId, Plaintext: Buffer.concat([d.update(blob.subarray(28)), d.final()]).toString("base64") });
        } catch {
          return answer(400, { __type: "InvalidCiphertextException", message: "" });
        }
      }
      return answer(400, { __type: "UnsupportedOperationException", message: op });
    });
  });
  return { server, bodies };
}

let dynamo: StandIn;
const kms = kmsStandIn("alias/corral");
let kmsClient: KMSClient;
const db = () => dynamoClient({ endpoint: dynamo.endpoint, table: "corral-secrets" });

beforeAll(async () => {
  dynamo = await startDynamo();
  await ensureTable(db(), "corral-secrets");
  await new Promise<void>((r) => kms.server.listen(0, "127.0.0.1", () => r()));
  kmsClient = new KMSClient({
    endpoint: `http://127.0.0.1:${(kms.server.address() as AddressInfo).port}`,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
});
afterAll(async () => {
  kmsClient?.destroy();
  kms.server.closeAllConnections();
  await new Promise((r) => kms.server.close(r));
  await dynamo.stop();
});

const adapters: Array<[string, () => Promise<MasterKey>]> = [
  ["a key file", async () => new KeyFileMasterKey(join(mkdtempSync(join(tmpdir(), "corral-key-")), "master.key"))],
  ["a KMS key", () => KmsMasterKey.open(kmsClient, "alias/corral", db(), "corral-secrets")],
];

describe.each(adapters)("secrets sealed under %s", (name, makeKey) => {
  const secret = `${name.replace(/ /g, "-")}.stack.pw`;
  it("keeps versions, knows an unchanged value, and reveals each version", async () => {
    const store = new SecretStore(db(), "corral-secrets", await makeKey());
    expect(await store.put(secret, Buffer.from("one"), "alice", "labs")).toEqual({ kind: "created", version: 1 });
    expect(await store.put(secret, Buffer.from("one"), "alice", "labs")).toEqual({ kind: "unchanged", version: 1 });
    expect(await store.put(secret, Buffer.from("two"), "alice", "labs")).toEqual({ kind: "new-version", version: 2 });
    expect((await store.reveal(secret, 1))?.toString()).toBe("one");
    expect((await store.reveal(secret, 2))?.toString()).toBe("two");
    expect(await store.info(secret)).toMatchObject({ versions: 2, owner: "alice", group: "labs" });
  });

  it("a version whose index update failed (a full disk, a crash between the two writes) does not wedge the next, nor outlive rm", async () => {
    const store = new SecretStore(db(), "corral-secrets", await makeKey());
    const lagging = `${secret}-lag`;
    await store.put(lagging, Buffer.from("one"), "alice", "labs");
    await store.put(lagging, Buffer.from("two"), "alice", "labs");
    // the index as a failed second write leaves it: one version, where two are written
    await db().send(new UpdateItemCommand({ TableName: "corral-secrets", Key: { pk: { S: "SECRETS" }, sk: { S: lagging } }, UpdateExpression: "SET versions = :v", ExpressionAttributeValues: { ":v": { N: "1" } } }));
    expect(await store.put(lagging, Buffer.from("two"), "alice", "labs")).toEqual({ kind: "unchanged", version: 2 });
    expect(await store.put(lagging, Buffer.from("three"), "alice", "labs")).toEqual({ kind: "new-version", version: 3 });
    expect(await store.info(lagging)).toMatchObject({ versions: 3 });
    await db().send(new UpdateItemCommand({ TableName: "corral-secrets", Key: { pk: { S: "SECRETS" }, sk: { S: lagging } }, UpdateExpression: "SET versions = :v", ExpressionAttributeValues: { ":v": { N: "2" } } }));
    await store.remove(lagging);
    const left = await db().send(new ScanCommand({ TableName: "corral-secrets" }));
    expect((left.Items ?? []).filter((i) => i.pk?.S === `SECRET#${lagging}` || i.sk?.S === lagging)).toEqual([]);
  });

  it("stores nothing readable: no value in any item of the table", async () => {
    const store = new SecretStore(db(), "corral-secrets", await makeKey());
    const value = `plain-${name}-${Date.now()}`;
    await store.put(`${secret}2`, Buffer.from(value), "alice", "labs");
    const items = JSON.stringify((await db().send(new ScanCommand({ TableName: "corral-secrets" }))).Items);
    expect(items).toContain(`${secret}2`);
    expect(items).not.toContain(value);
    expect(items).not.toContain(Buffer.from(value).toString("base64"));
  });
});

describe.each(adapters)("keys derived from %s", (_name, makeKey) => {
  it("one 32-byte key per purpose, stable, unlike every other purpose's and unlike the MAC of the purpose's name", async () => {
    const key = await makeKey();
    const idem = await key.derive("idempotency");
    expect(idem).toHaveLength(32);
    expect(await key.derive("idempotency")).toEqual(idem);
    expect(await key.derive("other")).not.toEqual(idem);
    // a secret whose value is the purpose's name stores its MAC in the table: that MAC must not be the derived key
    for (const label of ["idempotency", "corral:idempotency"]) expect(Buffer.from(await key.mac(Buffer.from(label)), "base64")).not.toEqual(idem);
  });
});

describe("the KMS key", () => {
  it("opens the same MAC key on every server, so an unchanged value stays unchanged after a restart", async () => {
    const a = new SecretStore(db(), "corral-secrets", await KmsMasterKey.open(kmsClient, "alias/corral", db(), "corral-secrets"));
    await a.put("restart.stack.pw", Buffer.from("same"), "alice", "labs");
    const b = new SecretStore(db(), "corral-secrets", await KmsMasterKey.open(kmsClient, "alias/corral", db(), "corral-secrets"));
    expect(await b.put("restart.stack.pw", Buffer.from("same"), "alice", "labs")).toEqual({ kind: "unchanged", version: 1 });
    expect((await b.reveal("restart.stack.pw", 1))?.toString()).toBe("same");
  });

  it("sends KMS data keys only, never a secret's value", async () => {
    const store = new SecretStore(db(), "corral-secrets", await KmsMasterKey.open(kmsClient, "alias/corral", db(), "corral-secrets"));
    const value = `kms-never-sees-${Date.now()}`;
    await store.put("seen.stack.pw", Buffer.from(value), "alice", "labs");
    await store.reveal("seen.stack.pw", 1);
    expect(kms.bodies.length).toBeGreaterThan(0);
    expect(kms.bodies.filter((b) => b.includes(Buffer.from(value).toString("base64")) || b.includes(value))).toEqual([]);
  });

  it("a wrong key id is refused by KMS with its message", async () => {
    await expect(KmsMasterKey.open(kmsClient, "alias/other", db(), "corral-secrets")).rejects.toThrow(/alias\/other not found/);
  });
});
