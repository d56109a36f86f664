import { randomFillSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { DEFAULT_MAX_WRAP_PROBABILITY, planDistributedNoise, RING_LIMIT, roundedL2Sensitivity, type DistributedNoisePlanOptions } from "./distributed-noise.js";
import { sampleDiscreteGaussian } from "./discrete-gaussian.js";
import { Accountant } from "./accountant.js";
import { FedsynthError } from "../errors.js";

/** Uniform doubles in [0, 1) from node:crypto. */
function uniforms(n: number): Float64Array {
  const words = new Uint32Array(n);
  randomFillSync(words);
  return Float64Array.from(words, (w) => w / 2 ** 32);
}

/** A random vector of exactly the given L2 norm. */
function vectorOfNorm(d: number, norm: number): Float64Array {
  const u = uniforms(d);
  const v = Float64Array.from(u, (x) => x - 0.5);
  const len = Math.hypot(...v);
  return v.map((x) => (x * norm) / len);
}

const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));

describe("roundedL2Sensitivity", () => {
  it("is c/γ + √d, rounded up (google-research distributed_dp rounded_l2_norm_bound with beta = 0)", () => {
    for (const [c, gamma, d] of [[1, 1e-3, 100], [0.75, 2 ** -20, 65_536], [3, 1, 1], [0, 0.5, 9]] as const) {
      const s = roundedL2Sensitivity(c, gamma, d);
      expect(s).toBeGreaterThanOrEqual(c / gamma + Math.sqrt(d));
      expect(s / (c / gamma + Math.sqrt(d)) - 1).toBeLessThan(1e-15);
    }
  });

  it("bounds the change of the rounded vector between neighbours under coupled stochastic rounding (which c/γ alone does not)", () => {
    // Neighbouring updates a, b with ‖a − b‖ = c, rounded ⌊v/γ + U⌋ with the same U (the proof's coupling).
    const d = 64;
    const gamma = 0.01;
    const c = 0.05;
    let worst = 0;
    for (let trial = 0; trial < 2000; trial++) {
      const a = Float64Array.from(uniforms(d), (x) => (x - 0.5) * 10);
      const step = vectorOfNorm(d, c);
      const u = uniforms(d);
      let sq = 0;
      for (let j = 0; j < d; j++) {
        const diff = Math.floor(a[j] / gamma + u[j]) - Math.floor((a[j] + step[j]) / gamma + u[j]);
        sq += diff * diff;
      }
      worst = Math.max(worst, Math.sqrt(sq));
    }
    const bound = roundedL2Sensitivity(c, gamma, d);
    expect(worst).toBeLessThanOrEqual(bound);
    // Rounding does inflate the change beyond c/γ: the √d term is needed.
    expect(worst).toBeGreaterThan(c / gamma);
  });

  it("rejects invalid inputs naming them", () => {
    expect(() => roundedL2Sensitivity(-1, 1, 1)).toThrow(/clipNorm/);
    expect(() => roundedL2Sensitivity(1, 0, 1)).toThrow(/gamma/);
    expect(() => roundedL2Sensitivity(1, 1, 0)).toThrow(/dimension/);
    expect(() => roundedL2Sensitivity(1, 1, 2.5)).toThrow(FedsynthError);
  });
});

describe("planDistributedNoise", () => {
  const base = { clipNorm: 1, dimension: 10_000, sites: 10, threshold: 8, repetitions: 10 };

  it("for a budget: charges a mechanism within it, fits 32 bits, and takes the finest grid that does", () => {
    const plan = planDistributedNoise({ ...base, epsilon: 1, delta: 1e-5 });
    expect(plan.mechanism).toEqual({
      kind: "distributed-discrete-gaussian",
      l2Sensitivity: roundedL2Sensitivity(1, plan.gamma, 10_000),
      dimension: 10_000,
      sigma: plan.sigma,
      sites: 8,
      repetitions: 10,
    });
    expect(plan.epsilon).toBe(Accountant.epsilonOf([plan.mechanism], 1e-5));
    expect(plan.epsilon).toBeLessThanOrEqual(1);
    expect(plan.epsilon).toBeGreaterThan(0.999);
    expect(plan.coordinateBound).toBeLessThanOrEqual(RING_LIMIT);
    expect(plan.wrapProbability).toBeLessThanOrEqual(DEFAULT_MAX_WRAP_PROBABILITY);
    expect(plan.sensitivityInflation).toBeLessThan(0.01);
    expect(plan.sensitivityInflation).toBeCloseTo((plan.gamma * 100) / 1, 12);
    expect(plan.noiseStddev).toBeCloseTo(plan.sigma * plan.gamma, 12);
    // Finest: a 1% finer grid (with its own calibrated σ) would no longer fit with the same tail bound.
    const finer = planDistributedNoise({ ...base, epsilon: 1, delta: 1e-5, maxWrapProbability: plan.wrapProbability * 1e6 });
    expect(finer.gamma).toBeLessThan(plan.gamma); // accepting more wrap risk allows a finer grid …
    expect(finer.wrapProbability).toBeGreaterThan(plan.wrapProbability); // … at that risk
  });

  it("for a per-site noise level: σ = noise/γ, the bound is met, and γ is as small as the bound allows", () => {
    const plan = planDistributedNoise({ ...base, noiseStddev: 2.5, delta: 1e-5 });
    expect(plan.sigma).toBeGreaterThanOrEqual(2.5 / plan.gamma);
    expect(plan.sigma / (2.5 / plan.gamma) - 1).toBeLessThan(2e-7);
    expect(plan.coordinateBound).toBeLessThanOrEqual(RING_LIMIT);
    // γ(1 − 1e-4) would break the bound with the same noise and tail.
    const k = Math.sqrt(2 * Math.log((2 * 10_000) / DEFAULT_MAX_WRAP_PROBABILITY));
    const g2 = plan.gamma * (1 - 1e-4);
    expect(10 * (1 / g2 + 1) + k * Math.sqrt(10) * (2.5 / g2)).toBeGreaterThan(RING_LIMIT);
    expect(plan.epsilon).toBe(Accountant.epsilonOf([plan.mechanism], 1e-5));
    expect(planDistributedNoise({ ...base, noiseStddev: 2.5 }).epsilon).toBeUndefined();
  });

  it("end to end: sites round, add their shares, sum mod 2^32; the decoded sum is right and never wraps", () => {
    const d = 2000;
    const n = 6;
    const plan = planDistributedNoise({ clipNorm: 1, updateNorm: 1, dimension: d, sites: n, threshold: 5, repetitions: 1, epsilon: 2, delta: 1e-5 });
    const updates = Array.from({ length: n }, () => vectorOfNorm(d, 1));
    const ring = new Uint32Array(d);
    const noise = new Int32Array(d);
    for (const x of updates) {
      const u = uniforms(d);
      sampleDiscreteGaussian(noise, plan.sigma);
      for (let j = 0; j < d; j++) {
        const rounded = Math.floor(x[j] / plan.gamma + u[j]); // unbiased stochastic rounding
        ring[j] = (ring[j] + rounded + noise[j]) >>> 0; // what secure aggregation reveals: the sum mod 2^32
      }
    }
    let sq = 0;
    for (let j = 0; j < d; j++) {
      const decoded = (ring[j] | 0) * plan.gamma; // signed 32-bit reading
      const exact = updates.reduce((s, x) => s + x[j], 0);
      const err = decoded - exact;
      sq += err * err;
      expect(Math.abs(err)).toBeLessThan(8 * Math.sqrt(n) * plan.noiseStddev + n * plan.gamma);
    }
    // Mean squared error ≈ n·(σγ)² (+ rounding variance ≤ n·γ²/4).
    const mse = sq / d;
    const expected = n * plan.noiseStddev ** 2;
    expect(Math.abs(mse / expected - 1)).toBeLessThan(0.15);
  });

  it("reports a large rounding inflation honestly when 32 bits cannot afford a fine grid, and still charges it", () => {
    // 1000 sites whose updates are sums of up to 1000 clipped records: the data alone need ~2^30.
    const plan = planDistributedNoise({ clipNorm: 1, updateNorm: 1000, dimension: 1e6, sites: 1000, threshold: 500, repetitions: 1, epsilon: 1, delta: 1e-6 });
    expect(plan.sensitivityInflation).toBeGreaterThan(0.01);
    expect(plan.l2Sensitivity).toBeGreaterThan((1 / plan.gamma) * (1 + plan.sensitivityInflation) * (1 - 1e-12));
    expect(plan.epsilon).toBeLessThanOrEqual(1);
    expect(plan.coordinateBound).toBeLessThanOrEqual(RING_LIMIT);
  });

  it("refuses what 32 bits cannot hold, with a hint", () => {
    const cases: DistributedNoisePlanOptions[] = [
      // the rounding's own noise (√d per site) overflows the ring
      { clipNorm: 1, dimension: 9e15, sites: 10, threshold: 5, repetitions: 1, epsilon: 1, delta: 1e-5 },
      // the signal dwarfs the requested noise: σ would be below half a grid step
      { clipNorm: 1, updateNorm: 1e8, dimension: 10, sites: 10, threshold: 5, repetitions: 1, noiseStddev: 0.01 },
    ];
    for (const opts of cases) {
      let err: unknown;
      try {
        planDistributedNoise(opts);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(opts)).toBeInstanceOf(FedsynthError);
      expect((err as FedsynthError).message).toMatch(/32-bit/);
      expect((err as FedsynthError).hint).toBeTruthy();
    }
  });

  it("rejects invalid options naming the field", () => {
    const ok: DistributedNoisePlanOptions = { ...base, epsilon: 1, delta: 1e-5 };
    const cases: [DistributedNoisePlanOptions, RegExp][] = [
      [{ ...ok, clipNorm: 0 }, /clipNorm/],
      [{ ...ok, updateNorm: 0.5 }, /updateNorm/],
      [{ ...ok, dimension: 0 }, /dimension/],
      [{ ...ok, sites: 0 }, /sites/],
      [{ ...ok, threshold: 11 }, /threshold/],
      [{ ...ok, threshold: 0 }, /threshold/],
      [{ ...ok, repetitions: 0 }, /repetitions/],
      [{ ...ok, maxWrapProbability: 0 }, /maxWrapProbability/],
      [{ ...ok, noiseStddev: 1 }, /exactly one of noiseStddev or epsilon/],
      [{ ...base } as DistributedNoisePlanOptions, /exactly one of noiseStddev or epsilon/],
      [{ ...base, epsilon: 1 }, /delta/],
      [{ ...base, noiseStddev: -1 }, /noiseStddev/],
      [{ ...ok, delta: 2 }, /delta/],
    ];
    for (const [opts, message] of cases) {
      let err: unknown;
      try {
        planDistributedNoise(opts);
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
