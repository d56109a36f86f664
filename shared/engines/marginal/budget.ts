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
 * split equally over the selected rounds, or with settings.annealing "aim" by each selected round's
 * config: anneal.ts, selectedFraction). One common noise scale is then calibrated (plaintext:
 * calibrateSigma on the exact mechanisms; secure: a bisection over planDistributedNoise's grids, one per
 * round) so that the study's total charge is its ε, never more.
 */
import type { DistributedDiscreteGaussianMechanism, GaussianMechanism } from "../../privacy/mechanism.js";
import { calibrateScale, calibrateSigma } from "../../privacy/calibrate.js";
import { planDistributedNoise, type DistributedNoisePlan } from "../../privacy/distributed-noise.js";
import { Accountant } from "../../privacy/accountant.js";
import type { StudyPrivacy } from "../engine.js";
import type { BudgetShape, MarginalConfig, MarginalSettings } from "./config.js";
import { roundParts } from "./config.js";
import type { RoundPlan } from "./round-plan.js";

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

/**
 * A selected round's fraction of the selected tables' share: its round config's `budget` (annealing,
 * anneal.ts), or without one an equal split over the selected rounds.
 */
export function selectedFraction(shape: BudgetShape, plan: RoundPlan | undefined): number {
  return plan?.budget ?? 1 / shape.selectedRounds;
}

/** Each site's plaintext noise on a selected cell of table weight 1 in a round of this plan. */
export function selectedSigma(b: MarginalBudget & BudgetShape, plan: RoundPlan | undefined): number {
  // σ_s is the equal split's; a fraction f of the share scales the noise by √(1/(S·f)).
  return plan?.budget === undefined ? b.sigmaSelected : b.sigmaSelected * Math.sqrt(1 / (b.selectedRounds * plan.budget));
}

/** The plaintext mechanisms of one site in `round` (1-based), whose round config is `plan` (selected rounds). */
export function plainRoundMechanisms(b: MarginalBudget & BudgetShape, round: number, plan?: RoundPlan): GaussianMechanism[] {
  const parts = roundParts(b, round);
  const out: GaussianMechanism[] = [];
  if (parts.marginals) {
    out.push(gauss(Math.sqrt(b.columns), b.sigmaMarginals));
    if (b.fineColumns > 0) out.push(gauss(Math.sqrt(b.fineColumns), ALPHA * b.sigmaMarginals));
  }
  if (parts.pairs) out.push(gauss(Math.sqrt(b.pairsSquares), b.sigmaPairs));
  if (parts.selected) out.push(gauss(1, selectedSigma(b, plan)));
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
 * and a selected cell of table weight 1 in a round that spends `fraction` of the selected share. Weighted
 * so, release k moves by √share_k under one record.
 */
export function gridWeights(shape: BudgetShape, settings: MarginalSettings, fraction = 1 / shape.selectedRounds): { marginals: number; pairs: number; selected: number } {
  const a = shares(shape, settings);
  const d = sensitivities(shape);
  return {
    marginals: Math.sqrt(a.m) / d.m,
    pairs: a.p > 0 ? Math.sqrt(a.p) / d.p : 0,
    selected: a.s > 0 ? Math.sqrt(a.s * fraction) : 0,
  };
}

/** A secure round's share of the square (its weighted sensitivity squared), length, and largest coordinate weight. */
function secureRound(shape: BudgetShape, settings: MarginalSettings, round: number, fraction = 1 / shape.selectedRounds): { share: number; dimension: number; maxWeight: number } {
  const a = shares(shape, settings);
  const w = gridWeights(shape, settings, fraction);
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
    share += a.s * fraction;
    dimension += shape.selectedCells;
    maxWeight = Math.max(maxWeight, w.selected);
  }
  return { share, dimension, maxWeight };
}

function secureGridPlan(shape: BudgetShape, settings: MarginalSettings, privacy: { threshold: number; sites: number }, maxSiteRows: number, round: number, scale: number, fraction?: number): { plan: DistributedNoisePlan; grid: GridPlan } {
  const r = secureRound(shape, settings, round, fraction);
  // Every coordinate is a count of at most maxSiteRows rows times its weight (table weights are ≤ 1).
  const coordinateBound = Math.max(Math.sqrt(r.share), maxSiteRows * r.maxWeight);
  const plan = planDistributedNoise({
    clipNorm: Math.sqrt(r.share), updateNorm: coordinateBound, dimension: r.dimension,
    sites: privacy.sites, threshold: privacy.threshold, repetitions: 1, noiseStddev: scale,
  });
  return { plan, grid: { gamma: plan.gamma, gridSigma: plan.sigma, gridL2Sensitivity: plan.l2Sensitivity, dimension: plan.mechanism.dimension, coordinateBound } };
}

export function planSecure(shape: BudgetShape, settings: MarginalSettings, privacy: StudyPrivacy, maxSiteRows = MARGINAL_MAX_SITE_ROWS): MarginalBudget {
  const { threshold, sites } = privacy.secureAggregation!;
  const w = gridWeights(shape, settings);
  const plans = (scale: number) => Array.from({ length: privacy.rounds }, (_, r) => secureGridPlan(shape, settings, { threshold, sites }, maxSiteRows, r + 1, scale));
  const spent = (p: { plan: DistributedNoisePlan }[]) => Accountant.epsilonOf(p.map((x) => x.plan.mechanism), privacy.delta);
  const chosen = plans(calibrateScale(privacy.epsilon, (scale) => spent(plans(scale))));
  // Every round's grid has the same noise in weighted units (the calibrated scale, up to σ's rounding up).
  const noise = chosen[0].plan.noiseStddev;
  return {
    sigmaMarginals: noise / w.marginals,
    sigmaPairs: w.pairs > 0 ? noise / w.pairs : 0,
    sigmaSelected: w.selected > 0 ? noise / w.selected : 0,
    secure: { threshold, sites, maxSiteRows, grids: chosen.map((p) => p.grid) },
  };
}

/**
 * A secure round's grid: the configured one, or for a selected round whose config sets its own budget, the
 * grid of that fraction at the study's noise (the same in weighted units as every other round's).
 */
export function roundGrid(config: MarginalConfig, round: number, plan: RoundPlan | undefined): GridPlan {
  const secure = config.secure!;
  if (plan?.budget === undefined || !roundParts(config, round).selected) return secure.grids[round - 1];
  const scale = config.sigmaMarginals * gridWeights(config, config.settings).marginals;
  return secureGridPlan(config, config.settings, secure, secure.maxSiteRows, round, scale, plan.budget).grid;
}

/** One secure round's charge. */
export function secureRoundMechanism(config: MarginalConfig, round: number, plan?: RoundPlan): DistributedDiscreteGaussianMechanism {
  const g = roundGrid(config, round, plan);
  return { kind: "distributed-discrete-gaussian", l2Sensitivity: g.gridL2Sensitivity, dimension: g.dimension, sigma: g.gridSigma, sites: config.secure!.threshold, repetitions: 1 };
}

/** One site's charge in `round` of a study, whose round config is `plan`. */
export function roundMechanisms(config: MarginalConfig, round: number, plan?: RoundPlan): (GaussianMechanism | DistributedDiscreteGaussianMechanism)[] {
  return config.secure ? [secureRoundMechanism(config, round, plan)] : plainRoundMechanisms(config, round, plan);
}
