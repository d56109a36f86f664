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
  // The bytes of ByteWriter().string(PROTOCOL_TAG + "/share-commitment").fixed(binding).string(kind)
  // .string(dealer).string(holder).u8(x).bytes(y), written straight into one buffer (keys.test.ts holds it
  // to that): the coordinator checks n² of these when a round is unmasked.
  const head = commitmentHead(session, kind);
  const dealerBytes = Buffer.byteLength(dealer, "utf8");
  const holderBytes = Buffer.byteLength(holder, "utf8");
  const buf = Buffer.allocUnsafe(head.length + 4 + dealerBytes + 4 + holderBytes + 1 + 4 + share.y.length);
  let p = head.copy(buf, 0);
  p = buf.writeUInt32BE(dealerBytes, p);
  p += buf.write(dealer, p, "utf8");
  p = buf.writeUInt32BE(holderBytes, p);
  p += buf.write(holder, p, "utf8");
  buf[p++] = share.x & 0xff;
  p = buf.writeUInt32BE(share.y.length, p);
  buf.set(share.y, p);
  return new Uint8Array(hash("sha256", buf, "buffer"));
}

const commitmentHeads = new WeakMap<Session, Map<ShareKind, Buffer>>();

function commitmentHead(session: Session, kind: ShareKind): Buffer {
  let heads = commitmentHeads.get(session);
  if (!heads) commitmentHeads.set(session, (heads = new Map()));
  let head = heads.get(kind);
  if (!head) {
    head = Buffer.from(new ByteWriter().string(PROTOCOL_TAG + "/share-commitment").fixed(session.binding).string(kind).finish());
    heads.set(kind, head);
  }
  return head;
}

/** The commitment to a self-mask seed b_u that its reconstruction is checked against. */
export function selfMaskCommitment(session: Session, site: string, seed: Uint8Array): Uint8Array {
  const w = new ByteWriter().string(PROTOCOL_TAG + "/self-mask-commitment").fixed(session.binding).string(site).bytes(seed);
  return new Uint8Array(createHash("sha256").update(w.finish()).digest());
}
