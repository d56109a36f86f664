import { describe, expect, it } from "vitest";
import {
  DEFAULT_ORDERS,
  gaussianRdp,
  logAdd,
  logAFractional,
  logAInteger,
  logErfc,
  logSub,
  rdpToEpsilon,
  subsampledGaussianRdp,
  subsampledGaussianRdpCurve,
} from "./rdp.js";
import { erfc } from "./gaussian.js";
import { FedsynthError } from "../errors.js";

/**
 * RDP per step, log(A_α)/(α − 1), computed independently with mpmath at 30 digits: the exact finite sum
 * at integer orders, and numerical integration (mpmath.quad) of the definition
 * A_α = ∫ 𝒩(z; 0, σ²)·((1 − q) + q·e^{(2z−1)/(2σ²)})^α dz at fractional ones (which agrees with the
 * exact sums at integer orders to 3e-20). [q, σ, α, rdp]
 */
const EXACT_RDP: [number, number, number, number][] = [
  [1e-5, 1.1, 2.5, 1.60649398723698761532543e-10],
  [0.001, 2, 10.9, 0.000001552232985511952613200681],
  [0.01, 1.1, 1.5, 0.0000955452857187482994926035],
  [0.01, 1.1, 2, 0.000128510081605161802909099],
  [0.01, 1.1, 3.7, 0.0002452877227239893342178145],
  [0.01, 1.1, 63, 21.3536107267678949775768],
  [0.1, 0.8, 2.5, 0.05808757108375134459707497],
  [0.1, 0.8, 12, 6.86308932643580402733869],
  [0.5, 1.1, 1.1, 0.1265610409025728673044808],
  [0.9, 0.5, 8, 15.87958798210542920012797],
  [0.9, 5, 32, 0.5645679687735543883435037],
];

/**
 * Independent check: log A_α by the trapezoidal rule on the definition (in log space), which converges
 * exponentially fast for this smooth, rapidly decaying integrand.
 */
function logAByQuadrature(q: number, sigma: number, alpha: number): number {
  const logMix = (z: number) => logAdd(Math.log1p(-q), Math.log(q) + (2 * z - 1) / (2 * sigma * sigma));
  const logF = (z: number) => (-z * z) / (2 * sigma * sigma) - Math.log(sigma * Math.sqrt(2 * Math.PI)) + alpha * logMix(z);
  const lo = -20 * sigma;
  const hi = alpha + 20 * sigma + 1;
  const h = sigma / 64;
  const n = Math.ceil((hi - lo) / h);
  const values: number[] = [];
  for (let k = 0; k <= n; k++) values.push(logF(lo + k * h));
  const max = Math.max(...values);
  let sum = 0;
  for (let k = 0; k <= n; k++) sum += (k === 0 || k === n ? 0.5 : 1) * Math.exp(values[k] - max);
  return max + Math.log(sum * h);
}

/** The classical conversion (Mironov 2017): min over orders of ρ + log(1/δ)/(α − 1). */
function classicalEpsilon(orders: readonly number[], rdp: number[], delta: number): number {
  return Math.min(...orders.map((a, k) => rdp[k] + Math.log(1 / delta) / (a - 1)));
}

describe("DEFAULT_ORDERS", () => {
  it("are Opacus's DEFAULT_ALPHAS: [1 + x/10.0 for x in range(1, 100)] + list(range(12, 64))", () => {
    expect(DEFAULT_ORDERS).toHaveLength(99 + 52);
    expect(DEFAULT_ORDERS[0]).toBe(1.1);
    expect(DEFAULT_ORDERS[98]).toBe(10.9);
    expect(DEFAULT_ORDERS[99]).toBe(12);
    expect(DEFAULT_ORDERS[DEFAULT_ORDERS.length - 1]).toBe(63);
    expect(DEFAULT_ORDERS.filter((a) => Number.isInteger(a) && a <= 10)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(DEFAULT_ORDERS[6]).toBe(1 + 7 / 10); // the same double as Python's 1 + 7 / 10.0
    expect(Object.isFrozen(DEFAULT_ORDERS)).toBe(true);
  });
});

describe("log-space helpers", () => {
  it("logAdd and logSub", () => {
    expect(logAdd(Math.log(2), Math.log(3))).toBeCloseTo(Math.log(5), 15);
    expect(logAdd(-Infinity, 1.5)).toBe(1.5);
    expect(logAdd(1000, 1000)).toBeCloseTo(1000 + Math.LN2, 12);
    expect(logSub(Math.log(5), Math.log(3))).toBeCloseTo(Math.log(2), 15);
    expect(logSub(2, -Infinity)).toBe(2);
    expect(logSub(2, 2)).toBe(-Infinity);
    expect(logSub(800, 100)).toBeCloseTo(800, 12);
    expect(() => logSub(1, 2)).toThrow(RangeError);
  });

  it("logErfc agrees with erfc and stays finite in the far tail", () => {
    for (const x of [-3, -0.5, 0, 0.3, 2, 5]) expect(logErfc(x)).toBeCloseTo(Math.log(erfc(x)), 13);
    // erfc(30) ≈ e^{−900}/(30√π) underflows, its log does not (mpmath: −903.97411711064387808)
    expect(Math.abs(logErfc(30) / -903.97411711064387808 - 1)).toBeLessThan(1e-14);
  });
});

describe("RDP of the sampled Gaussian mechanism", () => {
  it("is an upper bound on, and within 1e-6 of, independently computed values (mpmath)", () => {
    for (const [q, sigma, alpha, exact] of EXACT_RDP) {
      const got = subsampledGaussianRdp(q, sigma, alpha);
      expect(got, `q=${q} σ=${sigma} α=${alpha}`).toBeGreaterThanOrEqual(exact);
      // (The rounding allowance is relatively larger when the RDP itself is ~1e-10.)
      expect((got - exact) / exact, `q=${q} σ=${sigma} α=${alpha}`).toBeLessThan(exact < 1e-8 ? 1e-3 : 1e-6);
    }
  });

  it("matches numerical integration of the Rényi divergence's definition (trapezoidal rule, in this test)", () => {
    const cases: [number, number, number][] = [
      [0.01, 1.1, 1.5], [0.01, 1.1, 4.7], [0.01, 1.1, 8], [0.05, 0.9, 2.3], [0.2, 2, 10.9], [0.004, 1.1, 8.1], [0.3, 0.7, 20],
    ];
    for (const [q, sigma, alpha] of cases) {
      const quad = logAByQuadrature(q, sigma, alpha);
      const series = Number.isInteger(alpha) ? logAInteger(q, sigma, alpha) : logAFractional(q, sigma, alpha);
      expect(Math.abs(quad - series), `q=${q} σ=${sigma} α=${alpha}`).toBeLessThan(1e-12 + 1e-9 * Math.abs(series));
      expect(subsampledGaussianRdp(q, sigma, alpha) * (alpha - 1)).toBeGreaterThanOrEqual(quad * (1 - 1e-9) - 1e-13);
    }
  });

  it("at integer orders the fractional formula agrees with the integer one", () => {
    for (const [q, sigma] of [[0.01, 1.1], [0.2, 0.8], [0.001, 3], [0.6, 1.5]] as const) {
      for (const alpha of [2, 3, 7, 12, 30, 63]) {
        const int = logAInteger(q, sigma, alpha);
        const frac = logAFractional(q, sigma, alpha);
        expect(Math.abs(int - frac), `q=${q} σ=${sigma} α=${alpha}`).toBeLessThan(1e-12 * Math.max(1e-3, Math.abs(int)));
      }
    }
  });

  it("q = 1 is the Gaussian mechanism (α/(2σ²)), and q → 1 approaches it from below", () => {
    for (const alpha of [1.5, 2, 8.5, 32]) {
      for (const sigma of [0.7, 1.1, 4]) {
        const gaussian = alpha / (2 * sigma * sigma);
        expect(subsampledGaussianRdp(1, sigma, alpha)).toBeCloseTo(gaussian, 12);
        expect(gaussianRdp([{ kind: "gaussian", l2Sensitivity: 1, sigma, repetitions: 1 }], [alpha])[0]).toBeCloseTo(gaussian, 12);
        const almost = subsampledGaussianRdp(1 - 1e-9, sigma, alpha);
        expect(almost).toBeLessThanOrEqual(gaussian * (1 + 1e-12));
        expect(almost).toBeGreaterThan(gaussian * (1 - 1e-6));
      }
    }
  });

  it("special cases: q = 0 costs nothing, σ = 0 and α = ∞ are unbounded", () => {
    expect(subsampledGaussianRdp(0, 1, 2.5)).toBe(0);
    expect(subsampledGaussianRdp(0.01, 0, 2.5)).toBe(Infinity);
    expect(subsampledGaussianRdp(0.01, 1, Infinity)).toBe(Infinity);
    expect(subsampledGaussianRdpCurve({ samplingRate: 0, noiseMultiplier: 1, steps: 100 }).every((r) => r === 0)).toBe(true);
  });

  it("increases with q and α, and decreases with σ", () => {
    for (const alpha of [1.1, 2, 4.7, 63]) {
      let prev = 0;
      for (const q of [1e-4, 1e-3, 0.01, 0.1, 0.5, 0.9]) {
        const r = subsampledGaussianRdp(q, 1.1, alpha);
        expect(r).toBeGreaterThan(prev);
        prev = r;
      }
      prev = Infinity;
      for (const sigma of [0.5, 0.8, 1.1, 2, 5]) {
        const r = subsampledGaussianRdp(0.01, sigma, alpha);
        expect(r).toBeLessThan(prev);
        prev = r;
      }
    }
    const curve = subsampledGaussianRdpCurve({ samplingRate: 0.01, noiseMultiplier: 1.1, steps: 1 });
    for (let k = 1; k < curve.length; k++) expect(curve[k]).toBeGreaterThan(curve[k - 1]);
  });

  it("composes linearly in the number of steps", () => {
    const one = subsampledGaussianRdpCurve({ samplingRate: 0.01, noiseMultiplier: 1.1, steps: 1 });
    const many = subsampledGaussianRdpCurve({ samplingRate: 0.01, noiseMultiplier: 1.1, steps: 10_000 });
    many.forEach((r, k) => expect(r / (one[k] * 10_000)).toBeCloseTo(1, 12));
  });

  it("rejects invalid parameters with FedsynthError naming the parameter", () => {
    const cases: [() => unknown, RegExp][] = [
      [() => subsampledGaussianRdp(1.5, 1, 2), /samplingRate/],
      [() => subsampledGaussianRdp(-0.1, 1, 2), /samplingRate/],
      [() => subsampledGaussianRdp(NaN, 1, 2), /samplingRate/],
      [() => subsampledGaussianRdp(0.1, -1, 2), /noiseMultiplier/],
      [() => subsampledGaussianRdp(0.1, 1, 1), /order/],
      [() => subsampledGaussianRdp(0.1, 1, 0.5), /order/],
      [() => subsampledGaussianRdpCurve({ samplingRate: 0.1, noiseMultiplier: 1, steps: 1.5 }), /steps/],
      [() => logAInteger(0.1, 1, 2.5), /integer/],
    ];
    for (const [f, pattern] of cases) {
      let err: unknown;
      try {
        f();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FedsynthError);
      expect((err as FedsynthError).code).toBe("invalid-argument");
      expect((err as FedsynthError).message).toMatch(pattern);
    }
  });
});

describe("rdpToEpsilon (Balle et al. 2020, Theorem 21)", () => {
  it("is the formula minimised over the orders, skipping orders ≤ 1 and non-finite values", () => {
    const orders = [0.5, 1, 2, 4, 8, 16];
    const rdp = [0, 0, 0.5, NaN, 2, Infinity];
    const delta = 1e-5;
    const at = (a: number, r: number) => r - (Math.log(delta) + Math.log(a)) / (a - 1) + Math.log((a - 1) / a);
    const want = Math.min(at(2, 0.5), at(8, 2));
    const got = rdpToEpsilon(orders, rdp, delta);
    expect(got.order).toBe(want === at(2, 0.5) ? 2 : 8);
    expect(got.epsilon).toBeGreaterThanOrEqual(want);
    expect(got.epsilon - want).toBeLessThan(1e-14);
  });

  it("is tighter than the classical conversion, never negative, and ∞ when no order is usable", () => {
    const curve = subsampledGaussianRdpCurve({ samplingRate: 0.02, noiseMultiplier: 1, steps: 500 });
    expect(rdpToEpsilon(DEFAULT_ORDERS, curve, 1e-6).epsilon).toBeLessThan(classicalEpsilon(DEFAULT_ORDERS, curve, 1e-6));
    expect(rdpToEpsilon([63], [0], 0.9).epsilon).toBe(0);
    expect(rdpToEpsilon([1, 2], [0, Infinity], 1e-5)).toEqual({ epsilon: Infinity, order: NaN });
    expect(rdpToEpsilon([], [], 1e-5).epsilon).toBe(Infinity);
  });

  it("rejects mismatched inputs, negative RDP and a delta outside (0, 1)", () => {
    expect(() => rdpToEpsilon([2, 3], [1], 1e-5)).toThrow(FedsynthError);
    expect(() => rdpToEpsilon([2], [-1], 1e-5)).toThrow(FedsynthError);
    for (const delta of [0, 1, -1, NaN]) expect(() => rdpToEpsilon([2], [1], delta)).toThrow(FedsynthError);
  });
});

describe("published DP-SGD values", () => {
  const epsilonFor = (q: number, sigma: number, steps: number, delta: number) => {
    const curve = subsampledGaussianRdpCurve({ samplingRate: q, noiseMultiplier: sigma, steps });
    return { ...rdpToEpsilon(DEFAULT_ORDERS, curve, delta), classical: classicalEpsilon(DEFAULT_ORDERS, curve, delta) };
  };

  // References: the same orders and conversions evaluated in mpmath at 30 digits (exact sums at integer
  // orders, quadrature of the definition at fractional ones). Opacus's float64 code gives 5.63199236854841
  // and 2.5965558689607486.
  it("q = 0.01, σ = 1.1, 10,000 steps, δ = 1e-5: ε ≈ 5.632 (Opacus's conversion; 6.279 with the classical one)", () => {
    const { epsilon, order, classical } = epsilonFor(0.01, 1.1, 10_000, 1e-5);
    expect(order).toBe(4.7);
    expect(epsilon).toBeGreaterThanOrEqual(5.6319923686818018);
    expect(epsilon - 5.6319923686818018).toBeLessThan(1e-7);
    expect(classical).toBeCloseTo(6.2787102792501579, 6);
  });

  it("q = 256/60000, σ = 1.1, 14,062 steps (60 MNIST epochs), δ = 1e-5: ε ≈ 2.597 (3.008 classically)", () => {
    const { epsilon, order, classical } = epsilonFor(256 / 60000, 1.1, 14_062, 1e-5);
    expect(order).toBe(8.1);
    expect(epsilon).toBeGreaterThanOrEqual(2.5965558689532974);
    expect(epsilon - 2.5965558689532974).toBeLessThan(1e-7);
    expect(classical).toBeCloseTo(3.0082720825330340, 6);
  });
});
