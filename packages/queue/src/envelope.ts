import { createPublicKey, randomBytes, sign, verify, type KeyObject } from "node:crypto";
import { z } from "zod";

/**
 * Every message corral puts on a queue travels in a signed envelope: who
 * sent it (`control`, or `host:ID`), whom it is for (a host id, or
 * `control`), when it stops being good, and an Ed25519 signature over all of
 * that and the body. The control plane signs what goes to hosts; each host
 * signs its reports with a key of its own, whose public half it gave at
 * registration. A receiver believes nothing it cannot verify.
 */
export const CONTROL = "control";
export const hostSender = (hostId: string) => `host:${hostId}`;
/** The host a sender id names (`host:ID` -> ID), or undefined for the control plane or anything else. */
export const senderHost = (by: string) => (by.startsWith("host:") ? by.slice("host:".length) : undefined);

const envelopeSchema = z
  .object({
    v: z.literal(1),
    by: z.string().min(1).max(80),
    to: z.string().min(1).max(80),
    exp: z.number().int().positive(),
    nonce: z.string().min(8).max(64),
    body: z.string().max(250_000),
    sig: z.string().min(1).max(200),
  })
  .strict();
export type Envelope = z.infer<typeof envelopeSchema>;

const signedBytes = (e: Omit<Envelope, "sig">) => Buffer.from(`corral.v1\n${e.by}\n${e.to}\n${e.exp}\n${e.nonce}\n${e.body}`);

export interface Signer {
  /** Who signs: `control` or `host:ID`. */
  readonly id: string;
  /** The envelope for `body`, addressed to `to`, as the text of a queue message. */
  seal(to: string, body: unknown): string;
}

export interface SignerOptions {
  /** How long a message stays good (default 10 minutes: an unreported step is re-sent, freshly signed, well before). */
  ttlMs?: number;
  clock?: () => number;
}

export function signer(id: string, privateKey: KeyObject, { ttlMs = 10 * 60_000, clock = Date.now }: SignerOptions = {}): Signer {
  return {
    id,
    seal(to, body) {
      const unsigned = { v: 1 as const, by: id, to, exp: clock() + ttlMs, nonce: randomBytes(12).toString("base64url"), body: JSON.stringify(body) };
      return JSON.stringify({ ...unsigned, sig: sign(null, signedBytes(unsigned), privateKey).toString("base64url") });
    },
  };
}

/** A public key as it travels (base64 of the SPKI DER), and back. */
export const exportPublicKey = (key: KeyObject) => key.export({ type: "spki", format: "der" }).toString("base64");
export function importPublicKey(text: string): KeyObject {
  const key = createPublicKey({ key: Buffer.from(text, "base64"), format: "der", type: "spki" });
  if (key.asymmetricKeyType !== "ed25519") throw new Error("not an Ed25519 public key");
  return key;
}

export type Verdict =
  | { ok: true; by: string; body: unknown; sig: string; exp: number }
  | { ok: false; reason: string; replay?: boolean };

/**
 * Where an opener remembers the envelopes it handled, beyond its own
 * memory: for receivers in many processes (Lambda instances), which each
 * see only some of a queue's deliveries.
 */
export interface ReplayMemory {
  seen(sig: string): Promise<boolean>;
  remember(sig: string, exp: number): Promise<void>;
}

export interface OpenerOptions {
  /** Who this receiver is: messages to anyone else are refused. */
  me: string;
  /**
   * The public key of a sender (or the keys: one replaced a moment ago still
   * verifies), or undefined when it is unknown (an answer read, not
   * remembered). Keys it remembers may be stale: when none verifies, it is
   * asked again with `fresh`, to read them.
   */
  keyOf: (by: string, fresh?: boolean) => Promise<KeyObject | KeyObject[] | undefined> | KeyObject | KeyObject[] | undefined;
  clock?: () => number;
  /** Refuse an envelope that claims to stay good longer than this (default 1 hour). */
  maxTtlMs?: number;
  /** Shared memory of handled envelopes (default: this process's only). */
  replays?: ReplayMemory;
}

/**
 * Checks envelopes: shape, addressee, expiry, signature, replay. A message
 * is remembered once handled (`handled`), and the same envelope coming again
 * before it expires is a replay; a message whose handling failed is not
 * remembered, so its redelivery is handled again.
 */
export class Opener {
  readonly #o: OpenerOptions;
  readonly #clock: () => number;
  readonly #seen = new Map<string, number>();

  constructor(options: OpenerOptions) {
    this.#o = options;
    this.#clock = options.clock ?? Date.now;
  }

  async open(raw: string): Promise<Verdict> {
    let parsed: Envelope;
    try {
      const shape = envelopeSchema.safeParse(JSON.parse(raw));
      if (!shape.success) return { ok: false, reason: "not a signed corral envelope" };
      parsed = shape.data;
    } catch {
      return { ok: false, reason: "not JSON" };
    }
    const now = this.#clock();
    if (parsed.to !== this.#o.me) return { ok: false, reason: `addressed to ${parsed.to}, not ${this.#o.me}` };
    if (parsed.exp <= now) return { ok: false, reason: `expired ${new Date(parsed.exp).toISOString()}` };
    if (parsed.exp - now > (this.#o.maxTtlMs ?? 60 * 60_000)) return { ok: false, reason: "claims to stay good too long" };
    const { sig, ...unsigned } = parsed;
    const bytes = signedBytes(unsigned);
    const signature = Buffer.from(sig, "base64url");
    const verifies = (found: KeyObject | KeyObject[] | undefined) =>
      (found === undefined ? [] : Array.isArray(found) ? found : [found]).some((key) => {
        try {
          return verify(null, bytes, key, signature);
        } catch {
          return false;
        }
      });
    const none = (found: KeyObject | KeyObject[] | undefined) => found === undefined || (Array.isArray(found) && found.length === 0);
    const first = await this.#o.keyOf(parsed.by);
    if (!verifies(first)) {
      // what was remembered may be a key replaced a moment ago: the keys as stored now decide (no key at all: the sender is unknown)
      const found = none(first) ? first : await this.#o.keyOf(parsed.by, true);
      if (none(found)) return { ok: false, reason: `unknown sender ${parsed.by}` };
      if (!verifies(found)) return { ok: false, reason: `bad signature for ${parsed.by}` };
    }
    if (this.#seen.has(sig) || (await this.#o.replays?.seen(sig))) return { ok: false, reason: "a replay of a message already handled", replay: true };
    let body: unknown;
    try {
      body = JSON.parse(parsed.body);
    } catch {
      return { ok: false, reason: "body is not JSON" };
    }
    return { ok: true, by: parsed.by, body, sig, exp: parsed.exp };
  }

  /** Remember a message as handled until it expires (here, and in the shared memory when there is one). */
  handled(sig: string, exp: number): Promise<void> | undefined {
    this.#remember(sig, exp);
    return this.#o.replays?.remember(sig, exp);
  }

  #remember(sig: string, exp: number): void {
    this.#seen.set(sig, exp);
    if (this.#seen.size > 20_000) {
      const now = this.#clock();
      for (const [s, e] of this.#seen) if (e <= now) this.#seen.delete(s);
      // still full of live entries: drop the oldest (their expiry still bounds a replay)
      for (const s of this.#seen.keys()) {
        if (this.#seen.size <= 20_000) break;
        this.#seen.delete(s);
      }
    }
  }
}
