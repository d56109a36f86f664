import { createCipheriv, createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  acceptEstimate,
  acceptGamma,
  countExactBernoulliExpNeg,
  cryptoByteSource,
  discreteGaussianPmf,
  discreteGaussianVariance,
  expNegEnclosure,
  sampleDiscreteGaussian,
  type ByteSource,
} from "./discrete-gaussian.js";
import { FedsynthError } from "../errors.js";

/** A deterministic byte stream (AES-128-CTR keyed by the seed): reproducible tests, no flakiness. */
function seededSource(seed: string): ByteSource {
  const key = createHash("sha256").update(seed).digest().subarray(0, 16);
  const cipher = createCipheriv("aes-128-ctr", key, Buffer.alloc(16));
  return (buffer) => {
    buffer.set(cipher.update(Buffer.alloc(buffer.length)));
  };
}

/** Pearson's chi-square of counts against pmf over |x| ≤ span, with the two tails pooled into one bin each. */
function chiSquare(samples: Int32Array, pmf: (x: number) => number, span: number): { stat: number; df: number } {
  const counts = new Map<number, number>();
  for (const x of samples) {
    const key = Math.max(-span - 1, Math.min(span + 1, x));
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  let inside = 0;
  let stat = 0;
  for (let x = -span; x <= span; x++) {
    const p = pmf(x);
    inside += p;
    const expected = p * samples.length;
    const observed = counts.get(x) ?? 0;
    stat += ((observed - expected) ** 2) / expected;
  }
  const tail = (1 - inside) / 2;
  for (const key of [-span - 1, span + 1]) {
    const expected = tail * samples.length;
    const observed = counts.get(key) ?? 0;
    if (expected > 0) stat += ((observed - expected) ** 2) / expected;
    else expect(observed).toBe(0);
  }
  return { stat, df: 2 * span + 2 };
}

/**
 * Upper 1e-7 quantile of chi-square(df) by the Wilson–Hilferty approximation (z = 5.2): a correct sampler
 * fails once in ten million runs, and the seeded source makes the run reproducible anyway.
 */
function chiSquareCritical(df: number): number {
  const z = 5.2;
  const h = 2 / (9 * df);
  return df * (1 - h + z * Math.sqrt(h)) ** 3;
}

describe("expNegEnclosure (the exact slow path)", () => {
  it("encloses e^{−γ} and is narrow, for integer, fractional and large γ", () => {
    const cases: [bigint, bigint][] = [[0n, 1n], [1n, 1n], [1n, 3n], [7n, 2n], [123n, 1000n], [999n, 1000n], [5000n, 7n], [1n, 1000000n]];
    for (const [num, den] of cases) {
      const [lo, hi] = expNegEnclosure(num, den, 80);
      const value = Math.exp(-Number(num) / Number(den));
      expect(Number(lo) / 2 ** 80).toBeLessThanOrEqual(value * (1 + 1e-15) + 1e-300);
      expect(Number(hi) / 2 ** 80).toBeGreaterThanOrEqual(value * (1 - 1e-15));
      expect(hi - lo).toBeLessThanOrEqual(4n);
      expect(hi).toBeGreaterThanOrEqual(lo);
    }
  });

  it("agrees with e to 200 bits (e^{−1} = 0.36787944117144232159552377016146086744581113103176…)", () => {
    const [lo, hi] = expNegEnclosure(1n, 1n, 200);
    const digits = 10n ** 50n;
    const scaledLo = (lo * digits) >> 200n;
    const scaledHi = ((hi * digits) >> 200n) + 1n;
    const ref = 36787944117144232159552377016146086744581113103176n; // e^{-1}·10^50, truncated
    expect(scaledLo <= ref + 1n && ref <= scaledHi).toBe(true);
    expect(scaledHi - scaledLo).toBeLessThanOrEqual(2n);
  });

  it("the slow path alone samples Bernoulli(e^{−γ}) with the right frequency", () => {
    for (const [num, den] of [[1n, 1n], [1n, 3n], [5n, 2n]] as [bigint, bigint][]) {
      const p = Math.exp(-Number(num) / Number(den));
      const trials = 20_000;
      const hits = countExactBernoulliExpNeg(num, den, trials, seededSource(`slow-${num}/${den}`));
      const sd = Math.sqrt(trials * p * (1 - p));
      expect(Math.abs(hits - trials * p)).toBeLessThan(5.5 * sd);
    }
  });
});

describe("acceptEstimate (the fast path's error bound)", () => {
  it("always contains the exact acceptance probability, for σ from 0.3 to 1e6 and |y| far into the tails", () => {
    const rng = seededSource("accept-estimate");
    const buf = new Uint32Array(3);
    for (let i = 0; i < 600; i++) {
      rng(new Uint8Array(buf.buffer));
      const sigma = 0.3 * 10 ** ((buf[0] / 2 ** 32) * 6.5);
      const t = Math.floor(sigma) + 1;
      const a = Math.floor((buf[1] / 2 ** 32) * 12 * sigma + (buf[2] % 3));
      const { pHat, error, g } = acceptEstimate(a, t, sigma);
      if (g > 700) continue; // e^{−γ} underflows in double: not comparable here (the sampler still handles it exactly)
      const [num, den] = acceptGamma(a, t, sigma);
      // Enough bits for a relative precision of ~2^−100 even when p is tiny (p ≈ 2^{−1.44 g}).
      const bits = 100 + Math.ceil(1.45 * g);
      const [lo, hi] = expNegEnclosure(num, den, bits);
      // |pHat − p| ≤ error, where p ∈ [lo, hi]/2^bits; the enclosure is far narrower than the bound.
      const pLo = Number(lo) / 2 ** bits;
      const pHi = Number(hi) / 2 ** bits;
      expect(pHat - error, `σ=${sigma} a=${a}`).toBeLessThanOrEqual(pLo * (1 + 1e-15));
      expect(pHat + error, `σ=${sigma} a=${a}`).toBeGreaterThanOrEqual(pHi * (1 - 1e-15));
      expect(error).toBeLessThan(1e-9); // tight enough that the slow path is (almost) never taken
    }
  });

  it("acceptGamma is the exact rational (|y| − σ²/t)²/(2σ²)", () => {
    const [num, den] = acceptGamma(3, 2, 1.5); // (3 − 2.25/2)² / (2·2.25) = 1.875²/4.5
    expect(Number(num) / Number(den)).toBeCloseTo((1.875 * 1.875) / 4.5, 15);
    const [n2, d2] = acceptGamma(0, 1, 0.1); // σ = 0.1 is not dyadic: σ² is taken from its exact double value
    const s = 0.1;
    expect(Number(n2) / Number(d2)).toBeCloseTo((s * s) / 2, 17);
  });
});

describe("sampleDiscreteGaussian", () => {
  it("is a deterministic function of its byte source (and differs with different bytes)", () => {
    const a = new Int32Array(5000);
    const b = new Int32Array(5000);
    const c = new Int32Array(5000);
    sampleDiscreteGaussian(a, 7.5, seededSource("same"));
    sampleDiscreteGaussian(b, 7.5, seededSource("same"));
    sampleDiscreteGaussian(c, 7.5, seededSource("other"));
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    const f = new Float64Array(5000);
    sampleDiscreteGaussian(f, 7.5, seededSource("same"));
    expect(Array.from(f)).toEqual(Array.from(a));
    expect(f.every((x) => Number.isInteger(x))).toBe(true);
  });

  it("has the exact pmf: chi-square against N_Z(0, σ²) at small σ, and rejects a 3% wrong σ", () => {
    for (const sigma of [0.2, 0.5, 1, 1.7, 3]) {
      const n = 400_000;
      const samples = new Int32Array(n);
      sampleDiscreteGaussian(samples, sigma, seededSource(`pmf-${sigma}`));
      const span = Math.max(1, Math.ceil(3 * sigma));
      const right = chiSquare(samples, (x) => discreteGaussianPmf(sigma, x), span);
      expect(right.stat, `σ=${sigma}`).toBeLessThan(chiSquareCritical(right.df));
      // The test has power: the same samples against a 3% larger σ fail clearly.
      const wrong = chiSquare(samples, (x) => discreteGaussianPmf(sigma * 1.03, x), span);
      if (sigma >= 0.5) expect(wrong.stat, `σ=${sigma}`).toBeGreaterThan(3 * chiSquareCritical(wrong.df));
    }
  });

  it("matches exact frequencies at σ = 1 (P[0] = 0.39894…, P[±1] = 0.24197…, P[±2] = 0.05399…)", () => {
    const n = 1_000_000;
    const samples = new Int32Array(n);
    sampleDiscreteGaussian(samples, 1, seededSource("freq"));
    // The normaliser by Poisson summation, independently of the library's direct sum:
    // Σ_x e^{−x²/2} = √(2π)·(1 + 2e^{−2π²} + 2e^{−8π²} + …) = 2.5066282880…
    const z = Math.sqrt(2 * Math.PI) * (1 + 2 * Math.exp(-2 * Math.PI ** 2) + 2 * Math.exp(-8 * Math.PI ** 2));
    for (const x of [0, 1, -1, 2, -2, 3]) {
      const p = Math.exp(-x * x / 2) / z;
      expect(discreteGaussianPmf(1, x) / p - 1).toBeLessThan(1e-13);
      expect(p / discreteGaussianPmf(1, x) - 1).toBeLessThan(1e-13);
      const count = samples.reduce((s, v) => s + (v === x ? 1 : 0), 0);
      expect(Math.abs(count - n * p), `x=${x}`).toBeLessThan(5.5 * Math.sqrt(n * p * (1 - p)));
    }
  });

  it("has mean 0 and the discrete Gaussian's variance, for σ from 1 to 1e6 (crypto source)", () => {
    for (const sigma of [1, 10, 1000, 1e6]) {
      const n = 200_000;
      const samples = new Float64Array(n);
      sampleDiscreteGaussian(samples, sigma);
      let sum = 0;
      let sq = 0;
      for (const x of samples) {
        sum += x;
        sq += x * x;
      }
      const variance = sigma <= 1e5 ? discreteGaussianVariance(sigma) : sigma * sigma; // equal to ~e^{−2π²σ²} relative
      const mean = sum / n;
      expect(Math.abs(mean), `σ=${sigma}`).toBeLessThan(6 * Math.sqrt(variance / n));
      // Var of the sample second moment ≈ 2σ⁴/n.
      expect(Math.abs(sq / n - variance) / variance, `σ=${sigma}`).toBeLessThan(6 * Math.sqrt(2 / n));
      // Fourth moment ≈ 3σ⁴ (Gaussian tails: no truncation, no heavy tail).
      let m4 = 0;
      for (const x of samples) m4 += (x * x) ** 2 / (variance * variance);
      expect(Math.abs(m4 / n - 3), `σ=${sigma}`).toBeLessThan(0.15);
    }
  });

  it("the variance at small σ is the discrete Gaussian's, visibly below σ² (not a rounded continuous Gaussian)", () => {
    const sigma = 0.5;
    const exact = discreteGaussianVariance(sigma); // (2e^{−2} + 8e^{−8} + …)/(1 + 2e^{−2} + 2e^{−8} + …) ≈ 0.21501
    expect(exact).toBeLessThan(0.25);
    expect(exact).toBeCloseTo(0.21501, 4);
    const n = 500_000;
    const samples = new Int32Array(n);
    sampleDiscreteGaussian(samples, sigma, seededSource("var-small"));
    const m2 = samples.reduce((s, x) => s + x * x, 0) / n;
    expect(Math.abs(m2 - exact)).toBeLessThan(6 * Math.sqrt(exact * 3 / n));
    // Rounding N(0, 0.25) to the nearest integer would give ≈ 2Φ(−1) + 6Φ(−3) ≈ 0.325: clearly rejected.
    expect(Math.abs(m2 - 0.325)).toBeGreaterThan(0.05);
  });

  it("rejects invalid arguments with FedsynthError('invalid-argument') naming sigma", () => {
    for (const sigma of [0, -1, NaN, Infinity, 2 ** 32, "3" as unknown as number]) {
      let err: unknown;
      try {
        sampleDiscreteGaussian(new Int32Array(4), sigma);
      } catch (e) {
        err = e;
      }
      expect(err, String(sigma)).toBeInstanceOf(FedsynthError);
      expect((err as FedsynthError).code).toBe("invalid-argument");
      expect((err as FedsynthError).message).toContain("sigma");
      expect((err as FedsynthError).hint).toBeTruthy();
    }
    expect(() => sampleDiscreteGaussian([0, 0] as unknown as Int32Array, 1)).toThrow(FedsynthError);
    expect(() => sampleDiscreteGaussian(new Int32Array(2), 1, "x" as unknown as ByteSource)).toThrow(FedsynthError);
  });
});
