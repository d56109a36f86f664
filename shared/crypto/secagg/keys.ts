/**
 * What two sites derive from one X25519 agreement, and how shares travel and are committed to.
 *
 * Every derivation is salted with the session binding and labelled with its purpose and the sites it is
 * for, so no key or seed serves two purposes, two sessions or two pairs of sites.
 */
import { createHash, randomBytes } from "node:crypto";
import nacl from "tweetnacl";
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
  const w = new ByteWriter().string(PROTOCOL_TAG + "/share-commitment").fixed(session.binding).string(kind).string(dealer).string(holder).u8(share.x).bytes(share.y);
  return new Uint8Array(createHash("sha256").update(w.finish()).digest());
}

/** The commitment to a self-mask seed b_u that its reconstruction is checked against. */
export function selfMaskCommitment(session: Session, site: string, seed: Uint8Array): Uint8Array {
  const w = new ByteWriter().string(PROTOCOL_TAG + "/self-mask-commitment").fixed(session.binding).string(site).bytes(seed);
  return new Uint8Array(createHash("sha256").update(w.finish()).digest());
}
