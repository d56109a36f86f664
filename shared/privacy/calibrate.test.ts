import { describe, expect, it } from "vitest";
import { calibrateDistributedDiscreteGaussian, calibrateNoiseMultiplier, calibrateSigma } from "./calibrate.js";
import { Accountant } from "./accountant.js";
import { deltaForEpsilon, epsilonForDelta, normalCdf } from "./gaussian.js";
import type { Mechanism } from "./mechanism.js";
import { FedsynthError } from "../errors.js";

const single = (l2Sensitivity: number, repetitions = 1) => (sigma: number): Mechanism[] => [
  { kind: "gaussian", l2Sensitivity, sigma, repetitions },
];

/** δ(ε) for σ and Δ = 1 straight from the definition, independent of the library's log-space evaluation. */
function naiveDelta(sigma: number, eps: number): number {
  const mu = 1 / sigma;
  return normalCdf(-eps / mu + mu / 2) - Math.exp(eps) * normalCdf(-eps / mu - mu / 2);
}

describe("calibrateSigma", () => {
  it("finds the analytic Gaussian σ ≈ 3.7306 for ε=1, δ=1e-5, Δ=1 (Balle & Wang 2018)", () => {
    const sigma = calibrateSigma({ epsilon: 1, delta: 1e-5, mechanismsForSigma: single(1) });
    // mpmath (60 digits) root of δ(1; μ=1/σ) = 1e-5: σ = 3.73063163481594183…
    expect(sigma).toBeGreaterThanOrEqual(3.7306316348159418);
    expect(sigma / 3.7306316348159418 - 1).toBeLessThan(1e-6);
    expect(Math.abs(sigma / 3.7299 - 1)).toBeLessThan(0.01);
    // Independent check: at σ the curve is within budget, at 0.999·σ it is not.
    expect(naiveDelta(sigma, 1)).toBeLessThanOrEqual(1e-5);
    expect(naiveDelta(sigma * 0.999, 1)).toBeGreaterThan(1e-5);
    expect(deltaForEpsilon(1 / sigma, 1)).toBeLessThanOrEqual(1e-5);
  });

  it("beats the classical bound σ = Δ·sqrt(2 ln(1.25/δ))/ε", () => {
    for (const eps of [0.1, 0.5, 0.9]) {
      const classical = Math.sqrt(2 * Math.log(1.25 / 1e-6)) / eps;
      expect(calibrateSigma({ epsilon: eps, delta: 1e-6, mechanismsForSigma: single(1) })).toBeLessThan(classical);
    }
  });

  it("round trip: the calibrated σ spends at most ε, and nearly all of it", () => {
    for (const epsilon of [0.05, 0.3, 1, 3, 10, 1e4]) {
      for (const delta of [1e-3, 1e-5, 1e-9]) {
        for (const [sens, reps] of [[1, 1], [Math.sqrt(14), 1], [Math.sqrt(7), 10], [1e-3, 3]] as const) {
          const mechanismsForSigma = single(sens, reps);
          const sigma = calibrateSigma({ epsilon, delta, mechanismsForSigma });
          const spent = Accountant.epsilonOf(mechanismsForSigma(sigma), delta);
          expect(spent).toBeLessThanOrEqual(epsilon);
          expect(spent).toBeGreaterThan(epsilon * (1 - 1e-5));
          // smallest: a little less noise is over budget
          expect(Accountant.epsilonOf(mechanismsForSigma(sigma * (1 - 1e-5)), delta)).toBeGreaterThan(epsilon);
        }
      }
    }
  });

  it("scales with the sensitivity and with √repetitions", () => {
    const base = calibrateSigma({ epsilon: 1, delta: 1e-5, mechanismsForSigma: single(1) });
    expect(calibrateSigma({ epsilon: 1, delta: 1e-5, mechanismsForSigma: single(Math.sqrt(14)) }) / base).toBeCloseTo(Math.sqrt(14), 5);
    expect(calibrateSigma({ epsilon: 1, delta: 1e-5, mechanismsForSigma: single(1, 9) }) / base).toBeCloseTo(3, 5);
  });

  it("is safe when the charges are regrouped (k single charges vs one charge of k repetitions)", () => {
    for (const k of [3, 7, 50]) {
      const sigma = calibrateSigma({ epsilon: 1, delta: 1e-5, mechanismsForSigma: single(Math.sqrt(11), k) });
      const regrouped: Mechanism[] = Array.from({ length: k }, () => ({ kind: "gaussian", l2Sensitivity: Math.sqrt(11), sigma, repetitions: 1 }));
      expect(Accountant.epsilonOf(regrouped, 1e-5)).toBeLessThanOrEqual(1);
    }
  });

  it("rejects invalid budgets with FedsynthError('invalid-argument') and a hint", () => {
    const bad = [
      { epsilon: 0, delta: 1e-5 },
      { epsilon: -1, delta: 1e-5 },
      { epsilon: NaN, delta: 1e-5 },
      { epsilon: Infinity, delta: 1e-5 },
      { epsilon: 1, delta: 0 },
      { epsilon: 1, delta: 1 },
      { epsilon: 1, delta: 1.5 },
      { epsilon: 1, delta: NaN },
    ];
    for (const b of bad) {
      let err: unknown;
      try {
        calibrateSigma({ ...b, mechanismsForSigma: single(1) });
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(b)).toBeInstanceOf(FedsynthError);
      expect((err as FedsynthError).code).toBe("invalid-argument");
      expect((err as FedsynthError).hint).toBeTruthy();
    }
  });

  it("refuses mechanism lists whose cost does not depend on σ", () => {
    expect(() => calibrateSigma({ epsilon: 1, delta: 1e-5, mechanismsForSigma: () => [] })).toThrow(FedsynthError);
  });
});

describe("calibrateNoiseMultiplier (DP-SGD)", () => {
  const spend = (samplingRate: number, noiseMultiplier: number, steps: number, delta: number) =>
    Accountant.epsilonOf([{ kind: "subsampled-gaussian", samplingRate, noiseMultiplier, steps, clipNorm: 1 }], delta);

  it("recovers σ = 1.1 from its own epsilon (q=0.01, 10,000 steps, δ=1e-5)", () => {
    const eps = spend(0.01, 1.1, 10_000, 1e-5);
    const sigma = calibrateNoiseMultiplier({ epsilon: eps, delta: 1e-5, samplingRate: 0.01, steps: 10_000 });
    expect(sigma).toBeGreaterThanOrEqual(1.1 * (1 - 1e-6));
    expect(sigma).toBeLessThanOrEqual(1.1 * (1 + 1e-6));
    expect(spend(0.01, sigma, 10_000, 1e-5)).toBeLessThanOrEqual(eps);
  });

  it("round trip: the calibrated σ spends at most ε, and a little less noise spends more", () => {
    for (const [samplingRate, steps] of [[0.01, 10_000], [256 / 60000, 14_062], [0.1, 50], [0.002, 1]] as const) {
      for (const epsilon of [0.5, 1, 3, 8]) {
        const sigma = calibrateNoiseMultiplier({ epsilon, delta: 1e-5, samplingRate, steps });
        expect(spend(samplingRate, sigma, steps, 1e-5), `q=${samplingRate} T=${steps} ε=${epsilon}`).toBeLessThanOrEqual(epsilon);
        expect(spend(samplingRate, sigma * (1 - 1e-6), steps, 1e-5), `q=${samplingRate} T=${steps} ε=${epsilon}`).toBeGreaterThan(epsilon);
        // Printed with at most 8 significant digits, and the printed value is the value checked.
        expect(String(sigma).replace(/^0\.0*|\.|e.*$/g, "").replace(/^0+/, "").length).toBeLessThanOrEqual(8);
        expect(Number(String(sigma))).toBe(sigma);
      }
    }
  });

  it("more steps or a larger sampling rate need more noise", () => {
    const base = calibrateNoiseMultiplier({ epsilon: 2, delta: 1e-5, samplingRate: 0.01, steps: 1000 });
    expect(calibrateNoiseMultiplier({ epsilon: 2, delta: 1e-5, samplingRate: 0.01, steps: 4000 })).toBeGreaterThan(base);
    expect(calibrateNoiseMultiplier({ epsilon: 2, delta: 1e-5, samplingRate: 0.04, steps: 1000 })).toBeGreaterThan(base);
    expect(calibrateNoiseMultiplier({ epsilon: 4, delta: 1e-5, samplingRate: 0.01, steps: 1000 })).toBeLessThan(base);
  });

  it("sampling rate 1 is calibrated exactly in GDP (μ = √T/σ)", () => {
    const sigma = calibrateNoiseMultiplier({ epsilon: 1, delta: 1e-5, samplingRate: 1, steps: 9 });
    expect(epsilonForDelta(3 / sigma, 1e-5)).toBeLessThanOrEqual(1);
    const single = calibrateSigma({ epsilon: 1, delta: 1e-5, mechanismsForSigma: (s) => [{ kind: "gaussian", l2Sensitivity: 3, sigma: s, repetitions: 1 }] });
    expect(sigma / single - 1).toBeLessThan(3e-7);
    expect(sigma).toBeGreaterThanOrEqual(single * (1 - 1e-7));
  });

  it("explains budgets that no amount of noise can meet under RDP accounting", () => {
    let err: unknown;
    try {
      calibrateNoiseMultiplier({ epsilon: 0.05, delta: 1e-5, samplingRate: 0.01, steps: 100 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FedsynthError);
    expect((err as FedsynthError).code).toBe("invalid-argument");
    expect((err as FedsynthError).message).toMatch(/smallest epsilon that can be certified/);
    expect((err as FedsynthError).hint).toMatch(/larger epsilon/);
  });

  it("rejects invalid inputs with FedsynthError('invalid-argument') and a hint", () => {
    const ok = { epsilon: 1, delta: 1e-5, samplingRate: 0.01, steps: 100 };
    const bad = [
      { ...ok, samplingRate: 0 },
      { ...ok, samplingRate: 1.2 },
      { ...ok, samplingRate: NaN },
      { ...ok, steps: 0 },
      { ...ok, steps: 2.5 },
      { ...ok, epsilon: 0 },
      { ...ok, epsilon: Infinity },
      { ...ok, delta: 0 },
      { ...ok, delta: 1 },
    ];
    for (const b of bad) {
      let err: unknown;
      try {
        calibrateNoiseMultiplier(b);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(b)).toBeInstanceOf(FedsynthError);
      expect((err as FedsynthError).code).toBe("invalid-argument");
      expect((err as FedsynthError).hint).toBeTruthy();
    }
  });
});


describe("calibrateSigma with a smallest admissible σ (minSigma)", () => {
  it("never asks for σ below minSigma, and returns it when it already meets the budget", () => {
    const asked: number[] = [];
    const mechanismsForSigma = (sigma: number): Mechanism[] => {
      asked.push(sigma);
      return [{ kind: "gaussian", l2Sensitivity: 1, sigma, repetitions: 1 }];
    };
    expect(calibrateSigma({ epsilon: 1, delta: 1e-5, mechanismsForSigma, minSigma: 5 })).toBe(5);
    expect(Math.min(...asked)).toBe(5);
    asked.length = 0;
    const free = calibrateSigma({ epsilon: 1, delta: 1e-5, mechanismsForSigma: single(1) });
    const floored = calibrateSigma({ epsilon: 1, delta: 1e-5, mechanismsForSigma, minSigma: 2 });
    expect(floored).toBe(free); // 3.73… > 2: the floor does not bind
    expect(Math.min(...asked)).toBeGreaterThanOrEqual(2);
    expect(() => calibrateSigma({ epsilon: 1, delta: 1e-5, mechanismsForSigma, minSigma: -1 })).toThrow(FedsynthError);
  });
});

describe("calibrateDistributedDiscreteGaussian", () => {
  const ddg = (l2Sensitivity: number, sigma: number, sites: number, dimension: number, repetitions: number): Mechanism[] => [
    { kind: "distributed-discrete-gaussian", l2Sensitivity, dimension, sigma, sites, repetitions },
  ];

  it("round trip: the calibrated σ spends at most ε, and a little less noise spends more", () => {
    for (const [epsilon, delta, sites, l2Sensitivity, dimension, repetitions] of [
      [1, 1e-5, 8, 1001.5, 10_000, 10],
      [0.5, 1e-6, 3, 40, 1000, 1],
      [4, 1e-5, 100, 12.2, 65_536, 50],
      [2, 1e-5, 1, 7, 10, 3],
      [8, 1e-5, 2, 1.5, 2, 1],
    ] as const) {
      const sigma = calibrateDistributedDiscreteGaussian({ epsilon, delta, sites, l2Sensitivity, dimension, repetitions });
      const label = JSON.stringify({ epsilon, sites, l2Sensitivity });
      expect(Accountant.epsilonOf(ddg(l2Sensitivity, sigma, sites, dimension, repetitions), delta), label).toBeLessThanOrEqual(epsilon);
      if (sigma > 0.5) {
        expect(Accountant.epsilonOf(ddg(l2Sensitivity, sigma * (1 - 1e-6), sites, dimension, repetitions), delta), label).toBeGreaterThan(epsilon);
      }
      expect(Number(String(sigma))).toBe(sigma); // printed = recorded (8 significant digits)
      expect(String(sigma).replace(/^0\.0*|\.|e.*$/g, "").replace(/^0+/, "").length).toBeLessThanOrEqual(8);
    }
  });

  it("for large σ, t sites each need 1/√t of one site's noise (the sum has variance tσ²)", () => {
    const one = calibrateDistributedDiscreteGaussian({ epsilon: 1, delta: 1e-5, sites: 1, l2Sensitivity: 500, dimension: 1000, repetitions: 4 });
    for (const t of [4, 9, 100]) {
      const each = calibrateDistributedDiscreteGaussian({ epsilon: 1, delta: 1e-5, sites: t, l2Sensitivity: 500, dimension: 1000, repetitions: 4 });
      expect(Math.abs((each * Math.sqrt(t)) / one - 1)).toBeLessThan(1e-6);
    }
    // It is the RDP calibration of a continuous Gaussian with the same total variance (τ vanishes).
    const gaussian = calibrateSigma({ epsilon: 1, delta: 1e-5, mechanismsForSigma: (s) => [{ kind: "subsampled-gaussian", samplingRate: 1, noiseMultiplier: s, steps: 4, clipNorm: 1 }] });
    expect(one / 500).toBeGreaterThan(gaussian); // RDP is looser than the exact GDP curve …
    expect(one / 500 / gaussian).toBeLessThan(1.25); // … but not by much
  });

  it("never goes below σ = 1/2 with two or more sites (the theorem needs it), but may with one", () => {
    expect(calibrateDistributedDiscreteGaussian({ epsilon: 50, delta: 1e-5, sites: 2, l2Sensitivity: 1, dimension: 1, repetitions: 1 })).toBe(0.5);
    const single = calibrateDistributedDiscreteGaussian({ epsilon: 50, delta: 1e-5, sites: 1, l2Sensitivity: 1, dimension: 1, repetitions: 1 });
    expect(single).toBeLessThan(0.5);
    expect(Accountant.epsilonOf(ddg(1, single, 1, 1, 1), 1e-5)).toBeLessThanOrEqual(50);
  });

  it("explains unreachable budgets and invalid parameters, naming the field", () => {
    const ok = { epsilon: 1, delta: 1e-5, sites: 4, l2Sensitivity: 20, dimension: 100, repetitions: 2 };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...ok, epsilon: 0.05 }, /smallest epsilon that can be certified/],
      [{ ...ok, epsilon: 0 }, /epsilon/],
      [{ ...ok, delta: 1 }, /delta/],
      [{ ...ok, sites: 0 }, /sites/],
      [{ ...ok, dimension: 0 }, /dimension/],
      [{ ...ok, l2Sensitivity: 0.2 }, /l2Sensitivity/],
      [{ ...ok, l2Sensitivity: 0 }, /l2Sensitivity 0/],
      [{ ...ok, repetitions: -1 }, /repetitions/],
    ];
    for (const [opts, message] of cases) {
      let err: unknown;
      try {
        calibrateDistributedDiscreteGaussian(opts as never);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(opts)).toBeInstanceOf(FedsynthError);
      expect((err as FedsynthError).code).toBe("invalid-argument");
      expect((err as FedsynthError).message).toMatch(message);
      expect((err as FedsynthError).hint).toBeTruthy();
    }
  });
});
