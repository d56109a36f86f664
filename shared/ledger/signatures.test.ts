import { describe, expect, it } from "vitest";
import nacl from "tweetnacl";
import { generateSigningKeyPair } from "../crypto/identity.js";
import { decodeBase64Strict, encodeBase64 } from "./base64.js";
import { canonicalize } from "./canonical-json.js";
import { chargeSigningBytes, headSigningBytes, signCharge, signHead, verifyChargeSignature, verifyHeadSignature } from "./signatures.js";
import { statementFor } from "./test-ledger.js";

describe("ledger signatures", () => {
  const site = generateSigningKeyPair();
  const key = encodeBase64(site.publicKey);
  const statement = statementFor("alpha", 1, []);

  it("signs the domain tag and the statement's canonical text: RFC 8032 bytes any Ed25519 library can check", () => {
    const bytes = chargeSigningBytes(statement);
    expect(Buffer.from(bytes).toString()).toBe("fedsynth/ledger/charge/v1\n" + canonicalize(statement));
    const { siteSignature } = signCharge(statement, site.secretKey);
    expect(nacl.sign.detached.verify(bytes, Buffer.from(siteSignature, "base64"), site.publicKey)).toBe(true);
    // Key order does not matter: the text is canonical.
    const reordered = Object.fromEntries(Object.entries(statement).reverse()) as typeof statement;
    expect(verifyChargeSignature(reordered, siteSignature, key)).toBe(true);
  });

  it("keeps charge and head signatures apart", () => {
    const hash = "ab".repeat(32);
    const head = signHead(hash, site.secretKey);
    expect(verifyHeadSignature(hash, head, key)).toBe(true);
    expect(Buffer.from(headSigningBytes(hash)).toString()).toBe(`fedsynth/ledger/head/v1\n${hash}`);
    const { siteSignature } = signCharge(statement, site.secretKey);
    expect(verifyHeadSignature(hash, siteSignature, key)).toBe(false);
  });

  it("accepts base64 only in its one canonical spelling", () => {
    const { siteSignature } = signCharge(statement, site.secretKey);
    expect(siteSignature).toMatch(/==$/);
    // The last character before "==" carries 4 unused bits: Buffer decodes a changed one to the same bytes.
    const last = siteSignature.length - 3;
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const sibling = siteSignature.slice(0, last) + alphabet[alphabet.indexOf(siteSignature[last]) ^ 1] + "==";
    expect(Buffer.from(sibling, "base64")).toEqual(Buffer.from(siteSignature, "base64"));
    expect(verifyChargeSignature(statement, sibling, key)).toBe(false);
    for (const text of [siteSignature.slice(0, -2), siteSignature + "\n", ` ${siteSignature}`, siteSignature.replace(/==$/, "")]) {
      expect(decodeBase64Strict(text, 64)).toBeUndefined();
      expect(verifyChargeSignature(statement, text, key)).toBe(false);
    }
    expect(verifyChargeSignature(statement, 42, key)).toBe(false);
    expect(verifyChargeSignature(statement, siteSignature, null)).toBe(false);
  });
});
