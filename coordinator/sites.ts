/**
 * Site identities: enrolment with one-time tokens, certificate issuance, revocation, and the check every
 * agent call goes through. A site's identity is its name, certified by the consortium CA; the coordinator
 * remembers the serial of the one certificate it last issued to each site, so re-enrolling a site or
 * revoking it takes effect on that site's next call without touching any other site's certificate.
 */
import { FedsynthError } from "../shared/errors.js";
import type { Logger } from "../shared/telemetry/log.js";
import type { CoordinatorStore } from "./store/store.js";
import type { SiteRecord } from "./store/records.js";
import { validateSiteName } from "./study/study-request.js";
import { hashEnrollmentToken, newEnrollmentToken } from "../shared/crypto/pki/index.js";
import type { PeerIdentity } from "../shared/crypto/pki/index.js";

export const DEFAULT_TOKEN_TTL_MS = 24 * 3600 * 1000;
export const MAX_TOKEN_TTL_MS = 30 * 24 * 3600 * 1000;
const ED25519_PUBLIC_KEY_BYTES = 32;

/** The consortium CA as the coordinator uses it (shared/crypto/pki behind it). */
export interface CertificateIssuer {
  caPem: string;
  caFingerprint: string;
  coordinatorFingerprint: string;
  /** Certifies the CSR's TLS key and the site's Ed25519 signing key for `siteName`. */
  issueSiteCertificate(csrPem: string, siteName: string, signingPublicKey: Uint8Array): Promise<{ certPem: string; serialHex: string; fingerprint: string }>;
}

/** Who is calling, as the TLS layer proved it (null: no verified client certificate). */
export type { PeerIdentity };

export interface EnrollmentRequest {
  siteName: string;
  agentVersion: string;
  token: string;
  csrPem: string;
  signingPublicKey: Uint8Array;
}

export interface Enrollment {
  site: SiteRecord;
  certPem: string;
  caPem: string;
  coordinatorFingerprint: string;
}

export class SiteRegistry {
  constructor(
    private readonly store: CoordinatorStore,
    private readonly log: Logger,
    private readonly now: () => number,
    private readonly issuer?: CertificateIssuer,
    /** Called inside the store transaction whenever a site's signing key is new or replaced (the ledger records it). */
    private readonly onNewKey: (siteName: string, publicKeyBase64: string, certificatePem?: string) => void = () => undefined,
  ) {}

  /** Whether the coordinator runs with mutual TLS (an issuer) or in plaintext development mode. */
  get secure(): boolean {
    return this.issuer !== undefined;
  }

  issueToken(siteName: string, ttlMs = DEFAULT_TOKEN_TTL_MS): { token: string; expiresAt: number; caFingerprint: string } {
    validateSiteName(siteName);
    const issuer = this.requireIssuer("issue enrolment tokens");
    if (!(ttlMs > 0 && ttlMs <= MAX_TOKEN_TTL_MS)) {
      throw new FedsynthError("invalid-argument", `a token's lifetime must be between 1 second and 30 days, got ${Math.round(ttlMs / 1000)} s`);
    }
    const { token, tokenHash } = newEnrollmentToken();
    const issuedAt = this.now();
    this.store.insertEnrollmentToken({ tokenHash, siteName, issuedAt, expiresAt: issuedAt + ttlMs, usedAt: null });
    this.log.info("enrolment token issued", { site: siteName, expires_at: new Date(issuedAt + ttlMs).toISOString() });
    return { token, expiresAt: issuedAt + ttlMs, caFingerprint: issuer.caFingerprint };
  }

  /** Checks the token, certifies the site's key for the name the token was issued to, and spends the token. */
  async enroll(req: EnrollmentRequest): Promise<Enrollment> {
    const issuer = this.requireIssuer("enrol sites with certificates");
    validateSiteName(req.siteName);
    checkSigningKey(req.signingPublicKey);
    const tokenHash = hashEnrollmentToken(req.token);
    this.checkToken(tokenHash, req.siteName);
    const cert = await issuer.issueSiteCertificate(req.csrPem, req.siteName, req.signingPublicKey);
    const site = this.store.transaction(() => {
      // Checked again inside the transaction: two enrolments racing with one token must not both win.
      this.checkToken(tokenHash, req.siteName);
      this.store.markEnrollmentTokenUsed(tokenHash, this.now());
      const key = Buffer.from(req.signingPublicKey).toString("base64");
      this.onNewKey(req.siteName, key, cert.certPem);
      return this.store.setSiteIdentity(req.siteName, { certSerial: cert.serialHex, certFingerprint: cert.fingerprint, signingPublicKey: key }, req.agentVersion, this.now());
    });
    this.log.info("site enrolled", { site: req.siteName, certificate: cert.fingerprint });
    return { site, certPem: cert.certPem, caPem: issuer.caPem, coordinatorFingerprint: issuer.coordinatorFingerprint };
  }

  /**
   * Plaintext development mode: a site registers by name and its signing key is trusted on first use;
   * a different key for the same name afterwards is refused.
   */
  enrollInsecure(siteName: string, agentVersion: string, signingPublicKey: Uint8Array): SiteRecord {
    if (this.secure) {
      throw new FedsynthError("unauthenticated", `site ${siteName} tried to enrol without an enrolment token`, {
        hint: "ask the consortium operator for a token (fedsynth site token) and run fedsynth site enroll",
      });
    }
    validateSiteName(siteName);
    checkSigningKey(signingPublicKey);
    const key = Buffer.from(signingPublicKey).toString("base64");
    const existing = this.store.getSite(siteName);
    if (existing?.signingPublicKey && existing.signingPublicKey !== key) {
      throw new FedsynthError("unauthenticated", `site ${siteName} is already registered with another signing key`, {
        hint: "use the site's original data directory, or give the new agent another site name",
      });
    }
    if (existing?.revokedAt) throw revoked(existing);
    return this.store.transaction(() => {
      if (!existing?.signingPublicKey) this.onNewKey(siteName, key);
      return this.store.setSiteIdentity(siteName, { certSerial: null, certFingerprint: null, signingPublicKey: key }, agentVersion, this.now());
    });
  }

  revoke(siteName: string, reason: string): SiteRecord {
    const site = this.store.getSite(siteName);
    if (!site) throw new FedsynthError("not-found", `no site named ${siteName} has enrolled`, { hint: "fedsynth site list shows the enrolled sites" });
    this.store.revokeSite(siteName, reason.trim() || "revoked by the operator", this.now());
    this.log.warn("site revoked", { site: siteName, reason });
    return this.store.getSite(siteName)!;
  }

  /**
   * The check in front of every agent call but Enroll: in secure mode the caller must hold the current,
   * unrevoked certificate of an enrolled site, and may act only as that site.
   */
  authenticateSite(peer: PeerIdentity | null, claimedName?: string): SiteRecord {
    if (!this.secure) {
      const site = claimedName ? this.store.getSite(claimedName) : undefined;
      if (!site) {
        throw new FedsynthError("unauthenticated", `site ${claimedName ?? "(unnamed)"} has not registered`, { hint: "the agent registers itself when it starts" });
      }
      if (site.revokedAt) throw revoked(site);
      return site;
    }
    if (!peer) {
      throw new FedsynthError("unauthenticated", "the call carries no client certificate issued by this consortium's CA", {
        hint: "enrol the site first (fedsynth site enroll) and start the agent with the same --data-dir",
      });
    }
    if (peer.kind !== "site") {
      throw new FedsynthError("permission-denied", `an ${peer.kind} certificate (${peer.id}) cannot act as a site agent`);
    }
    if (claimedName !== undefined && claimedName !== peer.id) {
      throw new FedsynthError("permission-denied", `the certificate of site ${peer.id} cannot act as site ${claimedName}`, {
        hint: "start the agent with --name set to the name it enrolled with",
      });
    }
    const site = this.store.getSite(peer.id);
    if (!site || !site.certSerial) {
      throw new FedsynthError("unauthenticated", `site ${peer.id} is not enrolled with this coordinator`, { hint: "enrol it with a token from the operator" });
    }
    if (site.revokedAt) throw revoked(site);
    if (site.certSerial !== peer.serialHex) {
      throw new FedsynthError("unauthenticated", `site ${peer.id} called with a certificate that has been replaced (serial ${peer.serialHex})`, {
        hint: "use the certificate from the site's latest enrolment",
      });
    }
    return site;
  }

  private checkToken(tokenHash: string, siteName: string): void {
    const t = this.store.getEnrollmentToken(tokenHash);
    const refuse = (why: string, hint: string) => new FedsynthError("unauthenticated", `enrolment of site ${siteName} refused: ${why}`, { hint });
    if (!t) throw refuse("the token is not one this coordinator issued", "check that the token was copied whole, or ask the operator for a new one");
    if (t.usedAt !== null) throw refuse(`the token was already used at ${new Date(t.usedAt).toISOString()}`, "tokens are one-time: ask the operator for a new one");
    if (t.expiresAt <= this.now()) throw refuse(`the token expired at ${new Date(t.expiresAt).toISOString()}`, "ask the operator for a new one");
    if (t.siteName !== siteName) throw refuse(`the token was issued for site ${t.siteName}`, `enrol with --name ${t.siteName}, or ask for a token for ${siteName}`);
  }

  private requireIssuer(what: string): CertificateIssuer {
    if (!this.issuer) {
      throw new FedsynthError("failed-precondition", `a coordinator in plaintext development mode cannot ${what}`, {
        hint: "set up the consortium CA with fedsynth coordinator init, and start the coordinator without --insecure",
      });
    }
    return this.issuer;
  }
}

function checkSigningKey(key: Uint8Array): void {
  if (key.length !== ED25519_PUBLIC_KEY_BYTES) {
    throw new FedsynthError("invalid-argument", `the site's signing key has ${key.length} bytes; an Ed25519 public key has ${ED25519_PUBLIC_KEY_BYTES}`);
  }
}

function revoked(site: SiteRecord): FedsynthError {
  return new FedsynthError("unauthenticated", `site ${site.name} has been revoked (${site.revokedReason})`, {
    hint: "ask the consortium operator; a revoked site can come back only by enrolling again with a new token",
  });
}
