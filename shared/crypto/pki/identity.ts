/**
 * Who a certificate speaks for, and whether to believe it.
 *
 * Identity scheme: every certificate this consortium's CA issues to a client carries exactly one SAN
 * URI `fedsynth:<kind>:<id>` (kind = site | operator | auditor), with CN = <id>. The SAN URI, not the
 * CN, is the identity: it is typed, so an operator named "cleveland" can never pass for the site
 * "cleveland", and no CSR can choose it because the coordinator writes it (see certificates.ts).
 *
 * Fingerprints are SHA-256 over the certificate's DER, written as colon-separated upper-case hex
 * ("AB:CD:..."), the form `openssl x509 -noout -fingerprint -sha256` and Node's `fingerprint256` print,
 * so that an operator can check one by eye against either. Comparisons accept any case, with or
 * without colons.
 */
import { createHash, timingSafeEqual, X509Certificate as NodeX509Certificate } from "node:crypto";
import { x509 } from "./x509-lib.js";
import { invalidArgument, unauthenticated } from "./errors.js";

export type PeerKind = "site" | "operator" | "auditor";
export const PEER_KINDS: readonly PeerKind[] = ["site", "operator", "auditor"];

export interface PeerIdentity {
  kind: PeerKind;
  /** The site id, or the operator's / auditor's name. */
  id: string;
  /** Lower-case hex without leading zeros: the form to store and compare serials in. */
  serialHex: string;
  fingerprintSha256: string;
  notAfter: Date;
}

/** A certificate as PEM, as DER, as a node:crypto X509Certificate, or as tls's PeerCertificate (`.raw`). */
export type CertificateInput = string | Uint8Array | NodeX509Certificate | { raw: Uint8Array };

export const IDENTITY_URI_SCHEME = "fedsynth";

/** Same rule as site names everywhere else (coordinator/study/study-request.ts). */
const SITE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** People's names may be e-mail addresses; nothing that would need escaping in a URI or a DN. */
const PERSON_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;

export function identityUri(kind: PeerKind, id: string): string {
  validateIdentityId(kind, id);
  return `${IDENTITY_URI_SCHEME}:${kind}:${id}`;
}

export function validateIdentityId(kind: PeerKind, id: string): void {
  if (kind === "site") {
    if (!SITE_ID.test(id)) {
      throw invalidArgument(`site id ${JSON.stringify(id)} is not valid`,
        "use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit");
    }
  } else if (!PERSON_NAME.test(id)) {
    throw invalidArgument(`${kind} name ${JSON.stringify(id)} is not valid`,
      "use 1 to 128 letters, digits, '.', '_', '@' or '-', starting with a letter or digit (an e-mail address works)");
  }
}

/** `fedsynth:<kind>:<id>` → its parts, or null for any other URI. */
export function parseIdentityUri(uri: string): { kind: PeerKind; id: string } | null {
  const m = /^fedsynth:([a-z]+):(.+)$/.exec(uri);
  if (!m) return null;
  const kind = m[1] as PeerKind;
  if (!PEER_KINDS.includes(kind)) return null;
  return { kind, id: m[2]! };
}

export function parseCertificate(input: CertificateInput, what = "certificate"): NodeX509Certificate {
  if (input instanceof NodeX509Certificate) return input;
  try {
    if (typeof input === "string") return new NodeX509Certificate(input);
    if (input instanceof Uint8Array) return new NodeX509Certificate(input);
    return new NodeX509Certificate(input.raw);
  } catch (err) {
    throw invalidArgument(`the ${what} cannot be read as an X.509 certificate (${(err as Error).message})`,
      "pass the PEM file as written by fedsynth (it starts with -----BEGIN CERTIFICATE-----)", err);
  }
}

/** SHA-256 of the DER, as "AB:CD:…" (see the module comment). */
export function certificateFingerprint(certificate: CertificateInput): string {
  const der = parseCertificate(certificate).raw;
  return colonHex(createHash("sha256").update(der).digest());
}

/** A fingerprint in any accepted spelling → 64 lower-case hex digits; throws on anything else. */
export function normalizeFingerprint(fingerprint: string): string {
  const plain = fingerprint.trim().replace(/^sha256[:=]?\s*/i, "").replace(/:/g, "").toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(plain)) {
    throw invalidArgument(`${JSON.stringify(fingerprint)} is not a SHA-256 certificate fingerprint`,
      "copy it as printed by the coordinator: 32 hex pairs separated by colons (AB:CD:...)");
  }
  return plain;
}

export function fingerprintsEqual(a: string, b: string): boolean {
  return timingSafeEqual(Buffer.from(normalizeFingerprint(a), "hex"), Buffer.from(normalizeFingerprint(b), "hex"));
}

export function serialHexOf(certificate: CertificateInput): string {
  return normalizeSerial(parseCertificate(certificate).serialNumber);
}

export function normalizeSerial(serial: string): string {
  const plain = serial.replace(/:/g, "").toLowerCase().replace(/^0+(?=.)/, "");
  if (!/^[0-9a-f]+$/.test(plain)) throw invalidArgument(`${JSON.stringify(serial)} is not a hexadecimal serial number`, "serials are hex, e.g. 3f9a...");
  return plain;
}

/**
 * Throws unless `certificate` was signed by the CA in `caPem` (and that CA is a CA whose own
 * self-signature holds, so that a look-alike key that merely verifies one signature cannot stand in).
 */
export function verifyIssuedBy(certificate: CertificateInput, caPem: CertificateInput): void {
  const cert = parseCertificate(certificate);
  const ca = parseCertificate(caPem, "CA certificate");
  if (!ca.ca) {
    throw invalidArgument(`the CA certificate (${describeSubject(ca)}) is not a CA certificate`,
      "pass the consortium CA's certificate (ca.pem), not a site's or the coordinator's");
  }
  if (!ca.verify(ca.publicKey)) {
    throw invalidArgument(`the CA certificate (${describeSubject(ca)}) is not validly self-signed`,
      "the CA file is damaged or not the consortium's root: export it again from the coordinator");
  }
  if (cert.issuer !== ca.subject) {
    throw unauthenticated(`the certificate for ${describeSubject(cert)} was issued by ${oneLine(cert.issuer)}, not by this consortium's CA (${oneLine(ca.subject)})`,
      "use a certificate issued by this consortium's coordinator (sites: enrol with a token from its operator)");
  }
  // Same issuer name but another key (OpenSSL's issuer check also compares key identifiers): a CA that
  // was re-created, or one made to look like ours.
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) {
    throw unauthenticated(`the certificate for ${describeSubject(cert)} names this consortium's CA as issuer but its signature does not verify with the CA's key`,
      "the certificate is forged or from another CA with the same name: enrol again to get a genuine one");
  }
}

/** Throws when `now` is outside the certificate's validity period. */
export function checkValidity(certificate: CertificateInput, now: Date = new Date()): void {
  const cert = parseCertificate(certificate);
  const notBefore = new Date(cert.validFrom);
  const notAfter = new Date(cert.validTo);
  if (now.getTime() > notAfter.getTime()) {
    throw unauthenticated(`the certificate for ${describeSubject(cert)} expired on ${notAfter.toISOString()}`,
      "get a new certificate: a site enrols again with a fresh token from the consortium operator; an operator asks for a new one");
  }
  if (now.getTime() < notBefore.getTime()) {
    throw unauthenticated(`the certificate for ${describeSubject(cert)} is not valid before ${notBefore.toISOString()}`,
      "check this machine's clock (and the other side's): they disagree with the certificate's start date");
  }
}

/**
 * Who the certificate speaks for. With `caPem`, also checks that our CA issued it; always checks its
 * validity period (at `now`), its clientAuth usage and its fedsynth identity SAN. grpc-js only puts a
 * certificate into the auth context after TLS verified it against the server's CA, so on that path
 * the CA check is a second, independent look rather than the only one.
 */
export function identityOfPeer(certificate: CertificateInput | null | undefined, opts: { caPem?: string; now?: Date } = {}): PeerIdentity {
  if (!certificate || (typeof certificate === "object" && "raw" in certificate && !certificate.raw?.length)) {
    throw unauthenticated("no verified client certificate: none was presented, or it was not issued by this consortium's CA, or it has expired",
      "connect with the certificate this coordinator issued (sites get one by enrolling; operators from the consortium lead)");
  }
  let cert: NodeX509Certificate;
  try {
    cert = parseCertificate(certificate, "peer certificate");
  } catch (err) {
    throw unauthenticated("the peer's certificate cannot be read as an X.509 certificate", "connect with the certificate this coordinator issued", err);
  }
  if (opts.caPem) verifyIssuedBy(cert, opts.caPem);
  checkValidity(cert, opts.now);

  let parsed: InstanceType<typeof x509.X509Certificate>;
  let eku: InstanceType<typeof x509.ExtendedKeyUsageExtension> | null;
  let names: readonly { type: string; value: string }[];
  try {
    parsed = new x509.X509Certificate(cert.raw);
    eku = parsed.getExtension(x509.ExtendedKeyUsageExtension);
    names = parsed.getExtension(x509.SubjectAlternativeNameExtension)?.names.items ?? [];
  } catch (err) {
    throw unauthenticated(`the extensions of the certificate for ${describeSubject(cert)} cannot be read (${(err as Error).message})`,
      "only certificates issued by a fedsynth coordinator identify a site or operator", err);
  }
  if (!eku?.usages.map(String).includes(x509.ExtendedKeyUsage.clientAuth)) {
    throw unauthenticated(`the certificate for ${describeSubject(cert)} is not a client certificate (no clientAuth extended key usage)`,
      "a server's certificate cannot be used to call the coordinator: use the site's or operator's own certificate");
  }
  const uris = names
    .filter((n) => n.type === "url" && n.value.startsWith(`${IDENTITY_URI_SCHEME}:`))
    .map((n) => n.value);
  if (uris.length !== 1) {
    throw unauthenticated(`the certificate for ${describeSubject(cert)} has ${uris.length === 0 ? "no" : uris.length} fedsynth identity URIs (${IDENTITY_URI_SCHEME}:<site|operator|auditor>:<id>); exactly one is needed`,
      "only certificates issued by a fedsynth coordinator identify a site or operator");
  }
  const who = parseIdentityUri(uris[0]!);
  if (!who) {
    throw unauthenticated(`the certificate's identity URI ${JSON.stringify(uris[0])} is not ${IDENTITY_URI_SCHEME}:<site|operator|auditor>:<id>`,
      "only certificates issued by a fedsynth coordinator identify a site or operator");
  }
  try {
    validateIdentityId(who.kind, who.id);
  } catch (err) {
    throw unauthenticated(`the certificate's identity URI ${JSON.stringify(uris[0])} names an invalid ${who.kind} id`, "enrol again to get a certificate with a valid identity", err);
  }
  const cns = parsed.subjectName.getField("CN");
  if (cns.length !== 1 || cns[0] !== who.id) {
    throw unauthenticated(`the certificate's common name (${cns.join(", ") || "none"}) does not match its identity URI ${uris[0]}`,
      "this certificate was not issued by a fedsynth coordinator: enrol again");
  }
  return {
    kind: who.kind,
    id: who.id,
    serialHex: normalizeSerial(cert.serialNumber),
    fingerprintSha256: certificateFingerprint(cert),
    notAfter: new Date(cert.validTo),
  };
}

function describeSubject(cert: NodeX509Certificate): string {
  const uri = /URI:(fedsynth:[^,\s]+)/.exec(cert.subjectAltName ?? "")?.[1];
  return uri ?? oneLine(cert.subject);
}

function oneLine(dn: string): string {
  return `'${dn.split("\n").join(", ")}'`;
}

function colonHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex").toUpperCase().match(/../g)!.join(":");
}
