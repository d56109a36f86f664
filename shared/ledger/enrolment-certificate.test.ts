import { beforeAll, describe, expect, it } from "vitest";
import { createConsortiumCa, createSiteKeyAndCsr, issueSiteCertificate } from "../crypto/pki/certificates.js";
import { generateSigningKeyPair } from "../crypto/identity.js";
import { encodeBase64 } from "./base64.js";
import { LedgerWriter } from "./ledger-writer.js";
import { verifyLedger } from "./verify-ledger.js";

describe("enrolment certificates, checked when a CA is given", () => {
  let ca: Awaited<ReturnType<typeof createConsortiumCa>>;
  let other: Awaited<ReturnType<typeof createConsortiumCa>>;
  let alphaPem: string;
  let uncertifiedPem: string;
  const alphaKey = generateSigningKeyPair();
  beforeAll(async () => {
    ca = await createConsortiumCa({ name: "Ledger Test CA" });
    other = await createConsortiumCa({ name: "Ledger Test CA" }); // same name, another key
    alphaPem = (await issueSiteCertificate(ca, (await createSiteKeyAndCsr("alpha")).csrPem, { siteId: "alpha", signingPublicKey: alphaKey.publicKey })).certPem;
    uncertifiedPem = (await issueSiteCertificate(ca, (await createSiteKeyAndCsr("alpha")).csrPem, { siteId: "alpha" })).certPem;
  });

  const ledgerWith = (siteName: string, certificatePem: string, at = Date.now(), publicKey = alphaKey.publicKey) => {
    const w = LedgerWriter.start(generateSigningKeyPair().secretKey, { at });
    w.enrolSite({ siteName, publicKey: encodeBase64(publicKey), certificatePem }, at);
    w.signHead(at);
    return w.entries();
  };

  it("accepts a certificate our CA issued to this site, valid when the site enrolled", () => {
    expect(verifyLedger(ledgerWith("alpha", alphaPem), { caPem: ca.certPem }).ok).toBe(true);
    // Without a CA nothing about the certificate is checked.
    expect(verifyLedger(ledgerWith("beta", "not a certificate")).ok).toBe(true);
  });

  it("refuses a certificate for another site, from another CA, outside its validity, or unreadable", () => {
    const cases: [readonly unknown[], RegExp][] = [
      [ledgerWith("beta", alphaPem), /enrolling site "beta" identifies site "alpha"/],
      [ledgerWith("alpha", "garbage"), /does not hold under the given CA/],
      [ledgerWith("alpha", alphaPem, Date.UTC(2020, 0, 1)), /not valid before/],
      // A real certificate, but the ledger records another signing key in its name.
      [ledgerWith("alpha", alphaPem, Date.now(), generateSigningKeyPair().publicKey), /not the one its certificate certifies/],
      [ledgerWith("alpha", uncertifiedPem), /certifies no signing key/],
    ];
    for (const [entries, reason] of cases) {
      const result = verifyLedger(entries, { caPem: ca.certPem });
      expect(result).toMatchObject({ ok: false, index: 1, reason: expect.stringMatching(reason) });
    }
    expect(verifyLedger(ledgerWith("alpha", alphaPem), { caPem: other.certPem })).toMatchObject({ ok: false, index: 1, reason: expect.stringMatching(/signature does not verify with the CA's key/) });
  });

  it("makes the writer refuse such an enrolment when it is given the CA", () => {
    const w = LedgerWriter.start(generateSigningKeyPair().secretKey, { caPem: ca.certPem });
    expect(() => w.enrolSite({ siteName: "beta", publicKey: encodeBase64(generateSigningKeyPair().publicKey), certificatePem: alphaPem })).toThrow(/identifies site "alpha"/);
    w.enrolSite({ siteName: "alpha", publicKey: encodeBase64(alphaKey.publicKey), certificatePem: alphaPem });
    expect(w.entries()).toHaveLength(2);
  });
});
