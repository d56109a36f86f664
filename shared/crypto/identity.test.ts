import { randomBytes } from "node:crypto";
import nacl from "tweetnacl";
import { describe, expect, it } from "vitest";
import { hkdfSha256 } from "./kdf.js";
import {
  agreementPublicKey,
  agreeSharedSecret,
  generateAgreementKeyPair,
  generateSigningKeyPair,
  signDetached,
  signingKeyPairFromSeed,
  verifyDetached,
} from "./identity.js";

describe("Ed25519 identities", () => {
  it("signs exactly the bytes tweetnacl signs, and each verifies the other's signatures", () => {
    for (let i = 0; i < 5; i++) {
      const keys = generateSigningKeyPair();
      const message = new Uint8Array(randomBytes(100 + i));
      const ours = signDetached(message, keys.secretKey);
      expect(ours).toEqual(nacl.sign.detached(message, keys.secretKey));
      expect(nacl.sign.detached.verify(message, ours, keys.publicKey)).toBe(true);
      expect(verifyDetached(message, nacl.sign.detached(message, keys.secretKey), keys.publicKey)).toBe(true);
    }
  });

  it("rejects a wrong message, a wrong key and malformed input without throwing", () => {
    const keys = generateSigningKeyPair();
    const other = generateSigningKeyPair();
    const message = new Uint8Array(randomBytes(64));
    const sig = signDetached(message, keys.secretKey);
    const altered = message.slice();
    altered[0] ^= 1;
    expect(verifyDetached(altered, sig, keys.publicKey)).toBe(false);
    expect(verifyDetached(message, sig, other.publicKey)).toBe(false);
    expect(verifyDetached(message, sig.subarray(0, 63), keys.publicKey)).toBe(false);
    expect(verifyDetached(message, sig, new Uint8Array(31))).toBe(false);
    expect(verifyDetached(message, new Uint8Array(64), keys.publicKey)).toBe(false);
  });

  it("derives the same key pair from a seed as tweetnacl", () => {
    const seed = new Uint8Array(randomBytes(32));
    expect(signingKeyPairFromSeed(seed)).toEqual(nacl.sign.keyPair.fromSeed(seed));
    expect(() => signingKeyPairFromSeed(new Uint8Array(31))).toThrow(/32 bytes, not 31/);
  });
});

describe("X25519 agreement", () => {
  it("both sides agree, and the public key follows from the secret", () => {
    const a = generateAgreementKeyPair();
    const b = generateAgreementKeyPair();
    expect(agreeSharedSecret(a.secretKey, b.publicKey)).toEqual(agreeSharedSecret(b.secretKey, a.publicKey));
    expect(agreementPublicKey(a.secretKey)).toEqual(a.publicKey);
  });

  it("refuses a small-order peer key (the all-zero shared secret)", () => {
    expect(() => agreeSharedSecret(generateAgreementKeyPair().secretKey, new Uint8Array(32))).toThrow(/small order/);
  });
});

describe("HKDF-SHA256", () => {
  it("matches RFC 5869 test case 1", () => {
    const ikm = Buffer.alloc(22, 0x0b);
    const salt = Buffer.from("000102030405060708090a0b0c", "hex");
    const info = Buffer.from("f0f1f2f3f4f5f6f7f8f9", "hex");
    expect(Buffer.from(hkdfSha256(ikm, salt, info, 42)).toString("hex")).toBe(
      "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
    );
  });
});
