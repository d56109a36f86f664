import { randomBytes } from "node:crypto";
import nacl from "tweetnacl";
import { describe, expect, it } from "vitest";
import { agreementPublicKey, agreeSharedSecret, generateAgreementKeyPair } from "../identity.js";
import { createHash } from "node:crypto";
import { ByteWriter } from "./encoding.js";
import { shareCommitment, x25519Agree, x25519PrivateKey, x25519PublicKey, x25519PublicKeyOf } from "./keys.js";
import { newSessionNonce, openSession, PROTOCOL_TAG } from "./session.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const fromHex = (h: string) => new Uint8Array(Buffer.from(h, "hex"));

// Peer keys of small order on Curve25519 and its twist, and their non-canonical encodings (libsodium's
// list): 0, 1, two points of order 8, p − 1, p, p + 1, each also with the top bit set.
const SMALL_ORDER = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
  "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
];

/** tweetnacl's answer (identity.ts), or the error text it refuses with. */
function tweetnacl(secret: Uint8Array, peer: Uint8Array): string {
  try {
    return hex(agreeSharedSecret(secret, peer));
  } catch (err) {
    return (err as Error).message;
  }
}

function openssl(secret: Uint8Array, peer: Uint8Array): string {
  try {
    return hex(x25519Agree(x25519PrivateKey(secret), peer));
  } catch (err) {
    return (err as Error).message;
  }
}

describe("X25519 on OpenSSL, against tweetnacl", () => {
  it("agrees on the same bytes as tweetnacl's scalarMult, both ways, for tweetnacl's key pairs", () => {
    for (let i = 0; i < 200; i++) {
      const a = generateAgreementKeyPair();
      const b = generateAgreementKeyPair();
      const expected = nacl.scalarMult(a.secretKey, b.publicKey);
      expect(hex(x25519Agree(x25519PrivateKey(a.secretKey), b.publicKey))).toBe(hex(expected));
      expect(hex(x25519Agree(x25519PrivateKey(b.secretKey), x25519PublicKey(a.publicKey)))).toBe(hex(expected));
      expect(hex(x25519PublicKeyOf(x25519PrivateKey(a.secretKey)))).toBe(hex(agreementPublicKey(a.secretKey)));
    }
  });

  it("clamps any 32-byte scalar and ignores the peer key's top bit, as tweetnacl does", () => {
    for (let i = 0; i < 100; i++) {
      const secret = new Uint8Array(randomBytes(32)); // unclamped
      const peer = new Uint8Array(randomBytes(32)); // arbitrary bytes, top bit set half the time
      expect(openssl(secret, peer)).toBe(tweetnacl(secret, peer));
      expect(hex(x25519PublicKeyOf(x25519PrivateKey(secret)))).toBe(hex(agreementPublicKey(secret)));
    }
  });

  it("refuses peer keys of small order (all-zero secrets) where tweetnacl's path refuses them", () => {
    const secret = generateAgreementKeyPair().secretKey;
    for (const h of SMALL_ORDER) {
      for (const peer of [fromHex(h), fromHex(h).map((x, i) => (i === 31 ? x | 0x80 : x))]) {
        expect(tweetnacl(secret, peer)).toMatch(/small order/);
        expect(openssl(secret, peer)).toBe(tweetnacl(secret, peer));
      }
    }
  });

  it("non-canonical peer keys (u ≥ p) give tweetnacl's bytes", () => {
    const secret = generateAgreementKeyPair().secretKey;
    for (let low = 0xef; low <= 0xff; low++) {
      const peer = fromHex("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
      peer[0] = low;
      expect(openssl(secret, peer)).toBe(tweetnacl(secret, peer));
    }
  });

  it("refuses keys that are not 32 bytes", () => {
    expect(() => x25519PrivateKey(new Uint8Array(31))).toThrow(/32 bytes, not 31/);
    expect(() => x25519Agree(x25519PrivateKey(new Uint8Array(32)), new Uint8Array(33))).toThrow(/32 bytes/);
  });
});

describe("share commitments", () => {
  it("hash the bytes ByteWriter lays out (tag, binding, kind, dealer, holder, x, share)", () => {
    const sites = ["va", "zürich-universitätsspital", "site-007"];
    const session = openSession({
      context: { studyId: "s", round: 3, sessionNonce: newSessionNonce() },
      threshold: 2,
      vectorLength: 10,
      siteKeys: new Map(sites.map((s) => [s, new Uint8Array(randomBytes(32))])),
    });
    for (const kind of ["key", "self-mask"] as const) {
      for (const dealer of sites) {
        for (const holder of sites) {
          const share = { x: 1 + sites.indexOf(holder), y: new Uint8Array(randomBytes(32)) };
          const w = new ByteWriter().string(PROTOCOL_TAG + "/share-commitment").fixed(session.binding).string(kind).string(dealer).string(holder).u8(share.x).bytes(share.y);
          const expected = createHash("sha256").update(w.finish()).digest("hex");
          expect(hex(shareCommitment(session, kind, dealer, holder, share))).toBe(expected);
        }
      }
    }
  });
});
