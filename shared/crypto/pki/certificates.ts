/**
 * The consortium's certificate authority: one self-signed CA that the coordinator keeps, and the
 * certificates it issues — the coordinator's server certificate, each site's client certificate (from
 * the site's CSR, so the site's private key never leaves the site), and operators' and auditors' client
 * certificates. All keys are ECDSA P-256, all signatures ECDSA with SHA-256.
 */
import { isIP } from "node:net";
import { randomBytes, X509Certificate as NodeX509Certificate } from "node:crypto";
import { x509, webcrypto, EC_KEY_ALGORITHM, EC_SIGNING_ALGORITHM } from "./x509-lib.js";
import { generateKeyPair, importSigningKey, publicKeyDerOf, readPrivateKey } from "./keys.js";
import { certificateFingerprint, identityUri, normalizeSerial, validateIdentityId, type PeerKind } from "./identity.js";
import { invalidArgument } from "./errors.js";

type CryptoKey = webcrypto.CryptoKey;

/** The CA as the coordinator stores it. `keyPem` is the most sensitive secret of the consortium. */
export interface ConsortiumCa {
  certPem: string;
  keyPem: string;
}

export interface IssuedCertificate {
  certPem: string;
  serialHex: string;
  fingerprintSha256: string;
  notAfter: Date;
}

export interface IssuedCertificateAndKey extends IssuedCertificate {
  /** PKCS#8 PEM: write it with mode 0600. */
  keyPem: string;
}

/**
 * Either `validityDays` from now, or an explicit period. `notBefore` defaults to five minutes ago so
 * that a peer whose clock runs a little behind does not reject a certificate issued a moment ago.
 */
export interface Validity {
  validityDays?: number;
  notBefore?: Date;
  notAfter?: Date;
}

export const DEFAULT_CA_VALIDITY_DAYS = 3650;
export const DEFAULT_LEAF_VALIDITY_DAYS = 365;
const CLOCK_SKEW_MS = 5 * 60_000;
const DAY_MS = 86_400_000;
/** A CSR arrives before its sender is authenticated; nothing legitimate comes near this size. */
const MAX_CSR_PEM_CHARS = 16_384;

/** Names a server certificate usually needs for local use; opt out with `includeLoopback: false`. */
export const LOOPBACK_NAMES = { hostnames: ["localhost"], ips: ["127.0.0.1", "::1"] } as const;

export async function createConsortiumCa(opts: { name: string } & Validity): Promise<ConsortiumCa & { fingerprintSha256: string; notAfter: Date }> {
  const name = opts.name.trim();
  if (!name || name.length > 64) {
    throw invalidArgument(`the CA name ${JSON.stringify(opts.name)} must be 1 to 64 characters`, "e.g. --name \"Heart Disease Consortium CA\"");
  }
  const { notBefore, notAfter } = validityPeriod(opts, DEFAULT_CA_VALIDITY_DAYS);
  const { keys, keyPem } = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ CN: [name] }],
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: EC_SIGNING_ALGORITHM,
    extensions: [
      // pathlen 0: the CA signs end-entity certificates only, so a stolen site key can never mint others.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const certPem = cert.toString("pem");
  return { certPem, keyPem, fingerprintSha256: certificateFingerprint(certPem), notAfter: cert.notAfter };
}

export interface ServerCertificateOptions extends Validity {
  /** DNS names clients dial the coordinator by. */
  hostnames?: readonly string[];
  /** IP addresses clients dial the coordinator by. */
  ips?: readonly string[];
  /** Adds LOOPBACK_NAMES (localhost, 127.0.0.1, ::1). Default true. */
  includeLoopback?: boolean;
}

/** The coordinator's TLS server certificate and a fresh key for it. */
export async function issueServerCertificate(ca: ConsortiumCa, opts: ServerCertificateOptions): Promise<IssuedCertificateAndKey> {
  const includeLoopback = opts.includeLoopback ?? true;
  const hostnames = unique([...(opts.hostnames ?? []), ...(includeLoopback ? LOOPBACK_NAMES.hostnames : [])].map((h) => h.trim().toLowerCase()));
  const ips = unique([...(opts.ips ?? []), ...(includeLoopback ? LOOPBACK_NAMES.ips : [])].map((ip) => ip.trim()));
  for (const h of hostnames) {
    if (isIP(h) || !/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(h)) {
      throw invalidArgument(`${JSON.stringify(h)} is not a valid host name for the coordinator's certificate`,
        isIP(h) ? "it is an IP address: pass it as an IP, not a host name" : "use the DNS name sites dial, e.g. coord.example.org");
    }
  }
  for (const ip of ips) {
    if (!isIP(ip)) throw invalidArgument(`${JSON.stringify(ip)} is not an IP address`, "e.g. 10.0.0.5 or 2001:db8::5");
  }
  if (hostnames.length === 0 && ips.length === 0) {
    throw invalidArgument("the coordinator's certificate would name no host", "give the host names or IP addresses sites use to reach the coordinator");
  }
  const { keys, keyPem } = await generateKeyPair();
  const issued = await issueLeaf(ca, {
    subjectCn: hostnames[0] ?? ips[0]!,
    publicKey: keys.publicKey,
    sans: [...hostnames.map((value) => ({ type: "dns" as const, value })), ...ips.map((value) => ({ type: "ip" as const, value }))],
    usage: x509.ExtendedKeyUsage.serverAuth,
    validity: opts,
  });
  return { ...issued, keyPem };
}

/**
 * Runs at the site: a new key pair and a CSR that proves possession of it. The subject is informative
 * only; the coordinator decides the identity. Keep `keyPem` at the site (mode 0600); send `csrPem`.
 */
export async function createSiteKeyAndCsr(siteId: string): Promise<{ keyPem: string; csrPem: string }> {
  validateIdentityId("site", siteId);
  const { keys, keyPem } = await generateKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: [siteId] }],
    keys,
    signingAlgorithm: EC_SIGNING_ALGORITHM,
  });
  return { keyPem, csrPem: csr.toString("pem") };
}

/**
 * Runs at the coordinator, once the enrolment token has been checked: certifies the CSR's key for
 * `siteId`. Everything the CSR asks for besides its key — subject, extensions — is ignored; the
 * coordinator writes CN = siteId and SAN URI `fedsynth:site:<siteId>` itself, so a site cannot obtain
 * another site's identity by asking for it. With `signingPublicKey`, the site's Ed25519 key (which signs
 * its ledger charges) is certified too, as a second SAN URI `fedsynth-key:ed25519:<hex>`: an auditor
 * holding the consortium CA can then check that the key a ledger records is the one the CA certified.
 */
export async function issueSiteCertificate(ca: ConsortiumCa, csrPem: string, opts: { siteId: string; serial?: string; signingPublicKey?: Uint8Array } & Validity): Promise<IssuedCertificate> {
  validateIdentityId("site", opts.siteId);
  if (csrPem.length > MAX_CSR_PEM_CHARS) {
    throw invalidArgument(`the certificate request is ${csrPem.length} characters; a fedsynth CSR is under 1,000`, "send the CSR that `fedsynth site enroll` creates");
  }
  let csr: InstanceType<typeof x509.Pkcs10CertificateRequest>;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (err) {
    throw invalidArgument(`the certificate request cannot be read as a PKCS#10 CSR (${(err as Error).message})`,
      "send the PEM CSR that `fedsynth site enroll` creates (-----BEGIN CERTIFICATE REQUEST-----)", err);
  }
  const algorithm = csr.publicKey.algorithm as { name?: string; namedCurve?: string };
  if (algorithm.name !== "ECDSA" || algorithm.namedCurve !== "P-256") {
    throw invalidArgument(`the certificate request's key is ${algorithm.name ?? "unknown"} ${algorithm.namedCurve ?? ""}; fedsynth certifies ECDSA P-256 keys only`.replace(/ ;/, ";"),
      "let `fedsynth site enroll` create the key and the CSR");
  }
  let signatureOk = false;
  try {
    signatureOk = await csr.verify();
  } catch {
    signatureOk = false;
  }
  if (!signatureOk) {
    throw invalidArgument("the certificate request's signature does not verify with its own key, so it does not prove possession of the private key",
      "create a new key and CSR (`fedsynth site enroll` does both) and enrol again");
  }
  const publicKey = await csr.publicKey.export(EC_KEY_ALGORITHM, ["verify"]);
  return issueLeaf(ca, {
    subjectCn: opts.siteId,
    publicKey,
    sans: [
      { type: "url", value: identityUri("site", opts.siteId) },
      ...(opts.signingPublicKey ? [{ type: "url" as const, value: signingKeyUri(opts.signingPublicKey) }] : []),
    ],
    usage: x509.ExtendedKeyUsage.clientAuth,
    validity: opts,
    serial: opts.serial,
  });
}

const SIGNING_KEY_URI = "fedsynth-key:ed25519:";

export function signingKeyUri(publicKey: Uint8Array): string {
  if (publicKey.length !== 32) throw invalidArgument(`an Ed25519 public key has 32 bytes, not ${publicKey.length}`, "pass the site's signing public key");
  return SIGNING_KEY_URI + Buffer.from(publicKey).toString("hex");
}

/** The Ed25519 signing key a site certificate certifies (hex), or undefined if it certifies none. */
export function certifiedSigningKeyHex(certPem: string): string | undefined {
  const cert = new x509.X509Certificate(certPem);
  const names = cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.items ?? [];
  const uri = names.find((n) => n.type === "url" && n.value.startsWith(SIGNING_KEY_URI));
  return uri?.value.slice(SIGNING_KEY_URI.length);
}

/**
 * A client certificate and key for a person using the operator service: `role` is written into the
 * SAN URI (`fedsynth:operator:<name>` or `fedsynth:auditor:<name>`) so that the server can tell what
 * they may do from the certificate alone.
 */
export async function issueOperatorCertificate(ca: ConsortiumCa, opts: { name: string; role: Exclude<PeerKind, "site">; serial?: string } & Validity): Promise<IssuedCertificateAndKey> {
  if (opts.role !== "operator" && opts.role !== "auditor") {
    throw invalidArgument(`role ${JSON.stringify(opts.role)} is not one of operator, auditor`, "pass --role operator or --role auditor");
  }
  validateIdentityId(opts.role, opts.name);
  const { keys, keyPem } = await generateKeyPair();
  const issued = await issueLeaf(ca, {
    subjectCn: opts.name,
    publicKey: keys.publicKey,
    sans: [{ type: "url", value: identityUri(opts.role, opts.name) }],
    usage: x509.ExtendedKeyUsage.clientAuth,
    validity: opts,
    serial: opts.serial,
  });
  return { ...issued, keyPem };
}

/** A positive 128-bit random serial as hex (RFC 5280 allows up to 20 octets). */
export function randomSerial(): string {
  return randomBytes(16).toString("hex");
}

interface LeafRequest {
  subjectCn: string;
  publicKey: CryptoKey;
  sans: { type: "dns" | "ip" | "url"; value: string }[];
  usage: x509.ExtendedKeyUsage;
  validity: Validity;
  serial?: string;
}

async function issueLeaf(ca: ConsortiumCa, req: LeafRequest): Promise<IssuedCertificate> {
  const authority = await loadCa(ca);
  const { notBefore, notAfter } = validityPeriod(req.validity, DEFAULT_LEAF_VALIDITY_DAYS);
  if (notAfter.getTime() > authority.cert.notAfter.getTime()) {
    throw invalidArgument(`the certificate would outlive the CA (CA valid until ${authority.cert.notAfter.toISOString()})`,
      "ask for a shorter validity, or renew the consortium CA first");
  }
  const serial = req.serial === undefined ? randomSerial() : normalizeSerial(req.serial);
  if (/^0*$/.test(serial) || serial.length > 40) {
    throw invalidArgument(`serial ${JSON.stringify(req.serial)} must be a positive number of at most 20 bytes`, "leave the serial out to get a random 128-bit one");
  }
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: [{ CN: [req.subjectCn] }],
    issuer: authority.cert.subjectName,
    notBefore,
    notAfter,
    publicKey: req.publicKey,
    signingKey: authority.signingKey,
    signingAlgorithm: EC_SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([req.usage], false),
      new x509.SubjectAlternativeNameExtension(req.sans, false),
      await x509.SubjectKeyIdentifierExtension.create(req.publicKey),
      new x509.AuthorityKeyIdentifierExtension(authority.keyId),
    ],
  });
  const certPem = cert.toString("pem");
  return { certPem, serialHex: normalizeSerial(cert.serialNumber), fingerprintSha256: certificateFingerprint(certPem), notAfter: cert.notAfter };
}

async function loadCa(ca: ConsortiumCa): Promise<{ cert: InstanceType<typeof x509.X509Certificate>; signingKey: CryptoKey; keyId: string }> {
  let nodeCert: NodeX509Certificate;
  let cert: InstanceType<typeof x509.X509Certificate>;
  try {
    nodeCert = new NodeX509Certificate(ca.certPem);
    cert = new x509.X509Certificate(nodeCert.raw);
  } catch (err) {
    throw invalidArgument(`the consortium CA certificate cannot be read (${(err as Error).message})`, "point to the CA's certificate PEM (ca.pem)", err);
  }
  if (!nodeCert.ca) {
    throw invalidArgument("the consortium CA certificate is not a CA certificate (basicConstraints CA:false)", "point to the CA's certificate, not a site's or the coordinator's");
  }
  const key = readPrivateKey(ca.keyPem, "the consortium CA key");
  if (!publicKeyDerOf(key).equals(nodeCert.publicKey.export({ type: "spki", format: "der" }))) {
    throw invalidArgument("the consortium CA key does not belong to the CA certificate", "the CA's key and certificate files are from different CAs: restore the matching pair");
  }
  // Reusing the CA's own key id keeps the chain link intact even for a CA made by another tool.
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  const keyId = ski?.keyId ?? (await x509.SubjectKeyIdentifierExtension.create(cert.publicKey)).keyId;
  return { cert, signingKey: await importSigningKey(ca.keyPem, "the consortium CA key"), keyId };
}

function validityPeriod(v: Validity, defaultDays: number): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  const notBefore = v.notBefore ?? new Date(now - CLOCK_SKEW_MS);
  let notAfter = v.notAfter;
  if (!notAfter) {
    const days = v.validityDays ?? defaultDays;
    if (!(Number.isFinite(days) && days > 0)) {
      throw invalidArgument(`validity must be a positive number of days, got ${days}`, `e.g. ${defaultDays}`);
    }
    notAfter = new Date(now + days * DAY_MS);
  }
  if (!(notAfter.getTime() > notBefore.getTime())) {
    throw invalidArgument(`the validity period is empty: notAfter ${notAfter.toISOString()} is not after notBefore ${notBefore.toISOString()}`, "give an end date after the start date");
  }
  return { notBefore, notAfter };
}

function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}
