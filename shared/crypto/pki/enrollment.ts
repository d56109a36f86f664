/**
 * One-time enrolment tokens: the secret an operator hands a site (with the CA's fingerprint) so that
 * the site can trade its CSR for a certificate.
 *
 * Intended flow (the store, the expiry and the one-time check live with the coordinator):
 *   1. Operator: IssueEnrollmentToken(site) → the coordinator calls newEnrollmentToken(), stores only
 *      { tokenHash, siteName, expiresAt, usedAt: null }, and shows the token once, with the CA's
 *      fingerprint. Neither the coordinator's disk nor its logs ever hold the token itself.
 *   2. Hospital IT: `fedsynth site enroll --token fst_… --ca-fingerprint AB:CD:…`; the agent makes its
 *      key and CSR (createSiteKeyAndCsr) and calls Enroll over TLS, trusting the coordinator only if it
 *      presents a CA with that fingerprint.
 *   3. Coordinator, in Enroll (callable without a client certificate): hashEnrollmentToken(token) → look
 *      the record up by hash; refuse if missing, expired, used, or issued for another site; issue the
 *      certificate (issueSiteCertificate) and mark the token used in the same transaction.
 * Looking up by hash is safe against timing probes: what leaks is the timing of a SHA-256 output the
 * prober cannot steer. enrollmentTokenMatches is for comparing with one known record.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { invalidArgument } from "./errors.js";

export const ENROLLMENT_TOKEN_PREFIX = "fst_";
const TOKEN_BYTES = 32;
/** Prefix + base64url of 32 bytes (43 characters, no padding). */
const TOKEN_SHAPE = /^fst_[A-Za-z0-9_-]{43}$/;

/** A fresh token (256 random bits, URL-safe, recognisable by its `fst_` prefix) and the hash to store. */
export function newEnrollmentToken(): { token: string; tokenHash: string } {
  const token = ENROLLMENT_TOKEN_PREFIX + randomBytes(TOKEN_BYTES).toString("base64url");
  return { token, tokenHash: hashEnrollmentToken(token) };
}

/**
 * SHA-256 (hex) of the token — the only form a store keeps. Surrounding whitespace is ignored, since
 * tokens are pasted from terminals and e-mails; anything not shaped like a token is refused here, so
 * that "you pasted the fingerprint instead of the token" is said plainly instead of "unknown token".
 */
export function hashEnrollmentToken(token: string): string {
  const t = token.trim();
  if (!TOKEN_SHAPE.test(t)) {
    const hint = t.startsWith(ENROLLMENT_TOKEN_PREFIX)
      ? "the token looks cut short or altered: copy the whole token the operator gave you"
      : `an enrolment token starts with ${ENROLLMENT_TOKEN_PREFIX}; ask the consortium operator for one (fedsynth site token)`;
    throw invalidArgument(`this is not a fedsynth enrolment token (${t.length} characters${t.startsWith(ENROLLMENT_TOKEN_PREFIX) ? "" : `, no ${ENROLLMENT_TOKEN_PREFIX} prefix`})`, hint);
  }
  return createHash("sha256").update(t, "utf8").digest("hex");
}

/** Whether `token` hashes to `tokenHash`, in time independent of where they differ. */
export function enrollmentTokenMatches(token: string, tokenHash: string): boolean {
  let candidate: string;
  try {
    candidate = hashEnrollmentToken(token);
  } catch {
    return false;
  }
  return constantTimeEqual(candidate, tokenHash.toLowerCase());
}

/**
 * Equality whose running time depends on neither the contents nor (beyond hashing) the lengths:
 * both sides are hashed first, so timingSafeEqual always compares 32 bytes.
 */
export function constantTimeEqual(a: string | Uint8Array, b: string | Uint8Array): boolean {
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  // Hash equality alone would do; the length check only guards the astronomically unlikely collision.
  return timingSafeEqual(ha, hb) && byteLength(a) === byteLength(b);
}

function byteLength(x: string | Uint8Array): number {
  return typeof x === "string" ? Buffer.byteLength(x, "utf8") : x.byteLength;
}
