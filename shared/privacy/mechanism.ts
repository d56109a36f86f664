/**
 * Mechanisms are data: a charge is recorded as the mechanism and its exact public parameters, so that a
 * site, the coordinator and an auditor all recompute the same epsilon with the same functions.
 */
export interface GaussianMechanism {
  kind: "gaussian";
  /** L2 sensitivity of the released vector under adding or removing one record. */
  l2Sensitivity: number;
  /** Standard deviation of the noise added to each coordinate. */
  sigma: number;
  /** How many times the mechanism is applied (each with fresh noise). */
  repetitions: number;
}

/**
 * One run of DP-SGD-style training: `steps` iterations, each of which samples every record independently
 * with probability `samplingRate` (Poisson sampling), clips each sampled record's contribution to L2 norm
 * `clipNorm`, sums, and adds Gaussian noise of standard deviation `noiseMultiplier × clipNorm` to every
 * coordinate. Accounted with Rényi DP (Mironov, Talwar & Zhang 2019); see rdp.ts.
 */
export interface SubsampledGaussianMechanism {
  kind: "subsampled-gaussian";
  /** Poisson sampling probability q of each record in each step, in [0, 1]. */
  samplingRate: number;
  /** σ: the noise standard deviation is σ × clipNorm. */
  noiseMultiplier: number;
  /** Number of iterations (each with a fresh sample and fresh noise), a whole number >= 1. */
  steps: number;
  /** Per-record L2 clipping norm. Recorded for the auditor; the epsilon does not depend on it. */
  clipNorm: number;
}

/**
 * Distributed discrete Gaussian noise under secure aggregation (Kairouz, Liu & Steinke, "The Distributed
 * Discrete Gaussian Mechanism for Federated Learning with Secure Aggregation", ICML 2021): every site
 * scales its update by 1/γ, rounds it to the integer grid, adds its own share of noise — an independent
 * discrete Gaussian N_Z(0, sigma²) on every one of the `dimension` coordinates — and only the modular sum
 * over sites is revealed. All quantities are in grid units (after scaling by 1/γ); see
 * distributed-noise.ts for choosing γ and σ and for the sensitivity after rounding.
 *
 * Charged as the guarantee of the released sum, which carries at least `sites` independent noise shares
 * (Accountant.spentOf); each site's fallback guarantee should everyone else collude — its own share only —
 * is Accountant.collusionSpentOf.
 */
export interface DistributedDiscreteGaussianMechanism {
  kind: "distributed-discrete-gaussian";
  /**
   * Bound on the L2 norm of the change, under adding or removing one record, of the INTEGER vector a site
   * contributes (after scaling and rounding); e.g. roundedL2Sensitivity(c, γ, d) = c/γ + √d.
   */
  l2Sensitivity: number;
  /** d: the number of coordinates of the released vector, every one of which gets its own noise. */
  dimension: number;
  /** Each site's discrete Gaussian σ, in grid units (≥ 1/2 when sites ≥ 2: the theorem needs it). */
  sigma: number;
  /**
   * The minimum number of sites whose noise is guaranteed to be in the released sum and unknown to its
   * observer: the secure aggregation threshold t (a sum with fewer contributions must never be unmasked).
   */
  sites: number;
  /** How many such sums are released (each with fresh noise), a whole number >= 0. */
  repetitions: number;
}

export type Mechanism = GaussianMechanism | SubsampledGaussianMechanism | DistributedDiscreteGaussianMechanism;

export interface PrivacyCharge {
  epsilon: number;
  delta: number;
}
