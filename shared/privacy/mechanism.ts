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

export type Mechanism = GaussianMechanism | SubsampledGaussianMechanism;

export interface PrivacyCharge {
  epsilon: number;
  delta: number;
}
