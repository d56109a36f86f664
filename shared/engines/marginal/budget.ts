/**
 * How the marginal engine spends a study's (ε, δ). Three kinds of release (config.ts says which round
 * carries which):
 *
 *   marginals  every column's 1-way marginal (L2 sensitivity √k: one cell per column) and the fine
 *              per-value histograms of gridded numeric columns at α = 2 times the noise (√fine columns),
 *              as the independent engine measures them — together Δ_m = √(k + fine/α²) at the coarse noise;
 *   pairs      the 2-way tables (or contrasts) of all P pairs: one cell per table, each pair p weighted by its
 *              public u_p ≤ 1 (config.ts pairWeights: all 1 unless the schema declares an outcome), so that
 *              pair p gets noise σ_p / u_p and the round Δ_p = √(Σ u_p²) (√P when all are 1);
 *   selected   per selected round, tables t with public weights w_t (Σ w_t² = 1, from the round config):
 *              table t gets noise σ_s / w_t, i.e. the weighted vector (w_t · table t)_t, of L2 sensitivity
 *              √(Σ w_t²) = 1, gets noise σ_s. A table is a pair's, a column's 1-way cells or (settings.
 *              triples) a 3-way table: each row adds 1 to one cell of each, so all count alike; the 3-way
 *              tables' cells are within the round's padded length (config.ts: selectedCells).
 *
 * Split. Both Gaussian DP (μ² = Σ (Δ/σ)²) and zCDP (ρ = Σ Δ²/(2σ²)) add up as squares, so each release
 * gets a share of that square (settings: marginalShare, pairsShare, the rest for the selected tables,
 * split equally over the selected rounds). One common noise scale is then calibrated (plaintext:
 * calibrateSigma on the exact mechanisms; secure: a bisection over planDistributedNoise's grids, one per
 * round) so that the study's total charge is its ε, never more.
 */
import type { DistributedDiscreteGaussianMechanism, GaussianMechanism } from "../../privacy/mechanism.js";
import { calibrateScale, calibrateSigma } from "../../privacy/calibrate.js";
import { planDistributedNoise, type DistributedNoisePlan } from "../../privacy/distributed-noise.js";
import { Accountant } from "../../privacy/accountant.js";
import type { StudyPrivacy } from "../engine.js";
import type { BudgetShape, MarginalSettings } from "./config.js";
import { roundParts } from "./config.js";

export const MARGINAL_MAX_SITE_ROWS = 100_000;
export { FINE_NOISE_MULTIPLIER } from "../independent/engine.js";
import { FINE_NOISE_MULTIPLIER as ALPHA } from "../independent/engine.js";

/** One secure round's grid: what the charge and the coordinator's decoding need. */
export interface GridPlan {
  gamma: number;
  gridSigma: number;
  gridL2Sensitivity: number;
  dimension: number;
  /** |w_i · x_i| ≤ this for every coordinate. */
  coordinateBound: number;
}

export interface MarginalBudget {
  /** Each site's noise standard deviation, in counts: on a coarse 1-way cell, an all-pairs cell, and a selected cell of weight 1. */
  sigmaMarginals: number;
  sigmaPairs: number;
  sigmaSelected: number;
  secure?: { threshold: number; sites: number; maxSiteRows: number; grids: GridPlan[] };
}

/** Each release's share of the square, from the settings (a one-round study gives the pairs the rest). */
export function shares(shape: BudgetShape, settings: MarginalSettings): { m: number; p: number; s: number } {
  if (shape.pairsRound === 0) return { m: 1, p: 0, s: 0 };
  if (shape.selectedRounds === 0) return { m: settings.marginalShare, p: 1 - settings.marginalShare, s: 0 };
  return { m: settings.marginalShare, p: settings.pairsShare, s: 1 - settings.marginalShare - settings.pairsShare };
}

export function sensitivities(shape: BudgetShape): { m: number; p: number; s: number } {
  return { m: Math.sqrt(shape.columns + shape.fineColumns / (ALPHA * ALPHA)), p: Math.sqrt(shape.pairsSquares), s: 1 };
}

const gauss = (l2Sensitivity: number, sigma: number): GaussianMechanism => ({ kind: "gaussian", l2Sensitivity, sigma, repetitions: 1 });

/** The plaintext mechanisms of one site in `round` (1-based). */
export function plainRoundMechanisms(b: MarginalBudget & BudgetShape, round: number): GaussianMechanism[] {
  const parts = roundParts(b, round);
  const out: GaussianMechanism[] = [];
  if (parts.marginals) {
    out.push(gauss(Math.sqrt(b.columns), b.sigmaMarginals));
    if (b.fineColumns > 0) out.push(gauss(Math.sqrt(b.fineColumns), ALPHA * b.sigmaMarginals));
  }
  if (parts.pairs) out.push(gauss(Math.sqrt(b.pairsSquares), b.sigmaPairs));
  if (parts.selected) out.push(gauss(1, b.sigmaSelected));
  return out;
}

export function planPlain(shape: BudgetShape, settings: MarginalSettings, privacy: StudyPrivacy): MarginalBudget {
  const a = shares(shape, settings);
  const d = sensitivities(shape);
  // σ_k = scale · Δ_k / √share_k, so that release k's (Δ/σ)² is share_k / scale²; selected rounds split theirs.
  const at = (scale: number): MarginalBudget => ({
    sigmaMarginals: (scale * d.m) / Math.sqrt(a.m),
    sigmaPairs: a.p > 0 ? (scale * d.p) / Math.sqrt(a.p) : 0,
    sigmaSelected: a.s > 0 ? (scale * d.s * Math.sqrt(shape.selectedRounds)) / Math.sqrt(a.s) : 0,
  });
  const all = (b: MarginalBudget) => Array.from({ length: privacy.rounds }, (_, r) => plainRoundMechanisms({ ...b, ...shape }, r + 1)).flat();
  const scale = calibrateSigma({ epsilon: privacy.epsilon, delta: privacy.delta, mechanismsForSigma: (s) => all(at(s)) });
  return at(scale);
}

/**
 * Secure-grid weights (noise on x_i is proportional to 1/w_i): of a coarse 1-way cell, an all-pairs cell,
 * and a selected cell of table weight 1. Weighted so, release k moves by √share_k under one record.
 */
export function gridWeights(shape: BudgetShape, settings: MarginalSettings): { marginals: number; pairs: number; selected: number } {
  const a = shares(shape, settings);
  const d = sensitivities(shape);
  return {
    marginals: Math.sqrt(a.m) / d.m,
    pairs: a.p > 0 ? Math.sqrt(a.p) / d.p : 0,
    selected: a.s > 0 ? Math.sqrt(a.s / shape.selectedRounds) : 0,
  };
}

/** A secure round's share of the square (its weighted sensitivity squared), length, and largest coordinate weight. */
function secureRound(shape: BudgetShape, settings: MarginalSettings, round: number): { share: number; dimension: number; maxWeight: number } {
  const a = shares(shape, settings);
  const w = gridWeights(shape, settings);
  const parts = roundParts(shape, round);
  let share = 0;
  let dimension = 0;
  let maxWeight = 0;
  if (parts.marginals) {
    share += a.m;
    dimension += shape.cells;
    maxWeight = Math.max(maxWeight, w.marginals);
  }
  if (parts.pairs) {
    share += a.p;
    dimension += shape.pairsCells;
    maxWeight = Math.max(maxWeight, w.pairs);
  }
  if (parts.selected) {
    share += a.s / shape.selectedRounds;
    dimension += shape.selectedCells;
    maxWeight = Math.max(maxWeight, w.selected);
  }
  return { share, dimension, maxWeight };
}

export function planSecure(shape: BudgetShape, settings: MarginalSettings, privacy: StudyPrivacy, maxSiteRows = MARGINAL_MAX_SITE_ROWS): MarginalBudget {
  const { threshold, sites } = privacy.secureAggregation!;
  const w = gridWeights(shape, settings);
  const rounds = Array.from({ length: privacy.rounds }, (_, r) => secureRound(shape, settings, r + 1));
  // Every coordinate is a count of at most maxSiteRows rows times its weight (table weights are ≤ 1).
  const plans = (scale: number): DistributedNoisePlan[] =>
    rounds.map((r) =>
      planDistributedNoise({
        clipNorm: Math.sqrt(r.share), updateNorm: Math.max(Math.sqrt(r.share), maxSiteRows * r.maxWeight), dimension: r.dimension,
        sites, threshold, repetitions: 1, noiseStddev: scale,
      }),
    );
  const spent = (p: DistributedNoisePlan[]) => Accountant.epsilonOf(p.map((x) => x.mechanism), privacy.delta);
  const chosen = plans(calibrateScale(privacy.epsilon, (scale) => spent(plans(scale))));
  const grids = chosen.map((p, r): GridPlan => ({
    gamma: p.gamma, gridSigma: p.sigma, gridL2Sensitivity: p.l2Sensitivity, dimension: p.mechanism.dimension,
    coordinateBound: Math.max(Math.sqrt(rounds[r].share), maxSiteRows * rounds[r].maxWeight),
  }));
  // Every round's grid has the same noise in weighted units (the calibrated scale, up to σ's rounding up).
  const noise = chosen[0].noiseStddev;
  return {
    sigmaMarginals: noise / w.marginals,
    sigmaPairs: w.pairs > 0 ? noise / w.pairs : 0,
    sigmaSelected: w.selected > 0 ? noise / w.selected : 0,
    secure: { threshold, sites, maxSiteRows, grids },
  };
}

/** One secure round's charge. */
export function secureRoundMechanism(b: MarginalBudget, round: number): DistributedDiscreteGaussianMechanism {
  const g = b.secure!.grids[round - 1];
  return { kind: "distributed-discrete-gaussian", l2Sensitivity: g.gridL2Sensitivity, dimension: g.dimension, sigma: g.gridSigma, sites: b.secure!.threshold, repetitions: 1 };
}
