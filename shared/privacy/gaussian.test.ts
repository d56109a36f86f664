import { describe, expect, it } from "vitest";
import {
  deltaForEpsilon,
  epsilonForDelta,
  erfc,
  gdpMu,
  logNormalCdf,
  normalCdf,
  scaledUpperTail,
} from "./gaussian.js";
import type { GaussianMechanism } from "./mechanism.js";
import { FedsynthError } from "../errors.js";

const g = (l2Sensitivity: number, sigma: number, repetitions = 1): GaussianMechanism => ({
  kind: "gaussian",
  l2Sensitivity,
  sigma,
  repetitions,
});

/** Reference values computed with mpmath at 60 digits. */
const PHI: [number, number][] = [
  [0.5, 0.6914624612740131036377046],
  [-1, 0.1586552539314570514147675],
  [-5, 2.866515718791939116737523e-7],
  [-10, 7.619853024160526065973343e-24],
  [-20, 2.753624118606233695075623e-89],
  [-37, 5.725571222524576822683193e-300],
  [3, 0.9986501019683699054733482],
  [-0.3, 0.3820885778110473669277264],
  [0.67, 0.748571104904689898448007],
  [5.6, 0.9999999892824097416890707],
  [5.7, 0.9999999940096285989364718],
];

/** (μ, δ, ε(δ)) from a 200-step bisection of the exact curve in mpmath at 60 digits. */
const EPS: [number, number, number][] = [
  [1, 1e-5, 4.3771780956812246277],
  [0.1, 1e-6, 0.396857377644083614],
  [0.5, 1e-6, 2.254084650219740935],
  [2, 1e-6, 10.997151214220651115],
  [10, 1e-6, 96.717271963867698852],
  [100, 1e-6, 5474.3655001946367571],
  [0.01, 1e-5, 0.027219419814577136174],
  [1, 1e-12, 7.2384944201788583599],
  [3, 1e-300, 115.43143004191344904],
  [1e-6, 1e-9, 2.7178059287972227844e-6],
  [0.001, 1e-6, 0.0027182190888139951196],
  [30, 1e-10, 639.93352320145038591],
];

describe("normal CDF (Cody)", () => {
  it("matches high-precision values with ~1e-14 relative accuracy, including far tails", () => {
    for (const [x, want] of PHI) {
      expect(Math.abs(normalCdf(x) - want) / want, `Φ(${x})`).toBeLessThan(1e-14);
      expect(Math.abs(logNormalCdf(x) - Math.log(want)), `log Φ(${x})`).toBeLessThan(1e-13 * Math.max(1, Math.abs(Math.log(want))));
    }
  });

  it("is consistent: Φ(x) + Φ(−x) = 1, erfc, and the scaled tail", () => {
    for (let x = -6; x <= 6; x += 0.137) {
      expect(normalCdf(x) + normalCdf(-x)).toBeCloseTo(1, 15);
      expect(erfc(x / Math.SQRT2)).toBeCloseTo(2 * normalCdf(-x), 15);
    }
    for (const t of [0, 0.3, 0.6744, 0.6746, 1, 3, 5.65, 5.66, 10, 30]) {
      const direct = normalCdf(-t) * Math.exp((t * t) / 2);
      expect(Math.abs(scaledUpperTail(t) - direct) / direct).toBeLessThan(1e-13);
    }
    // R(t) ~ 1/(t √(2π)) for large t
    expect(scaledUpperTail(1e6) * 1e6 * Math.sqrt(2 * Math.PI)).toBeCloseTo(1, 10);
    expect(scaledUpperTail(Infinity)).toBe(0);
  });
});

describe("gdpMu", () => {
  it("is Δ/σ for one mechanism and composes in quadrature", () => {
    expect(gdpMu([g(2, 4)])).toBe(0.5);
    expect(gdpMu([g(3, 1), g(4, 1)])).toBeCloseTo(5, 14);
    expect(gdpMu([g(1, 2, 4)])).toBeCloseTo(1, 14);
    expect(gdpMu([])).toBe(0);
  });

  it("k identical mechanisms with σ equal one mechanism with σ/√k", () => {
    for (const k of [2, 5, 16, 100]) {
      const many = gdpMu(Array.from({ length: k }, () => g(1.7, 3.2)));
      expect(many).toBeCloseTo(gdpMu([g(1.7, 3.2 / Math.sqrt(k))]), 12);
      expect(gdpMu([g(1.7, 3.2, k)])).toBeCloseTo(many, 12);
      expect(epsilonForDelta(many, 1e-6)).toBeCloseTo(epsilonForDelta(gdpMu([g(1.7, 3.2 / Math.sqrt(k))]), 1e-6), 7);
    }
  });

  it("rejects invalid parameters", () => {
    expect(() => gdpMu([g(1, 0)])).toThrow(FedsynthError);
    expect(() => gdpMu([g(-1, 1)])).toThrow(FedsynthError);
    expect(() => gdpMu([g(1, NaN)])).toThrow(FedsynthError);
    expect(() => gdpMu([g(1, 1, 1.5)])).toThrow(FedsynthError);
  });
});

describe("deltaForEpsilon", () => {
  it("for μ=1, δ(0) = 2Φ(0.5) − 1 ≈ 0.3829", () => {
    expect(deltaForEpsilon(1, 0)).toBeCloseTo(0.38292492254802620727, 14);
    expect(deltaForEpsilon(1, 0)).toBeCloseTo(2 * normalCdf(0.5) - 1, 15);
  });

  it("matches high-precision values, including large ε without overflow and tiny μ", () => {
    // [μ, ε, δ, relative tolerance]; for tiny μ the difference R(t1) − R(t2) cancels (error ~1e-16·t/μ).
    const cases: [number, number, number, number][] = [
      [2, 3, 0.1838130765444721559701073, 1e-13],
      [50, 1500, 2.596292350824537942970961e-7, 1e-11],
      [0.001, 0.003, 3.827279372473897022159211e-7, 1e-11],
      [200, 22000, 7.253451873785286747922494e-24, 1e-10], // e^ε alone would overflow
      [1e-6, 2e-6, 8.490711107535664840802496e-9, 1e-8],
    ];
    for (const [mu, eps, want, tol] of cases) {
      expect(Math.abs(deltaForEpsilon(mu, eps) - want) / want, `δ(μ=${mu}, ε=${eps})`).toBeLessThan(tol);
    }
    expect(deltaForEpsilon(200, 50000)).toBe(0); // e^{-11250}: underflows, correctly
  });

  it("is decreasing in ε and increasing in μ, within [0, 1]", () => {
    for (const mu of [0.05, 0.5, 1, 3, 20]) {
      let prev = Infinity;
      for (let eps = 0; eps < 4 * mu * mu + 10 * mu; eps += mu / 7) {
        const d = deltaForEpsilon(mu, eps);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(1);
        expect(d).toBeLessThanOrEqual(prev);
        prev = d;
        expect(deltaForEpsilon(mu * 1.1, eps)).toBeGreaterThanOrEqual(d);
      }
    }
  });

  it("handles μ = 0 and μ = ∞", () => {
    expect(deltaForEpsilon(0, 1)).toBe(0);
    expect(deltaForEpsilon(Infinity, 1)).toBe(1);
  });
});

describe("epsilonForDelta", () => {
  it("agrees with high-precision inversions, never below them", () => {
    for (const [mu, delta, want] of EPS) {
      const got = epsilonForDelta(mu, delta);
      expect(got, `ε(μ=${mu}, δ=${delta})`).toBeGreaterThanOrEqual(want);
      // 1e-9 from the bisection; for tiny μ the rounding allowance for the cancellation in δ dominates.
      expect((got - want) / want, `ε(μ=${mu}, δ=${delta})`).toBeLessThan(mu < 1e-4 ? 1e-6 : 3e-9);
    }
  });

  it("returns a point where δ(ε) ≤ target, just above the point where it exceeds it", () => {
    for (const mu of [0.02, 0.3, 1, 4, 30]) {
      for (const delta of [1e-3, 1e-5, 1e-9]) {
        const eps = epsilonForDelta(mu, delta);
        expect(deltaForEpsilon(mu, eps)).toBeLessThanOrEqual(delta);
        expect(deltaForEpsilon(mu, eps * (1 - 1e-6))).toBeGreaterThan(delta);
      }
    }
  });

  it("is tighter than the classical Gaussian mechanism bound σ = Δ·sqrt(2 ln(1.25/δ))/ε (ε < 1)", () => {
    for (const eps of [0.1, 0.5, 0.9]) {
      for (const delta of [1e-3, 1e-5, 1e-8]) {
        const sigma = Math.sqrt(2 * Math.log(1.25 / delta)) / eps;
        expect(epsilonForDelta(gdpMu([g(1, sigma)]), delta)).toBeLessThanOrEqual(eps);
      }
    }
  });

  it("is increasing in μ and decreasing in δ", () => {
    let prev = 0;
    for (const mu of [0.01, 0.1, 0.5, 1, 2, 5, 10, 50]) {
      const e = epsilonForDelta(mu, 1e-6);
      expect(e).toBeGreaterThan(prev);
      prev = e;
      expect(epsilonForDelta(mu, 1e-3)).toBeLessThan(e);
    }
  });

  it("is 0 when δ(0) is already below the target, and handles μ = 0 and ∞", () => {
    expect(epsilonForDelta(0, 1e-5)).toBe(0);
    expect(epsilonForDelta(1e-3, 0.5)).toBe(0);
    expect(epsilonForDelta(Infinity, 1e-5)).toBe(Infinity);
  });

  it("rejects invalid arguments with FedsynthError", () => {
    for (const delta of [0, 1, -1, NaN, Infinity]) {
      expect(() => epsilonForDelta(1, delta)).toThrow(FedsynthError);
    }
    expect(() => epsilonForDelta(-1, 1e-5)).toThrow(FedsynthError);
    expect(() => epsilonForDelta(NaN, 1e-5)).toThrow(FedsynthError);
    expect(() => deltaForEpsilon(1, -1)).toThrow(FedsynthError);
  });
});
