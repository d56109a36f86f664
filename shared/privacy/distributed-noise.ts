/**
 * Planning distributed discrete Gaussian noise for secure aggregation on the 32-bit ring.
 *
 * What a site does with its float update x (whose L2 sensitivity to one record is c):
 *   1. scale by 1/γ and round every coordinate, independently and without bias, to one of its two
 *      neighbouring integers (⌊v⌋ + Bernoulli(v − ⌊v⌋)) — or to the nearest integer;
 *   2. add its own noise share, `sampleDiscreteGaussian(noise, plan.sigma)` (N_Z(0, σ²) per coordinate);
 *   3. reduce mod 2^32 and mask. The coordinator reads the unmasked sum as a signed 32-bit integer per
 *      coordinate and multiplies by γ.
 * What is charged: `plan.mechanism` (the released-sum guarantee, Accountant.spentOf), once per released sum
 * or once with `repetitions` sums (RDP adds up either way).
 *
 * Sensitivity after rounding (`roundedL2Sensitivity`). Write R(v) = ⌊v + U⌋ with U ~ Uniform[0, 1): this
 * has exactly the law of unbiased stochastic rounding, so the mechanism's output law is the same whatever
 * implementation the site uses. For neighbouring datasets with scaled vectors a, b (‖a − b‖₂ ≤ c/γ), couple
 * the two roundings through the same U_j per coordinate: ⌊a_j + U_j⌋ − ⌊b_j + U_j⌋ lies strictly within 1
 * of a_j − b_j, so the integer difference e has ‖e‖₂ ≤ ‖a − b‖₂ + ‖(1, …, 1)‖₂ ≤ c/γ + √d (triangle
 * inequality). The argument only needs every coordinate rounded by a rule ⌊v + U_j⌋ or ⌈v − U_j⌉ with U_j
 * drawn independently of the data, whatever its law: it covers round-to-nearest (U = ½), stochastic
 * rounding from 32-bit uniforms (floor(v) + [w/2^32 < frac(v)] = ⌈v − w/2^32⌉), and a clamp of every
 * coordinate to ±c/γ beforehand (1-Lipschitz, so it cannot grow ‖a − b‖). The released law is then the U-mixture of
 * laws of pairs at integer distance ≤ Δ = c/γ + √d, and since (p, q) ↦ Σ p^α q^{1−α} is jointly convex for
 * α > 1 (the perspective of the convex x^α), the Rényi divergence of the mixtures is at most the largest
 * of the pairs': the discrete Gaussian bounds hold with Δ. This is deterministic — no failure probability,
 * nothing to add to δ. (Kairouz, Liu & Steinke's conditional rounding — resampling until ‖x̃‖ is small —
 * does not couple coordinate by coordinate, and its bound on ‖x̃‖ is not a bound on the difference of
 * neighbours; do not use it with this sensitivity.)
 *
 * No wrap-around (`planDistributedNoise`). Per coordinate the exact integer sum over n sites is at most
 * n·(B/γ + 1) in the data (each site's update has L2 norm ≤ B, and rounding adds < 1) plus the sum of n
 * noise shares. The discrete Gaussian is σ²-subgaussian — E[e^{λX}] = e^{λ²σ²/2}·θ(λσ²)/θ(0) ≤ e^{λ²σ²/2},
 * as the theta function θ(s) = Σ_x e^{−(x−s)²/(2σ²)} is largest at s = 0 by Poisson summation (Canonne,
 * Kamath & Steinke 2020) — so the sum of n shares exceeds k·√n·σ in absolute value with probability at
 * most 2e^{−k²/2}, and any of d coordinates does with probability at most 2d·e^{−k²/2}. γ is chosen so
 * that n(B/γ + 1) + k√n·σ ≤ 2^31 − 1. A wrap would only corrupt the (already private) sum — reduction
 * mod 2^32 is post-processing of the exact sum, so it costs no privacy and is not part of δ; it is a
 * failure probability for accuracy, reported as `wrapProbability`. Nothing is clamped: clamping the noise
 * would void the privacy analysis.
 *
 * γ is the smallest grid step meeting that bound: a finer grid only lowers the rounding's share of the
 * sensitivity, γ√d/c (`sensitivityInflation`; ≤ 1% whenever 32 bits allow it).
 */
import type { DistributedDiscreteGaussianMechanism } from "./mechanism.js";
import { Accountant, validateDistributedDiscreteGaussian } from "./accountant.js";
import { calibrateDistributedDiscreteGaussian } from "./calibrate.js";
import { FedsynthError } from "../errors.js";

/** The largest magnitude a coordinate of the sum may have: the signed 32-bit range is [−2^31, 2^31 − 1]. */
export const RING_LIMIT = 2 ** 31 - 1;
/** Default bound on the probability that any coordinate of the sum leaves the 32-bit range. */
export const DEFAULT_MAX_WRAP_PROBABILITY = 1e-9;

const U = 2 ** -53;

function invalid(message: string, hint: string): FedsynthError {
  return new FedsynthError("invalid-argument", message, { hint });
}

function checkPositive(name: string, value: unknown, hint: string): asserts value is number {
  if (typeof value !== "number" || !Number.isFinite(value) || !(value > 0)) {
    throw invalid(`${name} must be a finite number > 0, got ${String(value)}`, hint);
  }
}

function checkCount(name: string, value: unknown, min: number, hint: string): asserts value is number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw invalid(`${name} must be a whole number >= ${min}, got ${String(value)}`, hint);
  }
}

/**
 * An upper bound on the L2 norm of the change of a site's rounded integer vector when one record is added
 * or removed: c/γ + √d (see the file comment for the proof), rounded up. c is the L2 sensitivity of the
 * float vector before scaling (the per-record clip norm when the update sums clipped per-record vectors).
 */
export function roundedL2Sensitivity(clipNorm: number, gamma: number, dimension: number): number {
  if (typeof clipNorm !== "number" || !Number.isFinite(clipNorm) || clipNorm < 0) {
    throw invalid(`clipNorm must be a finite number >= 0, got ${String(clipNorm)}`, "The L2 sensitivity of the float update to one record (e.g. the per-record clip norm).");
  }
  checkPositive("gamma", gamma, "gamma is the grid step: the update is divided by it before rounding.");
  checkCount("dimension", dimension, 1, "The number of coordinates of the update.");
  // Three roundings (division, square root, sum), each relative u: 4u covers them.
  return (clipNorm / gamma + Math.sqrt(dimension)) * (1 + 4 * U);
}

export interface DistributedNoisePlanOptions {
  /** c: L2 sensitivity of a site's float update to one record, before scaling (e.g. the clip norm). */
  clipNorm: number;
  /** B: L2 bound on a site's whole float update (default c: the update is one clipped vector). */
  updateNorm?: number;
  /** d: coordinates of the update. */
  dimension: number;
  /** n: the most sites whose updates are summed (bounds the magnitude of the sum). */
  sites: number;
  /** t ≤ n: the fewest sites whose noise is in any unmasked sum (the secure aggregation threshold). */
  threshold: number;
  /** Sums released under this plan (rounds), a whole number >= 1. */
  repetitions: number;
  /** Either: each site's noise standard deviation in the update's own (continuous) units … */
  noiseStddev?: number;
  /** … or: the budget of all `repetitions` released sums (with `delta`). */
  epsilon?: number;
  /** In (0, 1); with `epsilon` it sets the budget; with `noiseStddev` it only sets the reported `epsilon`. */
  delta?: number;
  /** Largest acceptable probability that a coordinate of a sum wraps around (default 1e-9). */
  maxWrapProbability?: number;
}

export interface DistributedNoisePlan {
  /** Grid step: a site rounds update/γ to integers; the coordinator multiplies the sum by γ. */
  gamma: number;
  /** Each site's discrete Gaussian σ in grid units (pass exactly this to sampleDiscreteGaussian). */
  sigma: number;
  /** The same noise in the update's units, σ·γ. */
  noiseStddev: number;
  /** The sensitivity charged, in grid units: c/γ + √d. */
  l2Sensitivity: number;
  /** Rounding's share of the sensitivity, γ√d/c (0.01 = the sensitivity grew by 1% by rounding). */
  sensitivityInflation: number;
  /** Bound n·(B/γ + 1) + k·√n·σ on the magnitude of every coordinate of the sum, ≤ 2^31 − 1 … */
  coordinateBound: number;
  /** … exceeded by some coordinate with probability at most this (an accuracy failure, not a privacy one). */
  wrapProbability: number;
  /** The charge of all `repetitions` released sums. */
  mechanism: DistributedDiscreteGaussianMechanism;
  /** Its epsilon at `delta` (the released-sum guarantee), when a delta was given. */
  epsilon?: number;
}

/** k with 2d·e^{−k²/2} = p. */
function tailStddevs(dimension: number, p: number): number {
  return Math.sqrt(2 * Math.log((2 * dimension) / p));
}

/** σ rounded up to 8 significant digits (more noise only costs less). */
function roundUp8(x: number): number {
  const scale = 10 ** (7 - Math.floor(Math.log10(x)));
  let r = Math.ceil(x * scale) / scale;
  if (r < x) r = (Math.ceil(x * scale) + 1) / scale;
  return r;
}

/**
 * Chooses the grid step γ and each site's σ (grid units) for summing n sites' d-dimensional updates on the
 * 32-bit ring without wrap-around (except with probability ≤ maxWrapProbability), with either a given
 * per-site noise level or the least noise that keeps the released sums within (ε, δ). See the file comment.
 */
export function planDistributedNoise(opts: DistributedNoisePlanOptions): DistributedNoisePlan {
  const { clipNorm, dimension, sites, threshold, repetitions, noiseStddev, epsilon, delta } = opts;
  const updateNorm = opts.updateNorm ?? clipNorm;
  const maxWrap = opts.maxWrapProbability ?? DEFAULT_MAX_WRAP_PROBABILITY;
  checkPositive("clipNorm", clipNorm, "The L2 sensitivity of a site's float update to one record (e.g. the per-record clip norm).");
  checkPositive("updateNorm", updateNorm, "An L2 bound on a site's whole float update (defaults to clipNorm).");
  if (updateNorm < clipNorm) {
    throw invalid(`updateNorm (${updateNorm}) is below clipNorm (${clipNorm})`, "A single record can move the update by clipNorm, so the update's norm bound must be at least that.");
  }
  checkCount("dimension", dimension, 1, "The number of coordinates of the update.");
  checkCount("sites", sites, 1, "The most sites whose updates are summed.");
  checkCount("threshold", threshold, 1, "The secure aggregation threshold: the fewest sites in any unmasked sum.");
  if (threshold > sites) throw invalid(`threshold (${threshold}) exceeds sites (${sites})`, "The threshold t counts sites among the n that take part: t <= n.");
  checkCount("repetitions", repetitions, 1, "The number of sums released under this plan (rounds).");
  if (typeof maxWrap !== "number" || !(maxWrap > 0 && maxWrap < 1)) {
    throw invalid(`maxWrapProbability must lie strictly between 0 and 1, got ${String(maxWrap)}`, "A small probability such as 1e-9.");
  }
  const byNoise = noiseStddev !== undefined;
  const byBudget = epsilon !== undefined;
  if (byNoise === byBudget) {
    throw invalid("planDistributedNoise needs exactly one of noiseStddev or epsilon (with delta)", "Give the per-site noise level, or the budget to calibrate it for.");
  }
  if (byNoise) checkPositive("noiseStddev", noiseStddev, "Each site's noise standard deviation, in the update's units.");
  if (byBudget && delta === undefined) throw invalid("epsilon needs a delta", "Give delta too, e.g. 1e-5.");
  if (delta !== undefined && (typeof delta !== "number" || !(delta > 0 && delta < 1))) {
    throw invalid(`delta must lie strictly between 0 and 1, got ${String(delta)}`, "Use a small delta such as 1e-5.");
  }

  const n = sites;
  const k = tailStddevs(dimension, maxWrap);
  const kSqrtN = k * Math.sqrt(n);
  const room = RING_LIMIT - n; // what is left for n·B/γ and the noise once the rounding's n is taken
  const infeasible = (why: string) =>
    invalid(`32-bit secure aggregation cannot hold this sum: ${why}`, "Use fewer sites per sum, a smaller dimension, a larger maxWrapProbability, or a wider ring.");
  if (room <= 0) throw infeasible(`${n} sites exceed the ring`);

  const mechanismFor = (gamma: number, sigma: number): DistributedDiscreteGaussianMechanism => ({
    kind: "distributed-discrete-gaussian",
    l2Sensitivity: roundedL2Sensitivity(clipNorm, gamma, dimension),
    dimension,
    sigma,
    sites: threshold,
    repetitions,
  });
  const bound = (gamma: number, sigma: number) => n * (updateNorm / gamma + 1) + kSqrtN * sigma;

  let gamma: number;
  let sigma: number;
  if (byNoise) {
    // n·B/γ + n + k√n·σ_c/γ ≤ L  ⇔  γ ≥ (n·B + k√n·σ_c)/(L − n); the margin absorbs σ's rounding up.
    gamma = ((n * updateNorm + kSqrtN * noiseStddev) / room) * (1 + 1e-6);
    sigma = roundUp8(noiseStddev / gamma);
    if (threshold >= 2 && sigma < 0.5) {
      throw infeasible(`each site's noise would be ${sigma} grid steps, below the 1/2 that the privacy analysis of a sum of discrete Gaussians needs (the signal n·B = ${n * updateNorm} dwarfs the noise)`);
    }
  } else {
    // σ ≈ z·Δ for the budget (z barely depends on Δ once σ is large): solve the bound for γ with the
    // current z, calibrate σ for the resulting Δ exactly, and repeat until the bound holds.
    const calibrate = (l2Sensitivity: number) =>
      calibrateDistributedDiscreteGaussian({ epsilon: epsilon as number, delta: delta as number, sites: threshold, l2Sensitivity, dimension, repetitions });
    const probe = 1e6;
    let z = calibrate(probe) / probe;
    let margin = 1 + 1e-6;
    for (let attempt = 0; ; attempt++) {
      const denominator = room - kSqrtN * z * Math.sqrt(dimension);
      if (!(denominator > 0)) {
        throw infeasible(`the noise needed for the rounding alone (about ${(z * Math.sqrt(dimension) * kSqrtN).toPrecision(3)} grid steps) exceeds 2^31`);
      }
      gamma = ((n * updateNorm + kSqrtN * z * clipNorm) / denominator) * margin;
      sigma = calibrate(roundedL2Sensitivity(clipNorm, gamma, dimension));
      if (bound(gamma, sigma) <= RING_LIMIT) break;
      if (attempt >= 50) throw new FedsynthError("internal", "planDistributedNoise did not converge on a grid step");
      z = Math.max(z, sigma / roundedL2Sensitivity(clipNorm, gamma, dimension));
      margin *= 1 + 1e-6;
    }
  }

  const mechanism = mechanismFor(gamma, sigma);
  validateDistributedDiscreteGaussian(mechanism);
  const coordinateBound = bound(gamma, sigma);
  if (!(coordinateBound <= RING_LIMIT)) throw new FedsynthError("internal", `planDistributedNoise chose a grid step that overflows (bound ${coordinateBound})`);
  // The probability that the noise uses more than the room the data leave, from the final numbers.
  const slackForNoise = RING_LIMIT - n * (updateNorm / gamma + 1);
  const wrapProbability = Math.min(1, 2 * dimension * Math.exp(-(slackForNoise * slackForNoise) / (2 * n * sigma * sigma)));
  return {
    gamma,
    sigma,
    noiseStddev: sigma * gamma,
    l2Sensitivity: mechanism.l2Sensitivity,
    sensitivityInflation: (gamma * Math.sqrt(dimension)) / clipNorm,
    coordinateBound,
    wrapProbability,
    mechanism,
    ...(delta !== undefined ? { epsilon: Accountant.epsilonOf([mechanism], delta) } : {}),
  };
}
