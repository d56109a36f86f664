/**
 * Noise calibration: the smallest noise scale that keeps a study within its (ε, δ) budget. The cost is
 * computed with the same accountant that later charges the sites, so what is calibrated is what is charged.
 */
import type { Mechanism } from "./mechanism.js";
import { Accountant } from "./accountant.js";
import { DEFAULT_ORDERS, rdpToEpsilon } from "./rdp.js";
import { FedsynthError } from "../errors.js";

export interface CalibrateOptions {
  /** Total budget, > 0. */
  epsilon: number;
  /** In (0, 1). */
  delta: number;
  /** Every mechanism the study will apply, as a function of the noise scale. More σ must cost less. */
  mechanismsForSigma: (sigma: number) => Mechanism[];
}

/** Relative precision of the returned σ (the result is at most this much above the smallest safe σ). */
export const SIGMA_RELATIVE_TOLERANCE = 1e-7;
/**
 * σ is calibrated against ε·(1 − 1e-8) rather than ε, so that recomputing the cost from an equivalent but
 * differently grouped list of mechanisms (e.g. `rounds` charges of one repetition instead of one charge of
 * `rounds` repetitions, which differ in the last bits of μ) still comes out ≤ ε.
 */
const EPSILON_HEADROOM = 1e-8;
const SIGMA_MIN = 1e-250;
const SIGMA_MAX = 1e250;

function invalid(message: string, hint: string): FedsynthError {
  return new FedsynthError("invalid-argument", message, { hint });
}

/**
 * The smallest σ (within a relative 1e-7, always erring upwards) such that
 * Accountant.epsilonOf(mechanismsForSigma(σ), δ) ≤ ε.
 */
export function calibrateSigma(opts: CalibrateOptions): number {
  const { epsilon, delta, mechanismsForSigma } = opts;
  if (typeof epsilon !== "number" || !Number.isFinite(epsilon) || epsilon <= 0) {
    throw invalid(`The privacy budget epsilon must be a finite number > 0, got ${String(epsilon)}`, "Choose an epsilon such as 1 (smaller is more private, noisier).");
  }
  if (typeof delta !== "number" || !Number.isFinite(delta) || delta <= 0 || delta >= 1) {
    throw invalid(`The privacy parameter delta must lie strictly between 0 and 1, got ${String(delta)}`, "Choose a small delta such as 1e-5 (well below 1/number of records).");
  }
  if (typeof mechanismsForSigma !== "function") {
    throw invalid("calibrateSigma needs a mechanismsForSigma function", "Pass (sigma) => the study's mechanisms at that noise scale.");
  }
  const target = epsilon * (1 - EPSILON_HEADROOM);
  const cost = (sigma: number) => Accountant.epsilonOf(mechanismsForSigma(sigma), delta);
  const ok = (sigma: number) => cost(sigma) <= target;

  // Bracket: lo fails, hi succeeds.
  let lo: number;
  let hi: number;
  if (ok(1)) {
    hi = 1;
    lo = 0.5;
    while (ok(lo)) {
      hi = lo;
      lo /= 2;
      if (lo < SIGMA_MIN) {
        throw invalid(
          "Cannot calibrate the noise: the privacy cost does not grow as the noise shrinks",
          "The mechanisms returned by mechanismsForSigma must depend on sigma (is the mechanism list empty?).",
        );
      }
    }
  } else {
    lo = 1;
    hi = 2;
    while (!ok(hi)) {
      lo = hi;
      hi *= 2;
      if (hi > SIGMA_MAX) {
        throw invalid(
          `Cannot meet the budget epsilon=${epsilon}, delta=${delta} with any amount of noise`,
          "The mechanisms' cost does not fall with sigma; check mechanismsForSigma.",
        );
      }
    }
  }
  while (hi - lo > SIGMA_RELATIVE_TOLERANCE * hi) {
    const mid = lo + (hi - lo) / 2;
    if (mid <= lo || mid >= hi) break;
    if (ok(mid)) hi = mid;
    else lo = mid;
  }

  // Re-check the result (against the full ε); bump σ if, against expectation, it is over budget.
  let sigma = hi;
  for (let attempt = 0; cost(sigma) > epsilon; attempt++) {
    if (attempt >= 100 || !Number.isFinite(sigma)) {
      throw new FedsynthError("internal", `Noise calibration failed to meet epsilon=${epsilon}, delta=${delta}`);
    }
    sigma *= 1 + 1e-6;
  }
  return sigma;
}

export interface CalibrateNoiseMultiplierOptions {
  /** Total budget, > 0. */
  epsilon: number;
  /** In (0, 1). */
  delta: number;
  /** Poisson sampling rate q of DP-SGD, in (0, 1]. */
  samplingRate: number;
  /** Number of noisy steps, a whole number >= 1. */
  steps: number;
}

/** Significant digits the calibrated noise multiplier is rounded (up) to, so that it prints exactly. */
const NOISE_MULTIPLIER_DIGITS = 8;

/**
 * The smallest noise multiplier σ for DP-SGD (sampling rate q, `steps` steps) whose cost, as the
 * Accountant charges it, is at most (ε, δ): bisection through `calibrateSigma`, then rounded up to 8
 * significant digits (so that the printed value is the value checked), and re-checked.
 */
export function calibrateNoiseMultiplier(opts: CalibrateNoiseMultiplierOptions): number {
  const { epsilon, delta, samplingRate, steps } = opts;
  if (typeof samplingRate !== "number" || !(samplingRate > 0 && samplingRate <= 1)) {
    throw invalid(
      `The sampling rate must be a number in (0, 1], got ${String(samplingRate)}`,
      "The Poisson sampling rate q is the expected batch size divided by the number of records (q = 0 would need no noise).",
    );
  }
  if (typeof steps !== "number" || !Number.isSafeInteger(steps) || steps < 1) {
    throw invalid(`The number of steps must be a whole number >= 1, got ${String(steps)}`, "steps = epochs × (records / expected batch size).");
  }
  const mechanismsForSigma = (noiseMultiplier: number): Mechanism[] => [
    { kind: "subsampled-gaussian", samplingRate, noiseMultiplier, steps, clipNorm: 1 },
  ];
  const budgetValid = typeof epsilon === "number" && Number.isFinite(epsilon) && epsilon > 0 &&
    typeof delta === "number" && Number.isFinite(delta) && delta > 0 && delta < 1; // else calibrateSigma explains
  if (samplingRate < 1 && budgetValid) {
    // Rényi accounting at a finite set of orders cannot certify arbitrarily small epsilons: even with no
    // privacy loss at all (ρ = 0) the conversion leaves min over α of −(log δ + log α)/(α − 1) + log(1 − 1/α).
    const floor = rdpToEpsilon(DEFAULT_ORDERS, DEFAULT_ORDERS.map(() => 0), delta).epsilon;
    if (epsilon <= floor) {
      throw invalid(
        `No amount of noise meets epsilon=${epsilon} at delta=${delta}: with Rényi DP at orders up to ${DEFAULT_ORDERS[DEFAULT_ORDERS.length - 1]}, the smallest epsilon that can be certified at this delta is ${Number(floor.toPrecision(6))}`,
        "Choose a larger epsilon or a larger delta.",
      );
    }
  }
  const sigma = calibrateSigma({ epsilon, delta, mechanismsForSigma });
  // Round up to NOISE_MULTIPLIER_DIGITS significant digits; more noise only costs less.
  const scale = 10 ** (NOISE_MULTIPLIER_DIGITS - 1 - Math.floor(Math.log10(sigma)));
  let rounded = Math.ceil(sigma * scale) / scale;
  if (rounded < sigma) rounded = (Math.ceil(sigma * scale) + 1) / scale;
  for (let attempt = 0; Accountant.epsilonOf(mechanismsForSigma(rounded), delta) > epsilon; attempt++) {
    if (attempt >= 10) throw new FedsynthError("internal", `Noise calibration failed to meet epsilon=${epsilon}, delta=${delta}`);
    rounded = (Math.round(rounded * scale) + 1) / scale;
  }
  return rounded;
}
