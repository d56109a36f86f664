/** Smoothing a numeric column's noisy bin counts (post-processing of released marginals, both learnt engines). */
import { describe, expect, it } from "vitest";
import { SeededRng, gaussian } from "../../random/rng.js";
import { MAX_SMOOTHED_BINS, smoothCounts } from "./smooth.js";

const ones = (n: number) => new Float64Array(n).fill(1);
const squaredError = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, v, i) => s + (v - b[i]) ** 2, 0);

describe("smoothCounts", () => {
  // A smooth density over 16 bins, 600 rows, noise of sd 20 per bin (heart at ε = 1).
  const truth = Array.from({ length: 16 }, (_, b) => 600 * Math.exp(-(((b - 7) / 3) ** 2) / 2) / (3 * Math.sqrt(2 * Math.PI)));

  it("brings noisy counts of a smooth density closer to it", () => {
    const rng = new SeededRng(11);
    let raw = 0;
    let smoothed = 0;
    for (let trial = 0; trial < 20; trial++) {
      const noisy = truth.map((v) => v + 20 * gaussian(rng));
      raw += squaredError(noisy, truth);
      smoothed += squaredError(smoothCounts(noisy, ones(16), 400), truth);
    }
    expect(smoothed).toBeLessThan(raw / 2);
  });

  it("leaves nearly exact counts nearly as they are, sharp bins included", () => {
    const spiky = truth.map((v, b) => (b === 3 ? v + 200 : v));
    const out = smoothCounts(spiky, ones(16), 1e-4);
    for (let b = 0; b < spiky.length; b++) expect(out[b]).toBeCloseTo(spiky[b], 1);
  });

  it("returns the counts unchanged when it cannot smooth", () => {
    expect(Array.from(smoothCounts([5, 1, 9], ones(3), 100))).toEqual([5, 1, 9]);
    expect(Array.from(smoothCounts([5, 1, 9, 4, 2], ones(5), 0))).toEqual([5, 1, 9, 4, 2]);
    const many = Array.from({ length: MAX_SMOOTHED_BINS + 1 }, (_, b) => (b % 2) * 10);
    expect(Array.from(smoothCounts(many, ones(many.length), 100))).toEqual(many);
  });

  it("smooths densities, not counts, when bins hold different numbers of grid values", () => {
    // A flat density over bins of widths 1, 2, 3, …: counts grow with the width, and smoothing keeps that.
    const widths = Float64Array.from({ length: 12 }, (_, b) => 1 + (b % 4));
    const truth = Array.from(widths, (m) => 40 * m);
    const rng = new SeededRng(5);
    let raw = 0;
    let smoothed = 0;
    for (let trial = 0; trial < 20; trial++) {
      const noisy = truth.map((v) => v + 15 * gaussian(rng));
      raw += squaredError(noisy, truth);
      smoothed += squaredError(smoothCounts(noisy, widths, 225), truth);
    }
    expect(smoothed).toBeLessThan(raw / 2);
  });
});
