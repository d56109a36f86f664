import { describe, expect, it } from "vitest";
import { addInto } from "./prg.js";
import { clipL2, decodeSum, embedInRing, planQuantization, stochasticRound } from "./quantize.js";

describe("planQuantization", () => {
  it("picks the finest power-of-two γ whose n-site sum cannot wrap", () => {
    for (const [c, d, n, b] of [[1, 1000, 10, 0], [3.5, 10, 100, 1000], [0.001, 1, 255, 50], [1e6, 5, 2, 0]]) {
      const plan = planQuantization({ clipNorm: c, dimension: d, sites: n, noiseBound: b });
      expect(Number.isInteger(Math.log2(plan.gamma))).toBe(true);
      expect(plan.maxAbsPerSite).toBe(Math.ceil(c / plan.gamma) + b);
      expect(plan.maxAbsSum).toBeLessThanOrEqual(2 ** 31 - 1);
      // Half of γ would no longer fit.
      expect(n * (Math.ceil(c / (plan.gamma / 2)) + b)).toBeGreaterThan(2 ** 31 - 1);
      expect(plan.roundedNormBound).toBeCloseTo(c / plan.gamma + Math.sqrt(d));
    }
  });

  it("refuses a noise bound that leaves no room", () => {
    expect(() => planQuantization({ clipNorm: 1, dimension: 10, sites: 100, noiseBound: 21_474_836 })).toThrow(/can overflow a 32-bit sum/);
    expect(() => planQuantization({ clipNorm: 0, dimension: 10, sites: 3, noiseBound: 0 })).toThrow(/clipping norm must be a positive number/);
  });
});

describe("clipL2", () => {
  it("reports the original norm and whether it clipped", () => {
    const long = clipL2([3, 4], 1);
    expect(long.norm).toBe(5);
    expect(long.clipped).toBe(true);
    expect(Math.hypot(...long.vector)).toBeCloseTo(1, 12);
    expect(Array.from(long.vector)).toEqual([0.6000000000000001, 0.8]);
    const short = clipL2([0.3, 0.4], 1);
    expect(short).toEqual({ vector: Float64Array.of(0.3, 0.4), norm: 0.5, clipped: false });
  });

  it("refuses non-finite values", () => {
    expect(() => clipL2([1, NaN], 1)).toThrow(/non-finite value \(NaN\) at position 1/);
  });
});

describe("stochastic rounding", () => {
  const plan = planQuantization({ clipNorm: 1e6, dimension: 200_000, sites: 10, noiseBound: 0 });

  it("is unbiased (mean within 6 standard errors) and only ever picks the two neighbours", () => {
    for (const k of [0.3, -2.7, 5.999]) {
      const v = new Float64Array(plan.dimension).fill(k * plan.gamma);
      const q = stochasticRound(v, plan);
      let sum = 0;
      let outside = 0;
      const lo = Math.floor(k);
      for (const r of q) {
        if (r !== lo && r !== lo + 1) outside++;
        sum += r;
      }
      expect(outside).toBe(0);
      const p = k - lo;
      const se = Math.sqrt((p * (1 - p)) / plan.dimension);
      expect(Math.abs(sum / plan.dimension - k)).toBeLessThan(6 * se);
    }
  });

  it("round-trips through the ring with error below γ per coordinate, and nγ for a sum of n", () => {
    const p = planQuantization({ clipNorm: 2, dimension: 5000, sites: 7, noiseBound: 0 });
    const sites = Array.from({ length: p.sites }, () => clipL2(Array.from({ length: p.dimension }, () => Math.random() * 0.1 - 0.05), p.clipNorm).vector);
    const sum = new Uint32Array(p.dimension);
    const exact = new Float64Array(p.dimension);
    for (const v of sites) {
      const words = embedInRing(stochasticRound(v, p), p);
      const single = decodeSum(words, p);
      for (let i = 0; i < p.dimension; i++) expect(Math.abs(single[i] - v[i])).toBeLessThan(p.gamma);
      addInto(sum, words);
      for (let i = 0; i < p.dimension; i++) exact[i] += v[i];
    }
    const decoded = decodeSum(sum, p);
    for (let i = 0; i < p.dimension; i++) expect(Math.abs(decoded[i] - exact[i])).toBeLessThan(p.sites * p.gamma);
  });

  it("holds coordinates to ±c/γ, so rounding never exceeds the per-site bound", () => {
    const p = planQuantization({ clipNorm: 1, dimension: 3, sites: 5, noiseBound: 0 });
    const q = stochasticRound([1.0000000000000002, -1.0000000000000002, 0], p);
    expect(Math.abs(q[0])).toBeLessThanOrEqual(p.maxAbsPerSite);
    expect(Math.abs(q[1])).toBeLessThanOrEqual(p.maxAbsPerSite);
  });
});

describe("headroom", () => {
  it("n sites at the largest magnitude the plan allows never wrap, in either direction", () => {
    for (const [n, b] of [[3, 0], [100, 1000], [255, 7]]) {
      const p = planQuantization({ clipNorm: 1.5, dimension: 4, sites: n, noiseBound: b });
      const extreme = Int32Array.of(p.maxAbsPerSite, -p.maxAbsPerSite, p.maxAbsPerSite, 0);
      const words = embedInRing(extreme, p);
      const sum = new Uint32Array(4);
      for (let i = 0; i < n; i++) addInto(sum, words);
      const decoded = decodeSum(sum, p);
      expect(Array.from(decoded)).toEqual([n * p.maxAbsPerSite * p.gamma, -n * p.maxAbsPerSite * p.gamma, n * p.maxAbsPerSite * p.gamma, 0]);
    }
  });

  it("refuses a vector beyond the per-site bound (e.g. noise larger than declared)", () => {
    const p = planQuantization({ clipNorm: 1, dimension: 2, sites: 10, noiseBound: 5 });
    expect(() => embedInRing(Int32Array.of(0, p.maxAbsPerSite + 1), p)).toThrow(/coordinate 1 is .* beyond the plan's per-site bound/);
  });
});
