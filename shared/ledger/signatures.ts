/**
 * Who signs what in the ledger (Ed25519, RFC 8032, via shared/crypto/identity.ts):
 *
 *  - A site signs each of its charges: the bytes `fedsynth/ledger/charge/v1\n` followed by the RFC 8785
 *    encoding of the ChargeStatement (entry.body.charge). Nothing about the chain is in it, so the site
 *    signs before it sends the update, and the coordinator can neither attribute a different update or
 *    a smaller epsilon to the site nor invent a charge, wherever it puts the entry.
 *  - The coordinator signs heads: `fedsynth/ledger/head/v1\n` followed by the head entry's hash (hex).
 *    That hash covers the head's prevHash, hence every entry before it back to the genesis entry, whose
 *    ledgerId and coordinator key make the hash specific to this one ledger.
 *
 * The domain tags keep a signature made for one purpose from ever passing for another, including the
 * submission statements of shared/federation/submission-statement.ts.
 */
import { signDetached, verifyDetached } from "../crypto/identity.js";
import { canonicalize } from "./canonical-json.js";
import { decodeBase64Strict, encodeBase64 } from "./base64.js";
import type { ChargeStatement, SignedCharge } from "./entry.js";

const CHARGE_DOMAIN = "fedsynth/ledger/charge/v1\n";
const HEAD_DOMAIN = "fedsynth/ledger/head/v1\n";

export const PUBLIC_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;

/** The exact bytes a site signs for a charge (`statementText`: canonicalize(charge), if already made). */
export function chargeSigningBytes(charge: ChargeStatement, statementText = canonicalize(charge)): Uint8Array {
  return Buffer.from(CHARGE_DOMAIN + statementText, "utf8");
}

/** The exact bytes the coordinator signs for a head entry with this hash. */
export function headSigningBytes(headHash: string): Uint8Array {
  return Buffer.from(HEAD_DOMAIN + headHash, "utf8");
}

/** The site's side: sign a charge statement with its Ed25519 secret key (tweetnacl's 64-byte form). */
export function signCharge(charge: ChargeStatement, siteSecretKey: Uint8Array): SignedCharge {
  return { charge, siteSignature: encodeBase64(signDetached(chargeSigningBytes(charge), siteSecretKey)) };
}

export function signHead(headHash: string, coordinatorSecretKey: Uint8Array): string {
  return encodeBase64(signDetached(headSigningBytes(headHash), coordinatorSecretKey));
}

/** False for a wrong or malformed signature or key (base64 text, checked strictly); never throws. */
export function verifyChargeSignature(charge: ChargeStatement, signature: unknown, publicKey: unknown): boolean {
  return verifySignatureText(chargeSigningBytes(charge), signature, publicKey);
}

export function verifyHeadSignature(headHash: string, signature: unknown, publicKey: unknown): boolean {
  return verifySignatureText(headSigningBytes(headHash), signature, publicKey);
}

/** How one Ed25519 signature over `message` is checked (signature and key as base64 text). */
export type SignatureCheck = (message: Uint8Array, signature: unknown, publicKey: unknown) => boolean;

/** The bytes of a signature's base64 text, if it is one (strict). */
export function decodeSignature(text: unknown): Uint8Array | undefined {
  return decodeBase64Strict(text, SIGNATURE_BYTES);
}

/** The bytes of a public key's base64 text, if it is one (strict). */
export function decodePublicKey(text: unknown): Uint8Array | undefined {
  return decodeBase64Strict(text, PUBLIC_KEY_BYTES);
}

/** The SignatureCheck that verifies at once: false for a wrong or malformed signature or key, never throws. */
export function verifySignatureText(message: Uint8Array, signature: unknown, publicKey: unknown): boolean {
  const sig = decodeSignature(signature);
  const key = decodePublicKey(publicKey);
  return sig !== undefined && key !== undefined && verifyDetached(message, sig, key);
}
