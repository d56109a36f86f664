/**
 * Noise calibration: the smallest noise scale that keeps a study within its (ε, δ) budget. The cost is
 * computed with the same accountant that later charges the sites, so what is calibrated is what is charged.
 */
import type { DistributedDiscreteGaussianMechanism, Mechanism } from "./mechanism.js";
import { Accountant, validateDistributedDiscreteGaussian } from "./accountant.js";
import { DEFAULT_ORDERS, rdpToEpsilon } from "./rdp.js";
import { FedsynthError } from "../errors.js";

export interface CalibrateOptions {
  /** Total budget, > 0. */
  epsilon: number;
  /** In (0, 1). */
  delta: number;
  /** Every mechanism the study will apply, as a function of the noise scale. More σ must cost less. */
  mechanismsForSigma: (sigma: number) => Mechanism[];
  /**
   * The smallest σ the mechanisms admit (default: none). mechanismsForSigma is then only called with
   * σ ≥ minSigma, and if minSigma already meets the budget it is the answer.
   */
  minSigma?: number;
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
  const { epsilon, delta, mechanismsForSigma, minSigma = 0 } = opts;
  if (typeof epsilon !== "number" || !Number.isFinite(epsilon) || epsilon <= 0) {
    throw invalid(`The privacy budget epsilon must be a finite number > 0, got ${String(epsilon)}`, "Choose an epsilon such as 1 (smaller is more private, noisier).");
  }
  if (typeof delta !== "number" || !Number.isFinite(delta) || delta <= 0 || delta >= 1) {
    throw invalid(`The privacy parameter delta must lie strictly between 0 and 1, got ${String(delta)}`, "Choose a small delta such as 1e-5 (well below 1/number of records).");
  }
  if (typeof mechanismsForSigma !== "function") {
    throw invalid("calibrateSigma needs a mechanismsForSigma function", "Pass (sigma) => the study's mechanisms at that noise scale.");
  }
  if (typeof minSigma !== "number" || !Number.isFinite(minSigma) || minSigma < 0) {
    throw invalid(`minSigma must be a finite number >= 0, got ${String(minSigma)}`, "Leave it out unless the mechanisms need a smallest noise scale.");
  }
  const target = epsilon * (1 - EPSILON_HEADROOM);
  const cost = (sigma: number) => Accountant.epsilonOf(mechanismsForSigma(sigma), delta);
  const ok = (sigma: number) => cost(sigma) <= target;

  // Bracket: lo fails, hi succeeds (or hi = minSigma succeeds, and is the answer).
  let lo = NaN;
  let hi: number;
  const start = Math.max(1, minSigma);
  if (ok(start)) {
    hi = start;
    for (;;) {
      const next = hi / 2;
      if (minSigma > 0 && next <= minSigma) {
        if (ok(minSigma)) hi = minSigma;
        else lo = minSigma;
        break;
      }
      if (next < SIGMA_MIN) {
        throw invalid(
          "Cannot calibrate the noise: the privacy cost does not grow as the noise shrinks",
          "The mechanisms returned by mechanismsForSigma must depend on sigma (is the mechanism list empty?).",
        );
      }
      if (ok(next)) hi = next;
      else {
        lo = next;
        break;
      }
    }
  } else {
    lo = start;
    hi = 2 * start;
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
  while (!Number.isNaN(lo) && hi - lo > SIGMA_RELATIVE_TOLERANCE * hi) {
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
  if (samplingRate < 1 && budgetValid) checkRdpFloor(epsilon, delta);
  const sigma = calibrateSigma({ epsilon, delta, mechanismsForSigma });
  return roundUpChecked(sigma, epsilon, delta, mechanismsForSigma);
}

/**
 * Rényi accounting at a finite set of orders cannot certify arbitrarily small epsilons: even with no
 * privacy loss at all (ρ = 0) the conversion leaves min over α of −(log δ + log α)/(α − 1) + log(1 − 1/α).
 */
function checkRdpFloor(epsilon: number, delta: number): void {
  const floor = rdpToEpsilon(DEFAULT_ORDERS, DEFAULT_ORDERS.map(() => 0), delta).epsilon;
  if (epsilon <= floor) {
    throw invalid(
      `No amount of noise meets epsilon=${epsilon} at delta=${delta}: with Rényi DP at orders up to ${DEFAULT_ORDERS[DEFAULT_ORDERS.length - 1]}, the smallest epsilon that can be certified at this delta is ${Number(floor.toPrecision(6))}`,
      "Choose a larger epsilon or a larger delta.",
    );
  }
}

/**
 * σ rounded up to NOISE_MULTIPLIER_DIGITS significant digits (more noise only costs less), so that the
 * printed value is the value recorded and checked; re-checked against the budget.
 */
function roundUpChecked(sigma: number, epsilon: number, delta: number, mechanismsForSigma: (sigma: number) => Mechanism[]): number {
  const scale = 10 ** (NOISE_MULTIPLIER_DIGITS - 1 - Math.floor(Math.log10(sigma)));
  let rounded = Math.ceil(sigma * scale) / scale;
  if (rounded < sigma) rounded = (Math.ceil(sigma * scale) + 1) / scale;
  for (let attempt = 0; Accountant.epsilonOf(mechanismsForSigma(rounded), delta) > epsilon; attempt++) {
    if (attempt >= 10) throw new FedsynthError("internal", `Noise calibration failed to meet epsilon=${epsilon}, delta=${delta}`);
    rounded = (Math.round(rounded * scale) + 1) / scale;
  }
  return rounded;
}

export interface CalibrateDistributedDiscreteGaussianOptions {
  /** Budget of the released sums (all repetitions together), > 0. */
  epsilon: number;
  /** In (0, 1). */
  delta: number;
  /** t: the fewest sites whose noise is in any released sum (the secure aggregation threshold). */
  sites: number;
  /** L2 sensitivity in grid units after scaling and rounding (roundedL2Sensitivity(c, γ, d)), > 0. */
  l2Sensitivity: number;
  /** d: coordinates per released vector. */
  dimension: number;
  /** Number of sums released, a whole number >= 1. */
  repetitions: number;
}

/**
 * The smallest per-site σ (grid units) whose distributed discrete Gaussian mechanism costs at most (ε, δ)
 * as the Accountant charges it (the released-sum guarantee, Kairouz, Liu & Steinke 2021): bisection
 * through `calibrateSigma` — never below 1/2 when t ≥ 2, which the theorem needs — then rounded up to
 * 8 significant digits and re-checked. Sites must sample with exactly the returned σ.
 */
export function calibrateDistributedDiscreteGaussian(opts: CalibrateDistributedDiscreteGaussianOptions): number {
  const { epsilon, delta, sites, l2Sensitivity, dimension, repetitions } = opts;
  const mechanismsForSigma = (sigma: number): Mechanism[] => [
    { kind: "distributed-discrete-gaussian", l2Sensitivity, dimension, sigma, sites, repetitions } satisfies DistributedDiscreteGaussianMechanism,
  ];
  // Parameter errors name the field (sigma = 1 is valid whenever the other fields are).
  validateDistributedDiscreteGaussian(mechanismsForSigma(1)[0] as DistributedDiscreteGaussianMechanism);
  if (l2Sensitivity === 0 || repetitions === 0) {
    throw invalid(
      "Nothing to calibrate: with l2Sensitivity 0 or no repetitions the mechanism does not depend on the data",
      "Pass the sensitivity after rounding (roundedL2Sensitivity) and the number of sums to be released.",
    );
  }
  const budgetValid = typeof epsilon === "number" && Number.isFinite(epsilon) && epsilon > 0 &&
    typeof delta === "number" && Number.isFinite(delta) && delta > 0 && delta < 1; // else calibrateSigma explains
  if (budgetValid) checkRdpFloor(epsilon, delta);
  const sigma = calibrateSigma({ epsilon, delta, mechanismsForSigma, minSigma: sites >= 2 ? 0.5 : 0 });
  return roundUpChecked(sigma, epsilon, delta, mechanismsForSigma);
}

/**
 * The smallest noise scale whose whole charge stays within `epsilon`, for plans whose spend falls as one
 * common scale grows (every release's noise proportional to it): bracket, then bisect in log space. The
 * scale returned is always one whose spend was checked to be within the budget.
 */
export function calibrateScale(epsilon: number, spentAt: (scale: number) => number): number {
  let lo = 1e-3;
  let hi = 1;
  while (spentAt(hi) > epsilon) hi *= 2;
  while (spentAt(lo) <= epsilon && lo > 1e-9) lo /= 2;
  for (let i = 0; i < 60; i++) {
    const mid = Math.sqrt(lo * hi);
    if (spentAt(mid) > epsilon) lo = mid;
    else hi = mid;
  }
  return hi;
}
