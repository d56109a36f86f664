import { describe, it, expect } from "vitest";
import { createHash } from "node:crypto";
import { FedsynthError } from "../../errors.js";
import { newEnrollmentToken, hashEnrollmentToken, enrollmentTokenMatches, constantTimeEqual, ENROLLMENT_TOKEN_PREFIX } from "./enrollment.js";
import * as reexported from "../enrollment.js";

describe("enrolment tokens", () => {
  it("are URL-safe, prefixed, and carry 256 random bits", () => {
    const { token } = newEnrollmentToken();
    expect(token.startsWith(ENROLLMENT_TOKEN_PREFIX)).toBe(true);
    expect(token).toMatch(/^fst_[A-Za-z0-9_-]{43}$/);
    expect(encodeURIComponent(token)).toBe(token);
    expect(Buffer.from(token.slice(4), "base64url")).toHaveLength(32);
  });

  it("are unique", () => {
    const tokens = Array.from({ length: 2000 }, () => newEnrollmentToken());
    expect(new Set(tokens.map((t) => t.token)).size).toBe(2000);
    expect(new Set(tokens.map((t) => t.tokenHash)).size).toBe(2000);
  });

  it("are stored only as their SHA-256, which does not contain them", () => {
    const { token, tokenHash } = newEnrollmentToken();
    expect(tokenHash).toBe(createHash("sha256").update(token).digest("hex"));
    expect(tokenHash).toMatch(/^[0-9a-f]{64}$/);
    expect(tokenHash).not.toContain(token.slice(4, 20));
    expect(hashEnrollmentToken(token)).toBe(tokenHash);
    // Pasted from a terminal or an e-mail, with the line break.
    expect(hashEnrollmentToken(`  ${token}\n`)).toBe(tokenHash);
  });

  it("refuse to hash what is not a token, saying what it looks like", () => {
    const { token } = newEnrollmentToken();
    const err = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        expect(e).toBeInstanceOf(FedsynthError);
        return e as FedsynthError;
      }
      throw new Error("nothing thrown");
    };
    const truncated = err(() => hashEnrollmentToken(token.slice(0, -1)));
    expect(truncated.code).toBe("invalid-argument");
    expect(truncated.hint).toMatch(/cut short/);
    const fingerprint = err(() => hashEnrollmentToken("AB:CD:EF"));
    expect(fingerprint.message).toMatch(/no fst_ prefix/);
    expect(fingerprint.hint).toMatch(/starts with fst_/);
    expect(err(() => hashEnrollmentToken(token + "!")).code).toBe("invalid-argument");
  });

  it("match only their own hash", () => {
    const a = newEnrollmentToken();
    const b = newEnrollmentToken();
    expect(enrollmentTokenMatches(a.token, a.tokenHash)).toBe(true);
    expect(enrollmentTokenMatches(a.token, a.tokenHash.toUpperCase())).toBe(true);
    expect(enrollmentTokenMatches(a.token, b.tokenHash)).toBe(false);
    const last = a.token.at(-1) === "A" ? "B" : "A";
    expect(enrollmentTokenMatches(a.token.slice(0, -1) + last, a.tokenHash)).toBe(false);
    expect(enrollmentTokenMatches("garbage", a.tokenHash)).toBe(false);
    expect(enrollmentTokenMatches(a.token, "")).toBe(false);
  });

  it("are available from shared/crypto/enrollment.ts too", () => {
    const { token, tokenHash } = reexported.newEnrollmentToken();
    expect(reexported.hashEnrollmentToken(token)).toBe(tokenHash);
    expect(reexported.enrollmentTokenMatches(token, tokenHash)).toBe(true);
  });
});

describe("constantTimeEqual", () => {
  it("compares strings and bytes, of equal or different lengths", () => {
    expect(constantTimeEqual("abc", "abc")).toBe(true);
    expect(constantTimeEqual("abc", "abd")).toBe(false);
    expect(constantTimeEqual("abc", "abcd")).toBe(false);
    expect(constantTimeEqual("", "")).toBe(true);
    expect(constantTimeEqual("", "a")).toBe(false);
    expect(constantTimeEqual(Buffer.from([1, 2, 3]), new Uint8Array([1, 2, 3]))).toBe(true);
    expect(constantTimeEqual(Buffer.from([1, 2, 3]), new Uint8Array([1, 2, 4]))).toBe(false);
    expect(constantTimeEqual("é", Buffer.from("é"))).toBe(true);
  });
});
