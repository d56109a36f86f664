import { describe, expect, it } from "vitest";
import { Accountant } from "./accountant.js";
import { epsilonForDelta } from "./gaussian.js";
import { DEFAULT_ORDERS, gaussianRdp, rdpToEpsilon, subsampledGaussianRdpCurve } from "./rdp.js";
import type { Mechanism } from "./mechanism.js";
import { FedsynthError } from "../errors.js";

const g = (l2Sensitivity: number, sigma: number, repetitions = 1): Mechanism => ({
  kind: "gaussian",
  l2Sensitivity,
  sigma,
  repetitions,
});

const sgm = (samplingRate: number, noiseMultiplier: number, steps: number, clipNorm = 1): Mechanism => ({
  kind: "subsampled-gaussian",
  samplingRate,
  noiseMultiplier,
  steps,
  clipNorm,
});

describe("Accountant", () => {
  it("an empty history costs nothing", () => {
    expect(new Accountant().epsilon(1e-5)).toBe(0);
    expect(Accountant.epsilonOf([], 1e-5)).toBe(0);
  });

  it("records an append-only history and returns copies", () => {
    const acc = new Accountant([g(1, 2)]);
    acc.record(g(2, 3, 4));
    const h = acc.history();
    expect(h).toEqual([g(1, 2), g(2, 3, 4)]);
    h.pop();
    (h[0] as { sigma: number }).sigma = 1e-9;
    expect(acc.history()).toEqual([g(1, 2), g(2, 3, 4)]);
  });

  it("does not alias the mechanisms it was given", () => {
    const m = g(1, 2);
    const acc = new Accountant();
    acc.record(m);
    (m as { sigma: number }).sigma = 0.001;
    expect(acc.history()[0]).toEqual(g(1, 2));
  });

  it("composes Gaussian mechanisms exactly in GDP", () => {
    const acc = new Accountant();
    acc.record(g(3, 1));
    acc.record(g(4, 1));
    expect(acc.epsilon(1e-5)).toBe(epsilonForDelta(5, 1e-5));
    expect(Accountant.epsilonOf([g(1, 2, 4)], 1e-6)).toBeCloseTo(Accountant.epsilonOf([g(1, 1)], 1e-6), 7);
  });

  it("spends more with every record (monotone)", () => {
    const acc = new Accountant();
    let prev = 0;
    for (let i = 0; i < 10; i++) {
      acc.record(g(Math.sqrt(7), 20));
      const e = acc.epsilon(1e-5);
      expect(e).toBeGreaterThan(prev);
      prev = e;
    }
    expect(Accountant.epsilonOf(acc.history(), 1e-5)).toBe(prev);
  });

  it("rejects unknown kinds and invalid parameters with FedsynthError('invalid-argument')", () => {
    const unknown = { kind: "laplace", l1Sensitivity: 1, scale: 1 } as unknown as Mechanism;
    let err: unknown;
    try {
      Accountant.epsilonOf([unknown], 1e-5);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FedsynthError);
    expect((err as FedsynthError).code).toBe("invalid-argument");
    expect((err as FedsynthError).message).toContain("laplace");
    expect(() => new Accountant([unknown])).toThrow(FedsynthError);
    expect(() => new Accountant().record(g(1, 0))).toThrow(FedsynthError);
    expect(() => new Accountant().record(null as unknown as Mechanism)).toThrow(FedsynthError);
    expect(() => Accountant.epsilonOf([g(1, 1)], 0)).toThrow(FedsynthError);
    expect(() => Accountant.epsilonOf([g(1, 1)], 1)).toThrow(FedsynthError);
  });
});

describe("Accountant with subsampled Gaussian mechanisms (DP-SGD)", () => {
  it("accounts a DP-SGD run in RDP: q=0.01, σ=1.1, 10,000 steps, δ=1e-5 → ε ≈ 5.632", () => {
    const spent = Accountant.spentOf([sgm(0.01, 1.1, 10_000)], 1e-5);
    expect(spent.method).toBe("rdp");
    expect(spent.order).toBe(4.7);
    expect(spent.epsilon).toBeGreaterThanOrEqual(5.6319923686818018); // mpmath, same orders and conversion
    expect(spent.epsilon - 5.6319923686818018).toBeLessThan(1e-7);
    const curve = subsampledGaussianRdpCurve({ samplingRate: 0.01, noiseMultiplier: 1.1, steps: 10_000 });
    expect(spent.epsilon / rdpToEpsilon(DEFAULT_ORDERS, curve, 1e-5).epsilon - 1).toBeLessThan(1e-13);
  });

  it("the clip norm is recorded but does not change epsilon", () => {
    const a = Accountant.epsilonOf([sgm(0.02, 0.9, 300, 1)], 1e-6);
    expect(Accountant.epsilonOf([sgm(0.02, 0.9, 300, 17.5)], 1e-6)).toBe(a);
    const acc = new Accountant([sgm(0.02, 0.9, 300, 17.5)]);
    expect(acc.history()).toEqual([sgm(0.02, 0.9, 300, 17.5)]);
    (acc.history()[0] as { steps: number }).steps = 1;
    expect(acc.epsilon(1e-6)).toBe(a);
  });

  it("is monotone in the number of steps and in the noise multiplier", () => {
    let prev = 0;
    for (const steps of [1, 10, 100, 1000, 10_000, 100_000]) {
      const e = Accountant.epsilonOf([sgm(0.005, 1.2, steps)], 1e-5);
      expect(e).toBeGreaterThan(prev);
      prev = e;
    }
    prev = Infinity;
    for (const sigma of [0.6, 0.8, 1, 1.5, 2, 4, 8]) {
      const e = Accountant.epsilonOf([sgm(0.005, sigma, 5000)], 1e-5);
      expect(e).toBeLessThan(prev);
      prev = e;
    }
  });

  it("charges spread over many records compose to the same epsilon as one record of all the steps", () => {
    const acc = new Accountant();
    for (let i = 0; i < 20; i++) acc.record(sgm(0.01, 1.1, 500));
    const once = Accountant.epsilonOf([sgm(0.01, 1.1, 10_000)], 1e-5);
    expect(acc.epsilon(1e-5) / once - 1).toBeLessThan(1e-12);
    expect(acc.epsilon(1e-5)).toBeGreaterThanOrEqual(once * (1 - 1e-15));
  });

  it("sampling rate 1 is a plain Gaussian mechanism, accounted exactly in GDP (tighter than RDP)", () => {
    const spent = Accountant.spentOf([sgm(1, 2, 16)], 1e-5);
    expect(spent.method).toBe("gdp");
    expect(spent.epsilon).toBe(epsilonForDelta(2, 1e-5)); // μ = √16/2
    expect(spent.epsilon).toBe(Accountant.epsilonOf([g(1, 2, 16)], 1e-5));
    const viaRdp = rdpToEpsilon(DEFAULT_ORDERS, subsampledGaussianRdpCurve({ samplingRate: 1, noiseMultiplier: 2, steps: 16 }), 1e-5).epsilon;
    expect(spent.epsilon).toBeLessThan(viaRdp);
  });

  it("sampling rate 0 costs nothing", () => {
    expect(Accountant.spentOf([sgm(0, 1, 1000)], 1e-5)).toEqual({ epsilon: 0, method: "none" });
    expect(Accountant.epsilonOf([g(1, 3), sgm(0, 1, 1000)], 1e-5)).toBe(Accountant.epsilonOf([g(1, 3)], 1e-5));
  });

  it("mixed histories compose in RDP and cost at least each part alone", () => {
    const gaussians = [g(Math.sqrt(14), 30), g(1, 5, 3)];
    const training = [sgm(0.01, 1.1, 2000), sgm(0.05, 2, 300)];
    const mixed = Accountant.spentOf([...gaussians, ...training], 1e-5);
    expect(mixed.method).toBe("rdp");
    const gOnly = Accountant.epsilonOf(gaussians, 1e-5);
    const tOnly = Accountant.epsilonOf(training, 1e-5);
    expect(mixed.epsilon).toBeGreaterThanOrEqual(gOnly);
    expect(mixed.epsilon).toBeGreaterThanOrEqual(tOnly);
    for (const part of [...gaussians, ...training]) expect(mixed.epsilon).toBeGreaterThanOrEqual(Accountant.epsilonOf([part], 1e-5));
    // It is the RDP composition of all of them (the Gaussians at αΣ reps·(Δ/σ)²/2).
    const total = gaussianRdp(gaussians as never, DEFAULT_ORDERS);
    for (const m of training) {
      const curve = subsampledGaussianRdpCurve(m as never, DEFAULT_ORDERS);
      curve.forEach((r, k) => (total[k] += r));
    }
    const want = rdpToEpsilon(DEFAULT_ORDERS, total, 1e-5).epsilon;
    expect(mixed.epsilon).toBeGreaterThanOrEqual(want);
    expect(mixed.epsilon / want - 1).toBeLessThan(1e-12);
    // Order does not matter.
    expect(Accountant.epsilonOf([...training, ...gaussians].reverse(), 1e-5) / mixed.epsilon - 1).toBeLessThan(1e-12);
  });

  it("rejects invalid subsampled Gaussian parameters with an error naming the parameter", () => {
    const bad: [Mechanism, string][] = [
      [sgm(1.5, 1, 10), "samplingRate"],
      [sgm(-0.01, 1, 10), "samplingRate"],
      [sgm(NaN, 1, 10), "samplingRate"],
      [sgm(0.1, 0, 10), "noiseMultiplier"],
      [sgm(0.1, -1, 10), "noiseMultiplier"],
      [sgm(0.1, Infinity, 10), "noiseMultiplier"],
      [sgm(0.1, 1, 0), "steps"],
      [sgm(0.1, 1, 2.5), "steps"],
      [sgm(0.1, 1, -3), "steps"],
      [sgm(0.1, 1, 10, 0), "clipNorm"],
      [{ kind: "subsampled-gaussian", samplingRate: 0.1, noiseMultiplier: 1, steps: 10 } as unknown as Mechanism, "clipNorm"],
    ];
    for (const [m, field] of bad) {
      let err: unknown;
      try {
        new Accountant().record(m);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(m)).toBeInstanceOf(FedsynthError);
      expect((err as FedsynthError).code).toBe("invalid-argument");
      expect((err as FedsynthError).message).toContain(field);
      expect((err as FedsynthError).hint).toBeTruthy();
      expect(() => Accountant.epsilonOf([g(1, 1), m], 1e-5)).toThrow(FedsynthError);
    }
  });
});
