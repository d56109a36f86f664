/**
 * The optional certificate check of an enrolment entry, when the verifier is given the consortium's CA:
 * the recorded certificate must be issued by that CA, be valid at the enrolment's time (a ledger is
 * read long after certificates expire, so "valid now" would fail every old ledger), and name this very
 * site (its fedsynth:site:<name> identity), and certify the very Ed25519 key the enrolment records (its
 * fedsynth-key:ed25519 SAN), so that a coordinator cannot put another key on the ledger in a real
 * certificate's name. Enrolments without a certificate — plaintext development mode — are not checked.
 */
import { identityOfPeer } from "../crypto/pki/identity.js";
import { certifiedSigningKeyHex } from "../crypto/pki/certificates.js";
import { FedsynthError } from "../errors.js";
import type { EnrolmentBody } from "./entry.js";

/** What is wrong with the enrolment's certificate under `caPem`, or null. */
export function enrolmentCertificateProblem(body: EnrolmentBody, at: number, caPem: string): string | null {
  if (body.certificatePem === undefined) return null;
  try {
    const who = identityOfPeer(body.certificatePem, { caPem, now: new Date(at) });
    if (who.kind !== "site" || who.id !== body.siteName) {
      return `the certificate enrolling site "${body.siteName}" identifies ${who.kind} "${who.id}"`;
    }
    const certified = certifiedSigningKeyHex(body.certificatePem);
    const recorded = Buffer.from(body.publicKey, "base64").toString("hex");
    if (certified !== recorded) {
      return certified === undefined
        ? `the certificate enrolling site "${body.siteName}" certifies no signing key, so the key the ledger records for it is not certified by the CA`
        : `the signing key recorded for site "${body.siteName}" is not the one its certificate certifies (${certified.slice(0, 16)}…)`;
    }
    return null;
  } catch (err) {
    const reason = err instanceof FedsynthError ? err.message : String(err);
    return `the certificate enrolling site "${body.siteName}" does not hold under the given CA: ${reason}`;
  }
}
