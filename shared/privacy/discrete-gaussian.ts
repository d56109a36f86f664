/**
 * Exact sampling of the discrete Gaussian N_Z(0, σ²), P[X = x] ∝ exp(−x²/(2σ²)) for x ∈ Z, from a
 * cryptographic byte source.
 *
 * Algorithm. Canonne, Kamath & Steinke, "The Discrete Gaussian for Differential Privacy" (NeurIPS 2020,
 * arXiv:2004.00010), Algorithm 3: with t = ⌊σ⌋ + 1, draw Y from the discrete Laplace Lap_Z(t)
 * (P[Y = y] ∝ e^{−|y|/t}) and accept it with probability exp(−(|Y| − σ²/t)²/(2σ²)); the discrete Laplace
 * comes from their Algorithm 2 (U uniform in {0..t−1} kept with probability e^{−U/t}, plus t times a
 * geometric count of Bernoulli(e^{−1}) successes, and a sign with −0 rejected). About 1.3 proposals per
 * sample for any σ, so the cost does not grow with σ — unlike a CDF/alias table, whose size grows as σ and
 * whose construction for σ = 1e6 costs more than the million samples themselves; and a table of rounded
 * probabilities would only be approximate. So: one algorithm for every σ.
 *
 * Exactness. Every random choice is a comparison of a uniform integer or a uniform real U ∈ [0, 1) with
 * an exact probability: uniform integers by rejection from 32-bit words; Bernoulli(e^{−γ}) (γ ≥ 0 an exact
 * rational: U/t, 1, or (|Y|·t − σ²)²/(2σ²t²) with σ² taken from σ's exact binary value) as [U < e^{−γ}],
 * where U's bits are drawn lazily. The first 53 bits of U are compared with a double estimate of e^{−γ}
 * and a rigorous bound on its error (analysis in `acceptEstimate`, assuming Math.exp is within 4 ulps,
 * which V8's fdlibm port is by a wide margin — the tests check the bound against exact enclosures). Only
 * when U falls inside that error interval (probability ~1e-12 per comparison) is the comparison finished
 * exactly, with more bits of U against BigInt interval enclosures of e^{−γ} at increasing precision. So
 * the output distribution is exactly N_Z(0, σ²) for the double σ given: no truncation, no rounding of the
 * probabilities, no floating-point output (Mironov 2012's attack on floating-point noise has nothing to
 * read). The only assumption is that the byte source is uniform.
 *
 * Speed: ~3.5 Math.exp calls and ~14 random 32-bit words per sample, random bytes fetched 64 KiB at a
 * time; 1,000,000 samples take ≈ 0.2–0.45 s on one core for σ from 1 to 1e6 (the tests print the
 * measurement). Running time depends on the random values (it is a rejection sampler), never on data.
 */
import { randomFillSync } from "node:crypto";
import { FedsynthError } from "../errors.js";

/** Fills the whole buffer with uniformly random bytes. */
export type ByteSource = (buffer: Uint8Array) => void;

/** node:crypto's CSPRNG (OpenSSL's RAND_bytes): the source to use for real noise. */
export const cryptoByteSource: ByteSource = (buffer) => {
  randomFillSync(buffer);
};

/** Largest σ accepted: samples live on a 32-bit ring, so a larger σ could not be represented anyway. */
export const MAX_DISCRETE_GAUSSIAN_SIGMA = 2 ** 31;

const U = 2 ** -53;
const TWO_32 = 4294967296;
const TWO_M53 = 2 ** -53;
/** Words pulled from the byte source at a time (64 KiB). */
const POOL_WORDS = 16384;

/** 32-bit words from a byte source, fetched in bulk (little-endian words on every platform Node runs on). */
class WordStream {
  private readonly words = new Uint32Array(POOL_WORDS);
  private readonly bytes = new Uint8Array(this.words.buffer);
  private pos = POOL_WORDS;

  constructor(private readonly source: ByteSource) {}

  next(): number {
    if (this.pos === POOL_WORDS) {
      this.source(this.bytes);
      this.pos = 0;
    }
    return this.words[this.pos++];
  }
}

function invalid(message: string, hint: string): FedsynthError {
  return new FedsynthError("invalid-argument", message, { hint });
}

function checkSigma(sigma: number): void {
  if (typeof sigma !== "number" || !Number.isFinite(sigma) || !(sigma > 0) || sigma > MAX_DISCRETE_GAUSSIAN_SIGMA) {
    throw invalid(
      `The discrete Gaussian needs a sigma in (0, ${MAX_DISCRETE_GAUSSIAN_SIGMA}], got ${String(sigma)}`,
      "sigma is the per-coordinate noise scale in grid units (see planDistributedNoise).",
    );
  }
}

// ---------------------------------------------------------------------------------------------------
// Exact enclosures of e^{−γ} for rational γ (the slow path)
// ---------------------------------------------------------------------------------------------------

function ceilDiv(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b; // a ≥ 0, b > 0
}

/**
 * [lo, hi] with lo/2^W ≤ e^{−a/b} ≤ hi/2^W, for 0 ≤ a ≤ b. The Taylor terms x^k/k! of x = a/b ≤ 1 do not
 * increase, so the partial sums of Σ (−x)^k/k! alternate around e^{−x}: odd partial sums are below it, even
 * ones above. Each term is carried as a floor and a ceiling (both exact bounds on the true term), and each
 * partial sum is formed from the bound on the side that keeps it a bound.
 */
function expNegUnitEnclosure(a: bigint, b: bigint, W: number): [bigint, bigint] {
  const one = 1n << BigInt(W);
  if (a === 0n) return [one, one];
  const lows: bigint[] = [one];
  const highs: bigint[] = [one];
  for (let k = 1; ; k++) {
    const d = b * BigInt(k);
    lows.push((lows[k - 1] * a) / d);
    highs.push(ceilDiv(highs[k - 1] * a, d));
    if (highs[k] <= 1n && k >= 2) break;
  }
  const last = lows.length - 1;
  const kOdd = last % 2 === 1 ? last : last - 1;
  const kEven = last % 2 === 0 ? last : last - 1;
  let lo = 0n;
  for (let k = 0; k <= kOdd; k++) lo += k % 2 === 0 ? lows[k] : -highs[k];
  let hi = 0n;
  for (let k = 0; k <= kEven; k++) hi += k % 2 === 0 ? highs[k] : -lows[k];
  if (lo < 0n) lo = 0n;
  if (hi > one) hi = one;
  return [lo, hi];
}

/**
 * [lo, hi] with lo/2^P ≤ e^{−num/den} ≤ hi/2^P (num ≥ 0, den > 0): e^{−γ} = (e^{−1})^⌊γ⌋ · e^{−frac(γ)}, with
 * every product rounded down for the lower bound and up for the upper one (all factors are ≥ 0, so the
 * bounds stay bounds). Extra working bits keep the enclosure narrow; they do not affect its validity.
 */
export function expNegEnclosure(num: bigint, den: bigint, P: number): [bigint, bigint] {
  if (num < 0n || den <= 0n || !Number.isInteger(P) || P < 1) throw new RangeError("expNegEnclosure needs num ≥ 0, den > 0, P ≥ 1");
  const q = num / den;
  const r = num % den;
  const qBits = q.toString(2).length;
  const W = P + 64 + 2 * qBits;
  const shiftW = BigInt(W);
  let [lo, hi] = expNegUnitEnclosure(r, den, W);
  if (q > 0n) {
    let [bl, bh] = expNegUnitEnclosure(1n, 1n, W);
    let pl = 1n << shiftW;
    let ph = pl;
    const mask = (1n << shiftW) - 1n;
    for (let e = q; e > 0n; e >>= 1n) {
      if (e & 1n) {
        pl = (pl * bl) >> shiftW;
        const prod = ph * bh;
        ph = (prod >> shiftW) + ((prod & mask) === 0n ? 0n : 1n);
      }
      bl = (bl * bl) >> shiftW;
      const sq = bh * bh;
      bh = (sq >> shiftW) + ((sq & mask) === 0n ? 0n : 1n);
    }
    lo = (lo * pl) >> shiftW;
    const prod = hi * ph;
    hi = (prod >> shiftW) + ((prod & mask) === 0n ? 0n : 1n);
  }
  const drop = BigInt(W - P);
  const dropMask = (1n << drop) - 1n;
  return [lo >> drop, (hi >> drop) + ((hi & dropMask) === 0n ? 0n : 1n)];
}

/**
 * Finishes the comparison U < e^{−num/den}, where U's first `bits` bits are `prefix` (so U lies in
 * [prefix, prefix + 1)/2^bits) and its further bits are still undrawn: draws 32 more bits at a time until
 * an enclosure of e^{−γ} decides. Terminates with probability 1 (e^{−γ} is 1 or irrational).
 */
function finishLessThanExpNeg(words: WordStream, prefix: bigint, bits: number, num: bigint, den: bigint): boolean {
  for (;;) {
    const P = bits + 64;
    const [lo, hi] = expNegEnclosure(num, den, P);
    const scale = 1n << BigInt(P - bits);
    if ((prefix + 1n) * scale <= lo) return true; // U < (prefix + 1)/2^bits ≤ lo/2^P ≤ e^{−γ}
    if (prefix * scale >= hi) return false; // U ≥ prefix/2^bits ≥ hi/2^P ≥ e^{−γ}
    prefix = (prefix << 32n) | BigInt(words.next());
    bits += 32;
  }
}

// ---------------------------------------------------------------------------------------------------
// The fast path: double estimates of e^{−γ} with rigorous error bounds
// ---------------------------------------------------------------------------------------------------

/** σ as M·2^E exactly (M a positive integer below 2^53). */
function binaryParts(x: number): [bigint, number] {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const exponent = (hi >>> 20) & 0x7ff;
  const mantissa = BigInt(hi & 0xfffff) * 4294967296n + BigInt(lo);
  if (exponent === 0) return [mantissa, -1074];
  return [mantissa + (1n << 52n), exponent - 1075];
}

/**
 * The exact rational γ = (a − σ²/t)²/(2σ²) = (a·t·D − N)²/(2·N·D·t²), where σ² = N/D exactly (σ is a double,
 * so σ² is a dyadic rational).
 */
export function acceptGamma(a: number, t: number, sigma: number): [bigint, bigint] {
  const [M, E] = binaryParts(sigma);
  let N = M * M;
  let D = 1n;
  if (E >= 0) N <<= BigInt(2 * E);
  else D <<= BigInt(-2 * E);
  const T = BigInt(t);
  const x = BigInt(a) * T * D - N;
  return [x * x, 2n * N * D * T * T];
}

/** Relative error allowed for Math.exp (V8: fdlibm's __ieee754_exp, < 1 ulp). */
const EXP_RELATIVE_ERROR = 4 * U;

/** Error bound on pHat = Math.exp(−g) as an estimate of e^{−γ} when |g − γ| ≤ gError (≤ 1e-3). */
function expError(pHat: number, gError: number): number {
  // |Math.exp(−g) − e^{−g}| ≤ 4u·e^{−g}, and |e^{−g} − e^{−γ}| ≤ e^{−g}·(e^{gError} − 1) ≤ 1.001·gError·e^{−g};
  // e^{−g} ≤ pHat·(1 + 5u). Doubled, plus an absolute allowance for subnormal results.
  return 2 * pHat * (EXP_RELATIVE_ERROR + 1.001 * gError) * (1 + 8 * U) + 1e-300;
}

/**
 * The double estimate of the acceptance probability exp(−(a − σ²/t)²/(2σ²)) of Algorithm 3 and a rigorous
 * bound on its error. With u = 2^−53 and each operation off by at most a relative u:
 *   c = fl(fl(σ²)/t) is within 2.02u·c of σ²/t; diff = fl(a − c) within u·(a + c) of a − c; so
 *   |diff − (a − σ²/t)| ≤ D := u·(a + 3.02c) (we use twice that);
 *   g = fl(fl(diff²)/(2·fl(σ²))) = diff²/(2σ²)·(1 + θ), |θ| ≤ 3.1u;
 *   |g − γ| ≤ 3.1u·diff²/(2σ²) + D·(2|diff| + D)/(2σ²), bounded by 4u·g + D·(2|diff| + D)/σ̂².
 */
export function acceptEstimate(a: number, t: number, sigma: number): { pHat: number; error: number; g: number; gError: number } {
  const s2 = sigma * sigma;
  const c = s2 / t;
  const diff = a - c;
  const g = (diff * diff) / (2 * s2);
  const D = 2 * U * (a + 4 * c);
  const gError = 4 * U * g + (D * (2 * Math.abs(diff) + D)) / s2;
  const pHat = Math.exp(-g);
  return { pHat, error: expError(pHat, gError), g, gError };
}

const EXP_M1 = Math.exp(-1);
const EXP_M1_ERROR = expError(EXP_M1, 0);

/**
 * Bernoulli(e^{−γ}) exactly: U's first 53 bits against the interval [pHat − error, pHat + error] known to
 * hold e^{−γ}; `exact` gives γ as an exact rational only when that does not decide.
 */
function bernoulliExpNeg(words: WordStream, pHat: number, error: number, exact: () => [bigint, bigint]): boolean {
  const hiWord = words.next() >>> 11;
  const loWord = words.next();
  const k = hiWord * TWO_32 + loWord; // uniform in [0, 2^53)
  if ((k + 1) * TWO_M53 <= pHat - error) return true;
  if (k * TWO_M53 >= pHat + error) return false;
  const [num, den] = exact();
  return finishLessThanExpNeg(words, BigInt(k), 53, num, den);
}

/** Uniform integer in [0, n) for 1 ≤ n ≤ 2^32, by rejection (exact). */
function uniformBelow(words: WordStream, n: number): number {
  if (n === 1) return 0;
  const limit = TWO_32 - (TWO_32 % n);
  for (;;) {
    const w = words.next();
    if (w < limit) return w % n;
  }
}

/** One sample of the discrete Laplace Lap_Z(t), P[y] ∝ e^{−|y|/t}: CKS 2020, Algorithm 2 with s = 1. */
function discreteLaplace(words: WordStream, t: number): number {
  for (;;) {
    const u = uniformBelow(words, t);
    if (u !== 0) {
      // g = fl(u/t) is within u·g of u/t.
      const g = u / t;
      const pHat = Math.exp(-g);
      if (!bernoulliExpNeg(words, pHat, expError(pHat, 2 * U * g), () => [BigInt(u), BigInt(t)])) continue;
    }
    let v = 0;
    while (bernoulliExpNeg(words, EXP_M1, EXP_M1_ERROR, () => [1n, 1n])) v++;
    const x = u + t * v;
    const negative = (words.next() & 1) === 1;
    if (negative && x === 0) continue;
    return negative ? -x : x;
  }
}

/** One sample of N_Z(0, σ²): CKS 2020, Algorithm 3. */
function discreteGaussian(words: WordStream, sigma: number, t: number): number {
  for (;;) {
    const y = discreteLaplace(words, t);
    const a = Math.abs(y);
    const { pHat, error } = acceptEstimate(a, t, sigma);
    if (bernoulliExpNeg(words, pHat, error, () => acceptGamma(a, t, sigma))) return y;
  }
}

/**
 * Fills `out` with independent samples of the discrete Gaussian N_Z(0, σ²) (exactly; see the file comment),
 * drawing randomness from `source` (default: node:crypto). With a deterministic source the output is a
 * deterministic function of its bytes (for tests only: real noise must come from `cryptoByteSource`).
 * Throws FedsynthError("invalid-argument") for σ outside (0, 2^31], and RangeError in the (astronomically
 * unlikely, |x| > 2^31 − 1) case that a sample does not fit an Int32Array.
 */
export function sampleDiscreteGaussian(out: Int32Array | Float64Array, sigma: number, source: ByteSource = cryptoByteSource): void {
  if (!(out instanceof Int32Array) && !(out instanceof Float64Array)) {
    throw invalid("sampleDiscreteGaussian needs an Int32Array or a Float64Array to fill", "Allocate the output, e.g. new Int32Array(dimension).");
  }
  checkSigma(sigma);
  if (typeof source !== "function") throw invalid("sampleDiscreteGaussian needs a byte source function", "Omit it to use node:crypto.");
  const t = Math.floor(sigma) + 1;
  const words = new WordStream(source);
  const int32 = out instanceof Int32Array;
  for (let i = 0; i < out.length; i++) {
    const x = discreteGaussian(words, sigma, t);
    if (int32 && (x > 2147483647 || x < -2147483647)) throw new RangeError(`discrete Gaussian sample ${x} does not fit an Int32Array`);
    out[i] = x;
  }
}

/**
 * Bernoulli(e^{−num/den}) through the exact slow path only (every comparison goes to the BigInt
 * enclosures), for testing that path. Returns the number of successes in `trials` draws.
 */
export function countExactBernoulliExpNeg(num: bigint, den: bigint, trials: number, source: ByteSource): number {
  const words = new WordStream(source);
  let successes = 0;
  for (let i = 0; i < trials; i++) {
    const hiWord = words.next() >>> 11;
    const k = hiWord * TWO_32 + words.next();
    if (finishLessThanExpNeg(words, BigInt(k), 53, num, den)) successes++;
  }
  return successes;
}

/** log of Σ_{x∈Z} e^{−x²/(2σ²)} (the normaliser), summed directly over |x| ≤ 40σ + 40 (the rest is < e^{−800}). */
function logNormaliser(sigma: number): number {
  const span = Math.ceil(40 * sigma + 40);
  let sum = 1;
  for (let x = 1; x <= span; x++) sum += 2 * Math.exp((-x * x) / (2 * sigma * sigma));
  return Math.log(sum);
}

/** P[X = x] for X ~ N_Z(0, σ²) (double precision; for tests and reports, σ ≤ 1e5). */
export function discreteGaussianPmf(sigma: number, x: number): number {
  checkSigma(sigma);
  return Math.exp((-x * x) / (2 * sigma * sigma) - logNormaliser(sigma));
}

/** Var[X] for X ~ N_Z(0, σ²) (slightly below σ² for small σ; double precision; σ ≤ 1e5). */
export function discreteGaussianVariance(sigma: number): number {
  checkSigma(sigma);
  const span = Math.ceil(40 * sigma + 40);
  let z = 1;
  let m2 = 0;
  for (let x = 1; x <= span; x++) {
    const w = 2 * Math.exp((-x * x) / (2 * sigma * sigma));
    z += w;
    m2 += w * x * x;
  }
  return m2 / z;
}
