/**
 * The optional certificate check of an enrolment entry, when the verifier is given the consortium's CA:
 * the recorded certificate must be issued by that CA, be valid at the enrolment's time (a ledger is
 * read long after certificates expire, so "valid now" would fail every old ledger), and name this very
 * site (its fedsynth:site:<name> identity). Enrolments without a certificate — plaintext development
 * mode — are not checked; nor is the Ed25519 key tied to the certificate, which does not carry it.
 */
import { identityOfPeer } from "../crypto/pki/identity.js";
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
    return null;
  } catch (err) {
    const reason = err instanceof FedsynthError ? err.message : String(err);
    return `the certificate enrolling site "${body.siteName}" does not hold under the given CA: ${reason}`;
  }
}
