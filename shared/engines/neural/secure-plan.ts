/**
 * The neural engine under secure aggregation: round 1 measures the column histograms, every later round
 * sums one clipped full-batch gradient per site, each release a distributed discrete Gaussian on its own
 * grid. Why two kinds of round: in the plaintext engine a site starts training from output biases set to
 * its own noisy marginals; under secure aggregation a site's own noisy histogram is never released, so
 * training must start from the pooled marginals, which exist only after round 1.
 *
 * Budget. The released sums are zCDP, so ρ adds up over rounds: the marginals get `marginalShare` of it
 * and the gradient rounds split the rest evenly. Each share sets a noise level (σ ∝ sensitivity/√ρ), the
 * grids follow from planDistributedNoise, and one common scale is bisected so that the whole study's
 * charge — the exact mechanisms, rounding's share of the sensitivity included — is the budget, never more.
 */
import { planDistributedNoise, type DistributedNoisePlan } from "../../privacy/distributed-noise.js";
import { Accountant } from "../../privacy/accountant.js";
import { calibrateScale } from "../../privacy/calibrate.js";
import type { DistributedDiscreteGaussianMechanism } from "../../privacy/mechanism.js";
import type { SecureAggregationSetting, StudyPrivacy } from "../engine.js";
import { FedsynthError } from "../../errors.js";

/** One kind of round's grid: what the charge and the coordinator's decoding need. */
export interface NeuralSecureGrid {
  gamma: number;
  gridSigma: number;
  gridL2Sensitivity: number;
  /** Each site's noise share on one coordinate of the weighted vector: counts on a coarse cell; gradient/C. */
  shareSd: number;
}

export interface NeuralSecureConfig {
  threshold: number;
  sites: number;
  /** Public bound on a site's rows; it bounds every coordinate of a contribution (clamped beyond). */
  maxSiteRows: number;
  marginals: NeuralSecureGrid;
  gradient: NeuralSecureGrid;
}

export const DEFAULT_MARGINAL_SHARE = 0.7;
export const NEURAL_SECURE_MAX_SITE_ROWS = 100_000;

export interface SecurePlanInput {
  privacy: StudyPrivacy & { secureAggregation: SecureAggregationSetting };
  histogramCells: number;
  /** √(columns + fine columns/α²): one record's change of the weighted histograms. */
  histogramSensitivity: number;
  parameters: number;
  marginalShare?: number;
  maxSiteRows?: number;
}

export function planNeuralSecure(input: SecurePlanInput): NeuralSecureConfig {
  const { privacy, histogramCells, histogramSensitivity, parameters } = input;
  const { threshold, sites } = privacy.secureAggregation;
  const share = input.marginalShare ?? DEFAULT_MARGINAL_SHARE;
  const maxSiteRows = input.maxSiteRows ?? NEURAL_SECURE_MAX_SITE_ROWS;
  const trainingRounds = privacy.rounds - 1;
  if (trainingRounds < 1) {
    throw new FedsynthError("invalid-argument", `the neural engine under secure aggregation needs 2 or more rounds, not ${privacy.rounds}: round 1 measures the marginals and later rounds train`, {
      hint: "ask for --rounds 2 or more, or turn secure aggregation off for this study",
    });
  }
  const plans = (scale: number): [DistributedNoisePlan, DistributedNoisePlan] => [
    planDistributedNoise({
      clipNorm: histogramSensitivity, updateNorm: maxSiteRows, dimension: histogramCells, sites, threshold, repetitions: 1,
      noiseStddev: (scale * histogramSensitivity) / Math.sqrt(share),
    }),
    // Gradients are weighted by 1/C, so one record moves the weighted vector by at most 1.
    planDistributedNoise({
      clipNorm: 1, updateNorm: maxSiteRows, dimension: parameters, sites, threshold, repetitions: trainingRounds,
      noiseStddev: scale * Math.sqrt(trainingRounds / (1 - share)),
    }),
  ];
  const spent = (p: [DistributedNoisePlan, DistributedNoisePlan]) => Accountant.epsilonOf([p[0].mechanism, p[1].mechanism], privacy.delta);
  const [m, g] = plans(calibrateScale(privacy.epsilon, (scale) => spent(plans(scale))));
  return {
    threshold, sites, maxSiteRows,
    marginals: { gamma: m.gamma, gridSigma: m.sigma, gridL2Sensitivity: m.l2Sensitivity, shareSd: m.noiseStddev },
    gradient: { gamma: g.gamma, gridSigma: g.sigma, gridL2Sensitivity: g.l2Sensitivity, shareSd: g.noiseStddev },
  };
}

/** One round's charge: the marginals in round 1, one gradient sum in every later round. */
export function secureRoundMechanism(secure: NeuralSecureConfig, round: number, histogramCells: number, parameters: number): DistributedDiscreteGaussianMechanism {
  const grid = round === 1 ? secure.marginals : secure.gradient;
  return {
    kind: "distributed-discrete-gaussian", l2Sensitivity: grid.gridL2Sensitivity, dimension: round === 1 ? histogramCells : parameters,
    sigma: grid.gridSigma, sites: secure.threshold, repetitions: 1,
  };
}
