/**
 * t-of-n Shamir sharing of short secrets (32-byte keys and seeds), byte by byte over GF(2^8).
 *
 * Why GF(2^8) and not a prime field: a share is exactly as long as the secret, any byte string is a
 * valid secret (an X25519 scalar or a seed needs no reduction mod p, so nothing is biased or lost), and
 * the arithmetic is a few bit operations with no bigint. The price is at most 255 shares (x = 1..255,
 * the non-zero field elements), far above any consortium's number of sites.
 *
 * Multiplications that touch secret bytes are branch- and table-free, so the time they take does not
 * depend on the secret; tables are used only where both operands are public x coordinates.
 *
 * Exactly t shares always interpolate to *some* secret, so a wrong share cannot be seen from the shares
 * alone. Extra shares are checked against the polynomial, and the caller can pass a commitment
 * (`secretCommitment`) or a predicate to check the result, so that a wrong reconstruction is reported
 * instead of being used.
 */
import { createHash, randomBytes } from "node:crypto";
import { FedsynthError } from "../errors.js";
import { bytesEqual } from "./identity.js";

export const MAX_SHARES = 255;

export interface ShamirShare {
  /** The evaluation point, 1..255. */
  x: number;
  /** f_j(x) for every byte j of the secret. */
  y: Uint8Array;
}

/** Product in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1 (the AES field), in constant time. */
function gfMul(a: number, b: number): number {
  let p = 0;
  for (let i = 0; i < 8; i++) {
    p ^= -(b & 1) & a;
    a = ((a << 1) ^ (-(a >> 7) & 0x11b)) & 0xff;
    b >>= 1;
  }
  return p;
}

// exp/log over the generator 3, for public values only.
const EXP = new Uint8Array(510);
const LOG = new Uint8Array(256);
{
  let v = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = v;
    EXP[i + 255] = v;
    LOG[v] = i;
    v = gfMul(v, 3);
  }
}

function gfMulPublic(a: number, b: number): number {
  return a === 0 || b === 0 ? 0 : EXP[LOG[a] + LOG[b]];
}

function gfDivPublic(a: number, b: number): number {
  if (b === 0) throw new FedsynthError("internal", "division by zero in GF(2^8)");
  return a === 0 ? 0 : EXP[LOG[a] + 255 - LOG[b]];
}

function checkThresholdShape(threshold: number, shareCount: number): void {
  if (!Number.isInteger(threshold) || threshold < 1) {
    throw new FedsynthError("invalid-argument", `a Shamir threshold must be a positive whole number, not ${threshold}`);
  }
  if (!Number.isInteger(shareCount) || shareCount < threshold) {
    throw new FedsynthError("invalid-argument", `cannot make ${shareCount} shares with threshold ${threshold}: there must be at least as many shares as the threshold`);
  }
  if (shareCount > MAX_SHARES) {
    throw new FedsynthError("invalid-argument", `Shamir sharing over GF(2^8) makes at most ${MAX_SHARES} shares (one per non-zero field element), not ${shareCount}`, {
      hint: "secure aggregation supports at most 255 sites per round",
    });
  }
}

/**
 * Shares for x = 1..shareCount; any `threshold` of them give the secret back, fewer reveal nothing about
 * it (each byte's polynomial has threshold − 1 uniformly random coefficients).
 */
export function splitSecret(secret: Uint8Array, threshold: number, shareCount: number): ShamirShare[] {
  checkThresholdShape(threshold, shareCount);
  if (secret.length === 0) throw new FedsynthError("invalid-argument", "cannot share an empty secret");
  const len = secret.length;
  const coefficients = randomBytes(len * (threshold - 1));
  const shares: ShamirShare[] = [];
  for (let x = 1; x <= shareCount; x++) {
    const y = new Uint8Array(len);
    for (let j = 0; j < len; j++) {
      // Horner from the highest coefficient down to the secret byte.
      let acc = 0;
      for (let k = threshold - 2; k >= 0; k--) acc = gfMul(acc, x) ^ coefficients[k * len + j];
      y[j] = gfMul(acc, x) ^ secret[j];
    }
    shares.push({ x, y });
  }
  coefficients.fill(0);
  return shares;
}

/** Lagrange basis polynomials of the points `xs`, evaluated at `at`. */
function lagrangeAt(xs: readonly number[], at: number): Uint8Array {
  const out = new Uint8Array(xs.length);
  for (let i = 0; i < xs.length; i++) {
    let num = 1;
    let den = 1;
    for (let k = 0; k < xs.length; k++) {
      if (k === i) continue;
      num = gfMulPublic(num, at ^ xs[k]);
      den = gfMulPublic(den, xs[i] ^ xs[k]);
    }
    out[i] = gfDivPublic(num, den);
  }
  return out;
}

/**
 * Σ_i weights[i]·y_i byte by byte. A weight is public (it depends on the x coordinates only) and a share
 * byte is secret, so each product is gfMul's shift-and-add with the weight's doublings w·2^k computed
 * once per share: the secret byte's bits select them through masks, with no branch and no table lookup
 * that depends on it, as in gfMul.
 */
function interpolate(shares: readonly ShamirShare[], weights: Uint8Array, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < shares.length; i++) {
    let a = weights[i];
    const w0 = a;
    const w1 = (a = xtime(a));
    const w2 = (a = xtime(a));
    const w3 = (a = xtime(a));
    const w4 = (a = xtime(a));
    const w5 = (a = xtime(a));
    const w6 = (a = xtime(a));
    const w7 = xtime(a);
    const y = shares[i].y;
    for (let j = 0; j < len; j++) {
      const b = y[j];
      out[j] ^=
        (-(b & 1) & w0) ^ (-((b >> 1) & 1) & w1) ^ (-((b >> 2) & 1) & w2) ^ (-((b >> 3) & 1) & w3) ^
        (-((b >> 4) & 1) & w4) ^ (-((b >> 5) & 1) & w5) ^ (-((b >> 6) & 1) & w6) ^ (-((b >> 7) & 1) & w7);
    }
  }
  return out;
}

/** a·x in GF(2^8) (of a public value). */
function xtime(a: number): number {
  return ((a << 1) ^ (-(a >> 7) & 0x11b)) & 0xff;
}

// The Lagrange weights at 0 of the last few sets of x coordinates: the coordinator reconstructs every
// survivor's seed from the same t holders' shares, so every secret of a round has the same weights.
const weightsAtZero = new Map<string, Uint8Array>();

function lagrangeAtZero(xs: readonly number[]): Uint8Array {
  const key = xs.join(",");
  let w = weightsAtZero.get(key);
  if (!w) {
    w = lagrangeAt(xs, 0);
    if (weightsAtZero.size >= 8) weightsAtZero.delete(weightsAtZero.keys().next().value!);
    weightsAtZero.set(key, w);
  }
  return w;
}

export interface CombineOptions {
  /** `secretCommitment(secret)` published by the dealer; the result must match it. */
  commitment?: Uint8Array;
  /** Any other check of the result (e.g. that a reconstructed private key gives the known public key). */
  check?: (secret: Uint8Array) => boolean;
}

/**
 * The secret from at least `threshold` shares. Throws if there are too few, if two shares claim the same
 * x or differ in length, if shares beyond the first `threshold` do not lie on the same polynomial, or if
 * the result fails the commitment or check.
 */
export function combineShares(shares: readonly ShamirShare[], threshold: number, opts: CombineOptions = {}): Uint8Array {
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > MAX_SHARES) {
    throw new FedsynthError("invalid-argument", `a Shamir threshold must be a whole number from 1 to ${MAX_SHARES}, not ${threshold}`);
  }
  if (shares.length < threshold) {
    throw new FedsynthError("failed-precondition", `${shares.length} share(s) cannot reconstruct a secret shared with threshold ${threshold}: at least ${threshold} are needed`);
  }
  const len = shares[0].y.length;
  const seen = new Set<number>();
  for (const s of shares) {
    if (!Number.isInteger(s.x) || s.x < 1 || s.x > MAX_SHARES) {
      throw new FedsynthError("invalid-argument", `a share's x coordinate must be 1..${MAX_SHARES}, not ${s.x}`);
    }
    if (seen.has(s.x)) throw new FedsynthError("invalid-argument", `two shares claim the same x coordinate ${s.x}`);
    seen.add(s.x);
    if (s.y.length !== len) throw new FedsynthError("invalid-argument", `shares of one secret must have the same length (${len} and ${s.y.length} bytes)`);
  }
  const basis = shares.slice(0, threshold);
  const xs = basis.map((s) => s.x);
  const secret = interpolate(basis, lagrangeAtZero(xs), len);
  for (const extra of shares.slice(threshold)) {
    if (!bytesEqual(interpolate(basis, lagrangeAt(xs, extra.x), len), extra.y)) {
      throw new FedsynthError("invalid-data", `the shares are inconsistent: the share at x = ${extra.x} does not lie on the polynomial through the others`, {
        hint: "one of the shares is wrong, or they belong to different secrets",
      });
    }
  }
  if (opts.commitment && !bytesEqual(secretCommitment(secret), opts.commitment)) {
    throw new FedsynthError("invalid-data", `the reconstructed secret does not match its commitment (from ${shares.length} shares at x = ${xs.join(", ")}${shares.length > threshold ? ", …" : ""})`, {
      hint: "a share is wrong or the threshold is not the one the secret was shared with",
    });
  }
  if (opts.check && !opts.check(secret)) {
    throw new FedsynthError("invalid-data", `the reconstructed secret fails its check (from ${shares.length} shares)`, {
      hint: "a share is wrong or the threshold is not the one the secret was shared with",
    });
  }
  return secret;
}

/** A binding commitment to a high-entropy secret: SHA-256 behind a domain tag. */
export function secretCommitment(secret: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update("fedsynth/shamir-commitment/v1\n").update(secret).digest());
}
