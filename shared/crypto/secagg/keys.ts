/**
 * What two sites derive from one X25519 agreement, and how shares travel and are committed to.
 *
 * Every derivation is salted with the session binding and labelled with its purpose and the sites it is
 * for, so no key or seed serves two purposes, two sessions or two pairs of sites.
 */
import { createHash, createPrivateKey, createPublicKey, diffieHellman, hash, randomBytes, type KeyObject } from "node:crypto";
import nacl from "tweetnacl";
import { FedsynthError } from "../../errors.js";
import { hkdfSha256 } from "../kdf.js";
import type { ShamirShare } from "../shamir.js";
import { ByteWriter } from "./encoding.js";
import { compareSiteIds, PROTOCOL_TAG, type Session } from "./session.js";

export const SHARE_BYTES = 32;
export const COMMITMENT_BYTES = 32;
const NONCE_BYTES = nacl.secretbox.nonceLength;
const PLAINTEXT_BYTES = 1 + 2 * SHARE_BYTES;
/** Nonce ‖ XSalsa20-Poly1305 box of (x ‖ key share ‖ self-mask share). */
export const SEALED_SHARES_BYTES = NONCE_BYTES + PLAINTEXT_BYTES + nacl.secretbox.overheadLength;

export type ShareKind = "key" | "self-mask";

// --- X25519 on OpenSSL ----------------------------------------------------------------------------
//
// The same function as identity.ts's agreeSharedSecret (tweetnacl's scalarMult: RFC 7748 X25519, the
// scalar clamped, the peer's top bit ignored), on node:crypto, where one agreement takes ~0.05 ms rather
// than tweetnacl's ~0.8 ms; a coordinator that removes the pairwise masks of a third of 100 sites does
// ~2,200 of them. keys.test.ts checks the two agree byte for byte, including on non-canonical and
// small-order peer keys. Keys stay in tweetnacl's raw 32-byte form everywhere else.

// DER headers that turn raw RFC 7748 key bytes into the PKCS#8 and SPKI forms OpenSSL imports.
const X25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");
const X25519_SPKI_PREFIX = Buffer.from("302a300506032b656e032100", "hex");
const X25519_BYTES = 32;

/** An X25519 secret key (32 raw bytes) as an OpenSSL key, for x25519Agree. */
export function x25519PrivateKey(secretKey: Uint8Array): KeyObject {
  if (secretKey.length !== X25519_BYTES) throw new FedsynthError("invalid-argument", `an X25519 secret key is 32 bytes, not ${secretKey.length}`);
  return createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, secretKey]), format: "der", type: "pkcs8" });
}

/** An X25519 public key (32 raw bytes) as an OpenSSL key, for x25519Agree. */
export function x25519PublicKey(publicKey: Uint8Array): KeyObject {
  if (publicKey.length !== X25519_BYTES) throw new FedsynthError("invalid-argument", "X25519 keys are 32 bytes");
  return createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, publicKey]), format: "der", type: "spki" });
}

/** The public key of an X25519 secret key, 32 raw bytes (tweetnacl's scalarMult.base). */
export function x25519PublicKeyOf(secretKey: KeyObject): Uint8Array {
  const spki = createPublicKey(secretKey).export({ format: "der", type: "spki" });
  return new Uint8Array(spki.subarray(spki.length - X25519_BYTES));
}

/**
 * X25519(secret, peer), the bytes agreeSharedSecret gives. A peer key of small order would make the
 * result all zeros, which anyone could compute; it is refused, as there.
 */
export function x25519Agree(secretKey: KeyObject, peerPublicKey: KeyObject | Uint8Array): Uint8Array {
  const publicKey = peerPublicKey instanceof Uint8Array ? x25519PublicKey(peerPublicKey) : peerPublicKey;
  let shared: Uint8Array;
  try {
    shared = new Uint8Array(diffieHellman({ privateKey: secretKey, publicKey }));
  } catch {
    // OpenSSL refuses an all-zero result itself.
    shared = new Uint8Array(X25519_BYTES);
  }
  let acc = 0;
  for (let i = 0; i < shared.length; i++) acc |= shared[i];
  if (acc === 0) throw new FedsynthError("invalid-argument", "the peer's X25519 public key has small order (the shared secret would be zero)");
  return shared;
}

function info(label: string, ...sites: string[]): Uint8Array {
  const w = new ByteWriter().string(PROTOCOL_TAG + "/" + label);
  for (const s of sites) w.string(s);
  return w.finish();
}

/** s_uv: the same seed for u and v (sites in protocol order), from X25519(s_sk_u, s_pk_v). */
export function pairwiseSeed(session: Session, sharedSecret: Uint8Array, a: string, b: string): Uint8Array {
  const [lo, hi] = compareSiteIds(a, b) < 0 ? [a, b] : [b, a];
  return hkdfSha256(sharedSecret, session.binding, info("pairwise-mask", lo, hi));
}

/** The key `dealer` encrypts `holder`'s shares under; directional, so the two sites' boxes never share a key. */
export function shareEncryptionKey(session: Session, sharedSecret: Uint8Array, dealer: string, holder: string): Uint8Array {
  return hkdfSha256(sharedSecret, session.binding, info("share-encryption", dealer, holder));
}

export interface HeldShares {
  x: number;
  keyShare: Uint8Array;
  selfMaskShare: Uint8Array;
}

export function sealShares(key: Uint8Array, shares: HeldShares): Uint8Array {
  const plain = new Uint8Array(PLAINTEXT_BYTES);
  plain[0] = shares.x;
  plain.set(shares.keyShare, 1);
  plain.set(shares.selfMaskShare, 1 + SHARE_BYTES);
  const nonce = new Uint8Array(randomBytes(NONCE_BYTES));
  const box = nacl.secretbox(plain, nonce, key);
  plain.fill(0);
  const out = new Uint8Array(SEALED_SHARES_BYTES);
  out.set(nonce);
  out.set(box, NONCE_BYTES);
  return out;
}

/** The shares in a box, or undefined if it was not sealed under `key` or was altered. */
export function openShares(key: Uint8Array, sealed: Uint8Array): HeldShares | undefined {
  if (sealed.length !== SEALED_SHARES_BYTES) return undefined;
  const plain = nacl.secretbox.open(sealed.subarray(NONCE_BYTES), sealed.subarray(0, NONCE_BYTES), key);
  if (!plain) return undefined;
  return { x: plain[0], keyShare: plain.slice(1, 1 + SHARE_BYTES), selfMaskShare: plain.slice(1 + SHARE_BYTES) };
}

/**
 * The dealer's commitment to one share it gave one holder. The dealer signs these, so the coordinator can
 * check every share a holder reveals and tell a lying holder from a lying dealer. Shares are 256-bit
 * values, so the hash reveals nothing a brute-force search could use.
 */
export function shareCommitment(session: Session, kind: ShareKind, dealer: string, holder: string, share: ShamirShare): Uint8Array {
  return new Uint8Array(Buffer.from(commitmentHash(session, kind, dealer, holder, share), "binary"));
}

/** Whether `committed` is shareCommitment(session, kind, dealer, holder, share). */
export function shareCommitmentMatches(session: Session, kind: ShareKind, dealer: string, holder: string, share: ShamirShare, committed: Uint8Array): boolean {
  const digest = commitmentHash(session, kind, dealer, holder, share);
  if (committed.length !== digest.length) return false;
  let diff = 0;
  for (let i = 0; i < digest.length; i++) diff |= digest.charCodeAt(i) ^ committed[i];
  return diff === 0;
}

/**
 * The commitment's SHA-256 as a "binary" (latin1) string, one character per byte: a string lives on V8's heap,
 * where a Buffer of 32 bytes is memory outside it, and 10,000 of those per round made the coordinator
 * collect garbage for the external memory (the hash with a Buffer took ~2× as long as with a string).
 */
function commitmentHash(session: Session, kind: ShareKind, dealer: string, holder: string, share: ShamirShare): string {
  // The bytes of ByteWriter().string(PROTOCOL_TAG + "/share-commitment").fixed(binding).string(kind)
  // .string(dealer).string(holder).u8(x).bytes(y), written straight into one reused buffer from parts
  // encoded once per session (keys.test.ts holds it to that): the coordinator checks n² of these when a
  // round is unmasked, so each costs little more than its SHA-256.
  const parts = commitmentParts(session);
  const head = kind === "key" ? parts.keyHead : parts.selfMaskHead;
  const d = parts.ids.get(dealer) ?? encodeId(dealer);
  const h = parts.ids.get(holder) ?? encodeId(holder);
  const y = share.y;
  const length = head.length + d.length + h.length + 1 + 4 + y.length;
  if (scratch.length < length) scratch = new Uint8Array(Math.max(length, 2 * scratch.length));
  const buf = scratch;
  buf.set(head, 0);
  let p = head.length;
  buf.set(d, p);
  p += d.length;
  buf.set(h, p);
  p += h.length;
  buf[p] = share.x & 0xff;
  buf[p + 1] = y.length >>> 24;
  buf[p + 2] = (y.length >>> 16) & 0xff;
  buf[p + 3] = (y.length >>> 8) & 0xff;
  buf[p + 4] = y.length & 0xff;
  p += 5;
  buf.set(y, p);
  const digest = hash("sha256", new Uint8Array(buf.buffer, 0, length), "binary");
  // The share is a secret where a dealer commits to the shares it deals: none is left behind.
  buf.fill(0, p, length);
  return digest;
}

let scratch = new Uint8Array(512);

function encodeId(site: string): Uint8Array {
  return new ByteWriter().string(site).finish();
}

interface CommitmentParts {
  keyHead: Uint8Array;
  selfMaskHead: Uint8Array;
  /** The session's site ids as ByteWriter.string writes them (u32 length ‖ UTF-8); a message may name others. */
  ids: Map<string, Uint8Array>;
}

const commitmentPartsOf = new WeakMap<Session, CommitmentParts>();

function commitmentParts(session: Session): CommitmentParts {
  let parts = commitmentPartsOf.get(session);
  if (!parts) {
    const head = (kind: ShareKind) => new ByteWriter().string(PROTOCOL_TAG + "/share-commitment").fixed(session.binding).string(kind).finish();
    parts = { keyHead: head("key"), selfMaskHead: head("self-mask"), ids: new Map(session.sites.map((site) => [site, encodeId(site)])) };
    commitmentPartsOf.set(session, parts);
  }
  return parts;
}

/** The commitment to a self-mask seed b_u that its reconstruction is checked against. */
export function selfMaskCommitment(session: Session, site: string, seed: Uint8Array): Uint8Array {
  const w = new ByteWriter().string(PROTOCOL_TAG + "/self-mask-commitment").fixed(session.binding).string(site).bytes(seed);
  return new Uint8Array(createHash("sha256").update(w.finish()).digest());
}
