/**
 * Keys for secure aggregation: a site's long-term Ed25519 signing key, which every protocol message is
 * signed with, and fresh per-session X25519 key pairs for agreeing on share-encryption keys and mask seeds.
 *
 * Both use tweetnacl's byte formats (a 32-byte public key; a 64-byte Ed25519 secret key = seed ‖ public
 * key, the same as site-agent/identity.ts keeps), and tweetnacl makes the keys and does X25519.
 * Signing and verifying run on node:crypto's Ed25519 instead: the signatures are the identical RFC 8032
 * bytes (identity.test.ts checks both ways against tweetnacl), but OpenSSL verifies in ~0.2 ms where
 * tweetnacl takes ~12 ms, and the coordinator checks five signed messages per site per round and every
 * site checks two lists of its peers' signatures — at 100 sites that is seconds against minutes.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import nacl from "tweetnacl";
import { FedsynthError } from "../errors.js";

export const SIGNATURE_BYTES = 64;
export const PUBLIC_KEY_BYTES = 32;

export interface SigningKeyPair {
  /** Ed25519 public key, 32 bytes. */
  publicKey: Uint8Array;
  /** Ed25519 secret key in tweetnacl's form: 32-byte seed followed by the public key. */
  secretKey: Uint8Array;
}

export interface AgreementKeyPair {
  /** X25519 public key, 32 bytes. */
  publicKey: Uint8Array;
  /** X25519 secret scalar, 32 bytes. */
  secretKey: Uint8Array;
}

export function generateSigningKeyPair(): SigningKeyPair {
  return nacl.sign.keyPair();
}

export function signingKeyPairFromSeed(seed: Uint8Array): SigningKeyPair {
  if (seed.length !== 32) throw new FedsynthError("invalid-argument", `an Ed25519 seed is 32 bytes, not ${seed.length}`);
  return nacl.sign.keyPair.fromSeed(seed);
}

// DER headers that turn raw RFC 8032 / RFC 7748 key bytes into the PKCS#8 and SPKI forms OpenSSL imports.
const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

const privateKeys = new WeakMap<Uint8Array, KeyObject>();
const publicKeys = new Map<string, KeyObject>();
// A roster is a few hundred keys; the bound only stops an endless stream of strangers from growing it.
const PUBLIC_KEY_CACHE_LIMIT = 4096;

function privateKeyObject(secretKey: Uint8Array): KeyObject {
  if (secretKey.length !== 64) throw new FedsynthError("invalid-argument", `an Ed25519 secret key is 64 bytes (seed ‖ public key), not ${secretKey.length}`);
  let key = privateKeys.get(secretKey);
  if (!key) {
    key = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, secretKey.subarray(0, 32)]), format: "der", type: "pkcs8" });
    privateKeys.set(secretKey, key);
  }
  return key;
}

// The last key imported from each key array (the roster's arrays are checked again and again), with the
// bytes it was imported from: an array whose bytes changed since is looked up afresh.
const lastImported = new WeakMap<Uint8Array, { bytes: Uint8Array; key: KeyObject }>();

function publicKeyObject(publicKey: Uint8Array): KeyObject | undefined {
  if (publicKey.length !== PUBLIC_KEY_BYTES) return undefined;
  const last = lastImported.get(publicKey);
  if (last && bytesEqual(last.bytes, publicKey)) return last.key;
  const key = importedPublicKey(publicKey);
  if (key) lastImported.set(publicKey, { bytes: publicKey.slice(), key });
  return key;
}

function importedPublicKey(publicKey: Uint8Array): KeyObject | undefined {
  const id = Buffer.from(publicKey).toString("hex");
  let key = publicKeys.get(id);
  if (!key) {
    try {
      key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, publicKey]), format: "der", type: "spki" });
    } catch {
      return undefined;
    }
    if (publicKeys.size >= PUBLIC_KEY_CACHE_LIMIT) publicKeys.clear();
    publicKeys.set(id, key);
  }
  return key;
}

export function signDetached(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, message, privateKeyObject(secretKey)));
}

/** False for a wrong signature, a malformed signature or a malformed key: never throws on bad input. */
export function verifyDetached(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_BYTES) return false;
  const key = publicKeyObject(publicKey);
  if (!key) return false;
  try {
    return verify(null, message, key, signature);
  } catch {
    return false;
  }
}

export function generateAgreementKeyPair(): AgreementKeyPair {
  return nacl.box.keyPair();
}

export function agreementPublicKey(secretKey: Uint8Array): Uint8Array {
  if (secretKey.length !== 32) throw new FedsynthError("invalid-argument", `an X25519 secret key is 32 bytes, not ${secretKey.length}`);
  return nacl.scalarMult.base(secretKey);
}

/**
 * X25519. A peer key of small order makes the result all zeros, which anyone could compute; that is
 * refused here rather than turned into a "secret" mask seed or encryption key.
 */
export function agreeSharedSecret(secretKey: Uint8Array, peerPublicKey: Uint8Array): Uint8Array {
  if (secretKey.length !== 32 || peerPublicKey.length !== PUBLIC_KEY_BYTES) {
    throw new FedsynthError("invalid-argument", "X25519 keys are 32 bytes");
  }
  const shared = nacl.scalarMult(secretKey, peerPublicKey);
  let acc = 0;
  for (let i = 0; i < shared.length; i++) acc |= shared[i];
  if (acc === 0) throw new FedsynthError("invalid-argument", "the peer's X25519 public key has small order (the shared secret would be zero)");
  return shared;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}
