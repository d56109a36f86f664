import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { combineShares, secretCommitment, splitSecret, type ShamirShare } from "./shamir.js";

function secret(): Uint8Array {
  return new Uint8Array(randomBytes(32));
}

function pick<T>(items: readonly T[], k: number): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy.slice(0, k);
}

describe("Shamir sharing over GF(2^8)", () => {
  it("any t of n shares give the secret back", () => {
    for (const [t, n] of [[2, 2], [2, 3], [3, 5], [7, 10], [67, 100]]) {
      const s = secret();
      const shares = splitSecret(s, t, n);
      expect(shares.map((sh) => sh.x)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      for (let trial = 0; trial < 5; trial++) expect(combineShares(pick(shares, t), t)).toEqual(s);
      expect(combineShares(shares, t)).toEqual(s);
    }
  });

  it("works at the field's limit of 255 shares", () => {
    const s = secret();
    const shares = splitSecret(s, 200, 255);
    expect(combineShares(pick(shares, 200), 200, { commitment: secretCommitment(s) })).toEqual(s);
  });

  it("threshold 1 is the secret itself in every share", () => {
    const s = secret();
    for (const sh of splitSecret(s, 1, 4)) expect(sh.y).toEqual(s);
  });

  it("t − 1 shares interpolate to something else than the secret", () => {
    const s = secret();
    const shares = splitSecret(s, 4, 6);
    // Combining 3 shares as if the threshold were 3 gives a wrong value; the commitment catches it.
    expect(combineShares(shares.slice(0, 3), 3)).not.toEqual(s);
    expect(() => combineShares(shares.slice(0, 3), 3, { commitment: secretCommitment(s) })).toThrow(/does not match its commitment/);
  });

  it("refuses fewer than t shares", () => {
    const shares = splitSecret(secret(), 3, 5);
    expect(() => combineShares(shares.slice(0, 2), 3)).toThrow(/2 share\(s\) cannot reconstruct a secret shared with threshold 3: at least 3 are needed/);
  });

  it("detects an inconsistent extra share", () => {
    const shares = splitSecret(secret(), 3, 5);
    const bad = shares.map((s) => ({ x: s.x, y: s.y.slice() }));
    bad[4].y[7] ^= 0x40;
    expect(() => combineShares(bad, 3)).toThrow(/share at x = 5 does not lie on the polynomial/);
  });

  it("a wrong share among exactly t is caught by the commitment or the check", () => {
    const s = secret();
    const shares = splitSecret(s, 3, 5).slice(0, 3);
    shares[1] = { x: shares[1].x, y: shares[1].y.slice() };
    shares[1].y[0] ^= 1;
    expect(() => combineShares(shares, 3, { commitment: secretCommitment(s) })).toThrow(/does not match its commitment/);
    expect(() => combineShares(shares, 3, { check: (r) => Buffer.from(r).equals(Buffer.from(s)) })).toThrow(/fails its check/);
  });

  it("refuses malformed share sets", () => {
    const shares = splitSecret(secret(), 2, 3);
    expect(() => combineShares([shares[0], { ...shares[1], x: shares[0].x }], 2)).toThrow(/same x coordinate 1/);
    expect(() => combineShares([shares[0], { x: 0, y: shares[1].y }], 2)).toThrow(/x coordinate must be 1..255, not 0/);
    expect(() => combineShares([shares[0], { x: 2, y: shares[1].y.subarray(0, 31) }], 2)).toThrow(/same length/);
  });

  it("refuses more than 255 shares and impossible thresholds", () => {
    expect(() => splitSecret(secret(), 3, 256)).toThrow(/at most 255 shares/);
    expect(() => splitSecret(secret(), 4, 3)).toThrow(/at least as many shares as the threshold/);
    expect(() => splitSecret(secret(), 0, 3)).toThrow(/positive whole number/);
    expect(() => splitSecret(new Uint8Array(0), 1, 3)).toThrow(/empty secret/);
  });

  it("shares of one secret differ between two sharings (fresh coefficients)", () => {
    const s = secret();
    const a: ShamirShare[] = splitSecret(s, 3, 4);
    const b: ShamirShare[] = splitSecret(s, 3, 4);
    expect(a[0].y).not.toEqual(b[0].y);
  });
});
