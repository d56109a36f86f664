/**
 * The site's identity, kept in DATA_DIR/identity/ and nowhere else: its TLS key and certificate (the key
 * is made here and never leaves), the consortium CA it trusts, the coordinator certificate it pinned, and
 * the Ed25519 key that signs its submissions. Private keys are written owner-read-only.
 */
import { existsSync, readFileSync } from "node:fs";
import { writeFileAtomic, writePrivateFile } from "../shared/util/files.js";
import { join } from "node:path";
import nacl from "tweetnacl";
import { FedsynthError } from "../shared/errors.js";

export interface SigningKey {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

export interface SiteTls {
  caPem: string;
  certPem: string;
  keyPem: string;
  /** SHA-256 fingerprint of the coordinator certificate the site saw when it enrolled. */
  coordinatorFingerprint: string;
}

export interface EnrolledIdentity {
  siteName: string;
  coordinator: string;
  enrolledAt: string;
  caFingerprint: string;
  coordinatorFingerprint: string;
}

const FILES = {
  ca: "ca.pem",
  cert: "cert.pem",
  key: "key.pem",
  signing: "signing-key",
  enrolment: "enrolment.json",
};

export function identityDir(dataDir: string): string {
  return join(dataDir, "identity");
}

/** The site's signing key, created on first use (in plaintext development mode there is no enrolment to make it). */
export function loadOrCreateSigningKey(dataDir: string): SigningKey {
  const path = join(identityDir(dataDir), FILES.signing);
  if (existsSync(path)) {
    const secretKey = Buffer.from(readFileSync(path, "utf8").trim(), "base64");
    if (secretKey.length !== nacl.sign.secretKeyLength) {
      throw new FedsynthError("invalid-argument", `${path} is not an Ed25519 signing key`, { hint: "restore it from the site's backup, or enrol the site again" });
    }
    return nacl.sign.keyPair.fromSecretKey(new Uint8Array(secretKey));
  }
  const key = nacl.sign.keyPair();
  writePrivateFile(path, Buffer.from(key.secretKey).toString("base64") + "\n");
  return key;
}

export function hasTlsIdentity(dataDir: string): boolean {
  return existsSync(join(identityDir(dataDir), FILES.enrolment));
}

export function loadTlsIdentity(dataDir: string): { tls: SiteTls; enrolment: EnrolledIdentity } {
  const dir = identityDir(dataDir);
  const read = (name: string) => {
    const path = join(dir, name);
    if (!existsSync(path)) {
      throw new FedsynthError("not-found", `the site's identity is incomplete: ${path} is missing`, { hint: "enrol the site again with fedsynth site enroll" });
    }
    return readFileSync(path, "utf8");
  };
  const enrolment = JSON.parse(read(FILES.enrolment)) as EnrolledIdentity;
  return {
    tls: { caPem: read(FILES.ca), certPem: read(FILES.cert), keyPem: read(FILES.key), coordinatorFingerprint: enrolment.coordinatorFingerprint },
    enrolment,
  };
}

/**
 * Writes an enrolment once the coordinator certified the new key: each file atomically (a temporary name,
 * then a rename), the key and its certificate one right after the other, and the record last.
 */
export function saveEnrolment(dataDir: string, files: { caPem: string; certPem: string; keyPem: string }, enrolment: EnrolledIdentity): void {
  const dir = identityDir(dataDir);
  writeFileAtomic(join(dir, FILES.ca), files.caPem);
  writePrivateFile(join(dir, FILES.key), files.keyPem);
  writeFileAtomic(join(dir, FILES.cert), files.certPem);
  // Written last: its presence is what says the site is enrolled.
  writeFileAtomic(join(dir, FILES.enrolment), JSON.stringify(enrolment, null, 2) + "\n");
}
