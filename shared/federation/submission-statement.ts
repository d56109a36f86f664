/**
 * What a site signs when it submits an update: the study, round and task, the update's SHA-256 and the
 * charge the site computed. The signature binds the site to exactly that release and that spend, so a
 * coordinator cannot later attribute a different update or a smaller epsilon to it, and the site cannot
 * deny what it sent. The bytes are a fixed-order JSON text behind a domain tag, so that a signature made
 * for one purpose can never be replayed as another.
 */
import nacl from "tweetnacl";

export interface SubmissionStatement {
  studyId: string;
  round: number;
  taskId: string;
  updateSha256: string;
  /** The site's total epsilon (and delta) in the study once this update is counted. */
  epsilon: number;
  delta: number;
}

const DOMAIN = "fedsynth/submission/v1\n";

export function submissionStatementBytes(s: SubmissionStatement): Uint8Array {
  const text = DOMAIN + JSON.stringify([s.studyId, s.round, s.taskId, s.updateSha256, s.epsilon, s.delta]);
  return new TextEncoder().encode(text);
}

export function signSubmission(s: SubmissionStatement, secretKey: Uint8Array): Uint8Array {
  return nacl.sign.detached(submissionStatementBytes(s), secretKey);
}

export function verifySubmission(s: SubmissionStatement, signature: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== nacl.sign.signatureLength || publicKey.length !== nacl.sign.publicKeyLength) return false;
  return nacl.sign.detached.verify(submissionStatementBytes(s), signature, publicKey);
}
