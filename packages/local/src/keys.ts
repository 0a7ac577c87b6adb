import { createPrivateKey, createPublicKey, generateKeyPairSync, hkdfSync, type KeyObject } from "node:crypto";
import { join } from "node:path";
import { privateFile } from "@corral/store";

/**
 * The control plane's keys, from one file, DATA/control.key (mode 0600): an
 * Ed25519 private key that signs every message to a host, and, derived from
 * it, the MAC key that signs every commit of the event log. Hosts learn only
 * the public key.
 */
export interface ControlKeys {
  privateKey: KeyObject;
  publicKey: KeyObject;
  commitKey: Buffer;
}

export function controlKeys(dataDir: string): ControlKeys {
  const file = join(dataDir, "control.key");
  const pem = privateFile(file, () => generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString()).toString();
  return controlKeysOf(pem, file);
}

/** The control plane's keys from the PEM (PKCS#8) of its Ed25519 private key; `where` names its source in errors. */
export function controlKeysOf(pem: string, where: string): ControlKeys {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch {
    throw new Error(`${where} is not a PEM private key`);
  }
  if (privateKey.asymmetricKeyType !== "ed25519") throw new Error(`${where} is not an Ed25519 private key`);
  const der = privateKey.export({ type: "pkcs8", format: "der" });
  const commitKey = Buffer.from(hkdfSync("sha256", der, "corral", "event-log commit MAC", 32));
  return { privateKey, publicKey: createPublicKey(privateKey), commitKey };
}
