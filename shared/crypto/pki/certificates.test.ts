import { describe, it, expect, beforeAll } from "vitest";
import { X509Certificate as NodeX509Certificate, createHash, createPrivateKey, createPublicKey } from "node:crypto";
import { x509 } from "./x509-lib.js";
import { FedsynthError } from "../../errors.js";
import {
  createConsortiumCa, issueServerCertificate, createSiteKeyAndCsr, issueSiteCertificate, issueOperatorCertificate,
  identityOfPeer, verifyIssuedBy, checkValidity, certificateFingerprint, normalizeFingerprint, fingerprintsEqual, parseIdentityUri,
  generateKeyPair, type ConsortiumCa,
} from "./index.js";

const DAY = 86_400_000;

function fedsynthError(fn: () => unknown): FedsynthError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FedsynthError);
    return err as FedsynthError;
  }
  throw new Error("expected a FedsynthError, nothing was thrown");
}

async function rejected(p: Promise<unknown>): Promise<FedsynthError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(FedsynthError);
  return err as FedsynthError;
}

function sanUris(pem: string): string[] {
  return (new x509.X509Certificate(pem).getExtension(x509.SubjectAlternativeNameExtension)?.names.items ?? [])
    .filter((n) => n.type === "url").map((n) => n.value);
}

describe("consortium CA", () => {
  let ca: Awaited<ReturnType<typeof createConsortiumCa>>;
  beforeAll(async () => {
    ca = await createConsortiumCa({ name: "Heart Consortium CA", validityDays: 3650 });
  });

  it("is a self-signed P-256 CA limited to signing end-entity certificates", () => {
    const cert = new NodeX509Certificate(ca.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.subject).toBe("CN=Heart Consortium CA");
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    const parsed = new x509.X509Certificate(ca.certPem);
    const bc = parsed.getExtension(x509.BasicConstraintsExtension)!;
    expect([bc.ca, bc.pathLength, bc.critical]).toEqual([true, 0, true]);
    const ku = parsed.getExtension(x509.KeyUsagesExtension)!;
    expect(ku.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    expect(parsed.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId).toMatch(/^[0-9a-f]{40}$/);
    expect(new Date(cert.validTo).getTime() - Date.now()).toBeGreaterThan(3649 * DAY);
  });

  it("writes its key as PKCS#8 PEM that matches the certificate", () => {
    expect(ca.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const fromKey = createPublicKey(createPrivateKey(ca.keyPem)).export({ type: "spki", format: "der" });
    expect(fromKey.equals(new NodeX509Certificate(ca.certPem).publicKey.export({ type: "spki", format: "der" }))).toBe(true);
  });

  it("prints its fingerprint as SHA-256 of the DER in colon-separated upper-case hex, as openssl does", () => {
    const cert = new NodeX509Certificate(ca.certPem);
    const expected = createHash("sha256").update(cert.raw).digest("hex").toUpperCase().match(/../g)!.join(":");
    expect(ca.fingerprintSha256).toBe(expected);
    expect(certificateFingerprint(ca.certPem)).toBe(cert.fingerprint256);
    expect(certificateFingerprint(cert.raw)).toBe(expected);
    expect(normalizeFingerprint(`sha256 ${expected.toLowerCase()}`)).toBe(expected.replace(/:/g, "").toLowerCase());
    expect(fingerprintsEqual(expected, expected.replace(/:/g, "").toLowerCase())).toBe(true);
    expect(fingerprintsEqual(expected, expected.replace(/^../, expected.startsWith("00") ? "01" : "00"))).toBe(false);
    expect(fedsynthError(() => normalizeFingerprint("AB:CD")).hint).toMatch(/32 hex pairs/);
  });

  it("refuses a CA key that belongs to another CA", async () => {
    const other = await createConsortiumCa({ name: "Other" });
    const err = await rejected(issueServerCertificate({ certPem: ca.certPem, keyPem: other.keyPem }, { hostnames: ["coord.example.org"] }));
    expect(err.message).toMatch(/key does not belong to the CA certificate/);
  });

  it("refuses to issue a certificate that would outlive it", async () => {
    const shortCa = await createConsortiumCa({ name: "Short", validityDays: 10 });
    const { csrPem } = await createSiteKeyAndCsr("cleveland");
    const err = await rejected(issueSiteCertificate(shortCa, csrPem, { siteId: "cleveland", validityDays: 365 }));
    expect(err.message).toMatch(/outlive the CA/);
  });
});

describe("issued certificates", () => {
  let ca: ConsortiumCa;
  beforeAll(async () => {
    ca = await createConsortiumCa({ name: "Heart Consortium CA", validityDays: 3650 });
  });

  it("gives the coordinator a serverAuth certificate for its names, with the loopback names as an option", async () => {
    const server = await issueServerCertificate(ca, { hostnames: ["Coord.Example.org"], ips: ["10.0.0.5"], validityDays: 30 });
    const cert = new NodeX509Certificate(server.certPem);
    expect(cert.subjectAltName).toBe("DNS:coord.example.org, DNS:localhost, IP Address:10.0.0.5, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1");
    expect(cert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]);
    expect(cert.ca).toBe(false);
    verifyIssuedBy(server.certPem, ca.certPem);
    expect(cert.checkPrivateKey(createPrivateKey(server.keyPem))).toBe(true);
    const ski = new x509.X509Certificate(ca.certPem).getExtension(x509.SubjectKeyIdentifierExtension)!.keyId;
    expect(new x509.X509Certificate(server.certPem).getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId).toBe(ski);

    const bare = await issueServerCertificate(ca, { hostnames: ["coord.example.org"], includeLoopback: false });
    expect(new NodeX509Certificate(bare.certPem).subjectAltName).toBe("DNS:coord.example.org");
  });

  it("names bad server names and refuses a certificate with none", async () => {
    expect((await rejected(issueServerCertificate(ca, { hostnames: ["coord example"] }))).message).toMatch(/not a valid host name/);
    expect((await rejected(issueServerCertificate(ca, { hostnames: ["10.0.0.5"] }))).hint).toMatch(/pass it as an IP/);
    expect((await rejected(issueServerCertificate(ca, { ips: ["10.0.0.300"] }))).message).toMatch(/not an IP address/);
    expect((await rejected(issueServerCertificate(ca, { includeLoopback: false }))).message).toMatch(/no host/);
  });

  it("certifies the site id it is told, whatever subject the CSR asks for", async () => {
    const { keyPem, csrPem } = await createSiteKeyAndCsr("hungary");
    expect(new x509.Pkcs10CertificateRequest(csrPem).subject).toBe("CN=hungary");
    const issued = await issueSiteCertificate(ca, csrPem, { siteId: "cleveland" });
    const cert = new NodeX509Certificate(issued.certPem);
    expect(cert.subject).toBe("CN=cleveland");
    expect(sanUris(issued.certPem)).toEqual(["fedsynth:site:cleveland"]);
    expect(cert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.2"]);
    // The certificate is for the key the site kept, which never left it.
    expect(cert.checkPrivateKey(createPrivateKey(keyPem))).toBe(true);
    const id = identityOfPeer(issued.certPem, { caPem: ca.certPem });
    expect(id).toMatchObject({ kind: "site", id: "cleveland", serialHex: issued.serialHex, fingerprintSha256: issued.fingerprintSha256 });
  });

  it("ignores the extensions a CSR asks for (another identity, CA powers)", async () => {
    const { keys } = await generateKeyPair();
    const greedy = await x509.Pkcs10CertificateRequestGenerator.create({
      name: "CN=va",
      keys,
      signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
      extensions: [
        new x509.SubjectAlternativeNameExtension([{ type: "url", value: "fedsynth:operator:root" }, { type: "url", value: "fedsynth:site:va" }]),
        new x509.BasicConstraintsExtension(true, 5, true),
      ],
    });
    const issued = await issueSiteCertificate(ca, greedy.toString("pem"), { siteId: "switzerland" });
    expect(sanUris(issued.certPem)).toEqual(["fedsynth:site:switzerland"]);
    expect(new NodeX509Certificate(issued.certPem).ca).toBe(false);
    expect(identityOfPeer(issued.certPem).id).toBe("switzerland");
  });

  it("refuses a CSR whose signature does not prove possession of its key", async () => {
    const { csrPem } = await createSiteKeyAndCsr("cleveland");
    const der = Buffer.from(new x509.Pkcs10CertificateRequest(csrPem).rawData);
    der[der.length - 5] ^= 0x01; // inside the signature
    const tampered = new x509.Pkcs10CertificateRequest(der).toString("pem");
    const err = await rejected(issueSiteCertificate(ca, tampered, { siteId: "cleveland" }));
    expect(err.code).toBe("invalid-argument");
    expect(err.message).toMatch(/does not prove possession/);
  });

  it("refuses CSRs that are not CSRs, too large, or for a non-P-256 key", async () => {
    expect((await rejected(issueSiteCertificate(ca, "hello", { siteId: "cleveland" }))).message).toMatch(/cannot be read as a PKCS#10 CSR/);
    expect((await rejected(issueSiteCertificate(ca, "x".repeat(20_000), { siteId: "cleveland" }))).message).toMatch(/20000 characters/);
    const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-384" }, true, ["sign", "verify"]);
    const p384 = await x509.Pkcs10CertificateRequestGenerator.create({ name: "CN=x", keys, signingAlgorithm: { name: "ECDSA", hash: "SHA-384" } });
    expect((await rejected(issueSiteCertificate(ca, p384.toString("pem"), { siteId: "cleveland" }))).message).toMatch(/ECDSA P-384.*P-256 keys only/);
  });

  it("uses random 128-bit serials, or the one it is given", async () => {
    const { csrPem } = await createSiteKeyAndCsr("cleveland");
    const serials = await Promise.all([1, 2, 3, 4].map(() => issueSiteCertificate(ca, csrPem, { siteId: "cleveland" }).then((c) => c.serialHex)));
    expect(new Set(serials).size).toBe(4);
    for (const s of serials) {
      expect(s).toMatch(/^[0-9a-f]+$/);
      expect(s.length).toBeGreaterThan(24); // 128 random bits: fewer than 25 hex digits would happen with probability < 2^-28
      expect(s.length).toBeLessThanOrEqual(32);
    }
    const fixed = await issueSiteCertificate(ca, csrPem, { siteId: "cleveland", serial: "00A1B2C3" });
    expect(fixed.serialHex).toBe("a1b2c3");
    expect(new NodeX509Certificate(fixed.certPem).serialNumber.toLowerCase()).toBe("a1b2c3");
    expect((await rejected(issueSiteCertificate(ca, csrPem, { siteId: "cleveland", serial: "0" }))).message).toMatch(/positive/);
  });

  it("refuses site ids that could not be written into an identity URI", async () => {
    const { csrPem } = await createSiteKeyAndCsr("cleveland");
    for (const bad of ["", "a b", "x:y", "-lead", "a".repeat(65)]) {
      expect((await rejected(issueSiteCertificate(ca, csrPem, { siteId: bad }))).code).toBe("invalid-argument");
    }
    expect((await rejected(createSiteKeyAndCsr("site/1"))).message).toMatch(/site id "site\/1" is not valid/);
  });

  it("gives operators and auditors client certificates carrying their role", async () => {
    const op = await issueOperatorCertificate(ca, { name: "alice@cleveland.org", role: "operator" });
    const au = await issueOperatorCertificate(ca, { name: "bob", role: "auditor", validityDays: 7 });
    expect(sanUris(op.certPem)).toEqual(["fedsynth:operator:alice@cleveland.org"]);
    expect(identityOfPeer(op.certPem, { caPem: ca.certPem })).toMatchObject({ kind: "operator", id: "alice@cleveland.org" });
    expect(identityOfPeer(au.certPem, { caPem: ca.certPem })).toMatchObject({ kind: "auditor", id: "bob" });
    expect(new NodeX509Certificate(au.certPem).checkPrivateKey(createPrivateKey(au.keyPem))).toBe(true);
    expect((await rejected(issueOperatorCertificate(ca, { name: "carol", role: "site" as never }))).message).toMatch(/not one of operator, auditor/);
  });
});

describe("identityOfPeer and verification", () => {
  let ca: ConsortiumCa;
  let site: string;
  beforeAll(async () => {
    ca = await createConsortiumCa({ name: "Heart Consortium CA" });
    site = (await issueSiteCertificate(ca, (await createSiteKeyAndCsr("va")).csrPem, { siteId: "va" })).certPem;
  });

  it("reads PEM, DER and tls's PeerCertificate alike", () => {
    const der = new NodeX509Certificate(site).raw;
    const expected = identityOfPeer(site);
    expect(identityOfPeer(der)).toEqual(expected);
    expect(identityOfPeer({ raw: der })).toEqual(expected);
    expect(identityOfPeer(new NodeX509Certificate(site))).toEqual(expected);
    expect(expected.notAfter.getTime()).toBeGreaterThan(Date.now() + 360 * DAY);
  });

  it("says no certificate was presented when there is none", () => {
    for (const none of [null, undefined, { raw: Buffer.alloc(0) }]) {
      const err = fedsynthError(() => identityOfPeer(none));
      expect(err.code).toBe("unauthenticated");
      expect(err.message).toMatch(/no verified client certificate/);
    }
  });

  it("refuses a certificate from another CA, even one with the same name", async () => {
    const impostor = await createConsortiumCa({ name: "Heart Consortium CA" });
    const forged = (await issueSiteCertificate(impostor, (await createSiteKeyAndCsr("va")).csrPem, { siteId: "va" })).certPem;
    const err = fedsynthError(() => identityOfPeer(forged, { caPem: ca.certPem }));
    expect(err.code).toBe("unauthenticated");
    expect(err.message).toMatch(/fedsynth:site:va names this consortium's CA as issuer but its signature does not verify/);

    const other = await createConsortiumCa({ name: "Lung Consortium CA" });
    const foreign = (await issueSiteCertificate(other, (await createSiteKeyAndCsr("va")).csrPem, { siteId: "va" })).certPem;
    expect(fedsynthError(() => verifyIssuedBy(foreign, ca.certPem)).message).toMatch(/issued by 'CN=Lung Consortium CA', not by this consortium's CA \('CN=Heart Consortium CA'\)/);
    verifyIssuedBy(site, ca.certPem);
  });

  it("refuses to treat a leaf certificate as the CA", () => {
    expect(fedsynthError(() => verifyIssuedBy(site, site)).message).toMatch(/is not a CA certificate/);
  });

  it("refuses expired and not-yet-valid certificates with their dates", async () => {
    const { csrPem } = await createSiteKeyAndCsr("va");
    const expired = await issueSiteCertificate(ca, csrPem, { siteId: "va", notBefore: new Date(Date.now() - 30 * DAY), notAfter: new Date(Date.now() - DAY) });
    const err = fedsynthError(() => identityOfPeer(expired.certPem, { caPem: ca.certPem }));
    expect(err.code).toBe("unauthenticated");
    expect(err.message).toMatch(/fedsynth:site:va expired on \d{4}-\d\d-\d\dT/);
    expect(err.hint).toMatch(/enrols again/);
    const future = await issueSiteCertificate(ca, csrPem, { siteId: "va", notBefore: new Date(Date.now() + DAY), validityDays: 10 });
    expect(fedsynthError(() => checkValidity(future.certPem)).hint).toMatch(/clock/);
    // `now` lets a caller check at another instant; the same certificate is fine two days on.
    checkValidity(future.certPem, new Date(Date.now() + 2 * DAY));
  });

  it("refuses certificates that are not fedsynth client identities", async () => {
    const server = await issueServerCertificate(ca, { hostnames: ["coord.example.org"] });
    expect(fedsynthError(() => identityOfPeer(server.certPem)).message).toMatch(/not a client certificate/);

    // A clientAuth certificate from our CA key but without the identity URI (as another tool might make).
    const caKey = await crypto.subtle.importKey("pkcs8", createPrivateKey(ca.keyPem).export({ type: "pkcs8", format: "der" }), { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
    const { keys } = await generateKeyPair();
    const make = async (cn: string, uris: string[]) => (await x509.X509CertificateGenerator.create({
      subject: `CN=${cn}`, issuer: new x509.X509Certificate(ca.certPem).subjectName, publicKey: keys.publicKey, signingKey: caKey,
      signingAlgorithm: { name: "ECDSA", hash: "SHA-256" }, notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + DAY),
      extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]), new x509.SubjectAlternativeNameExtension(uris.map((value) => ({ type: "url" as const, value })))],
    })).toString("pem");
    expect(fedsynthError(() => identityOfPeer("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")).message).toMatch(/cannot be read/);
    const noUri = await make("va", []);
    expect(fedsynthError(() => identityOfPeer(noUri, { caPem: ca.certPem })).message).toMatch(/has no fedsynth identity URIs/);
    const two = await make("va", ["fedsynth:site:va", "fedsynth:operator:va"]);
    expect(fedsynthError(() => identityOfPeer(two)).message).toMatch(/has 2 fedsynth identity URIs/);
    const badKind = await make("va", ["fedsynth:admin:va"]);
    expect(fedsynthError(() => identityOfPeer(badKind)).message).toMatch(/is not fedsynth:<site\|operator\|auditor>:<id>/);
    const mismatch = await make("cleveland", ["fedsynth:site:va"]);
    expect(fedsynthError(() => identityOfPeer(mismatch)).message).toMatch(/common name \(cleveland\) does not match its identity URI fedsynth:site:va/);
    expect(identityOfPeer(await make("va", ["fedsynth:site:va"]), { caPem: ca.certPem }).id).toBe("va");
  });

  it("parses only well-formed identity URIs", () => {
    expect(parseIdentityUri("fedsynth:site:va")).toEqual({ kind: "site", id: "va" });
    expect(parseIdentityUri("fedsynth:auditor:a@b.org")).toEqual({ kind: "auditor", id: "a@b.org" });
    expect(parseIdentityUri("fedsynth:root:x")).toBeNull();
    expect(parseIdentityUri("https://example.org")).toBeNull();
  });
});
