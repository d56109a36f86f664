/**
 * How the marginal engine spends a study's (ε, δ): three releases, each one vector per round.
 *
 *   round 1:     every column's 1-way marginal (L2 sensitivity √columns: one cell per column), the fine
 *                per-value histograms of gridded numeric columns at α = 2 times the noise (√fine columns),
 *                as the independent engine measures them, and the P pair scores (< 4√P, see scores.ts);
 *   rounds 2..R: the 2-way tables of the tree's E = columns − 1 edges (sensitivity √E: one cell per table),
 *                the same tables each round, averaged by the coordinator.
 *
 * Split. Both Gaussian DP (μ² = Σ (Δ/σ)²) and zCDP (ρ = Σ Δ²/(2σ²)) add up as squares, so each release
 * gets a share of that square: MARGINAL_SHARE (0.6) for the 1-way marginals — every column's shape, and
 * through it every pair's joint histogram, rests on them, and on the heart data (≈ 740 rows) shares of
 * 0.35/0.5/0.6/0.7 gave pair trends 0.77/0.78/0.79/0.79 —, SCORE_SHARE (0.05) for the scores (selection
 * only needs the order of the strongest pairs, and a score sums a whole table, so it is the release that
 * tolerates noise best), and the rest (0.35) for the tree's tables, which carry the dependence. With a single round only the marginals are
 * released: selection needs a round of its own before the tables it selects can be measured.
 * One common noise scale is then calibrated (plaintext: calibrateSigma on the exact mechanisms; secure: a
 * bisection over planDistributedNoise's grids) so the study's total charge is its ε, never more.
 */
import type { DistributedDiscreteGaussianMechanism, GaussianMechanism } from "../../privacy/mechanism.js";
import { calibrateScale, calibrateSigma } from "../../privacy/calibrate.js";
import { planDistributedNoise, type DistributedNoisePlan } from "../../privacy/distributed-noise.js";
import { Accountant } from "../../privacy/accountant.js";
import type { StudyPrivacy } from "../engine.js";
import { SCORE_SENSITIVITY_PER_PAIR } from "./scores.js";

export const MARGINAL_SHARE = 0.6;
export const SCORE_SHARE = 0.05;
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

export interface BudgetShape {
  columns: number;
  /** Round 1's histogram cells: every column's coarse cells, then the fine (per grid value) cells. */
  cells: number;
  coarseCells: number;
  /** Columns with a fine level (the independent engine's layout); their fine cells get α times the noise. */
  fineColumns: number;
  /** Pairs scored in round 1 (0 with a single round). */
  pairs: number;
  /** Tables per later round (columns − 1). */
  edges: number;
  /** Secure mode: the padded length of a later round's vector (the largest any tree's tables can take). */
  tableCells: number;
}

export interface MarginalBudget {
  /** Each site's noise standard deviation, in counts, on a 1-way cell, a score, and a 2-way cell. */
  sigmaMarginals: number;
  sigmaScores: number;
  sigmaPairs: number;
  sensMarginals: number;
  sensScores: number;
  sensPairs: number;
  secure?: { threshold: number; sites: number; maxSiteRows: number; first: GridPlan; later: GridPlan };
}

function shares(rounds: number): { m: number; s: number; p: number } {
  return rounds === 1 ? { m: 1, s: 0, p: 0 } : { m: MARGINAL_SHARE, s: SCORE_SHARE, p: 1 - MARGINAL_SHARE - SCORE_SHARE };
}

/** m: the histograms' sensitivity at the coarse cells' noise level, √(columns + fine columns/α²). */
export function sensitivities(shape: BudgetShape): { m: number; s: number; p: number } {
  return { m: Math.sqrt(shape.columns + shape.fineColumns / (ALPHA * ALPHA)), s: SCORE_SENSITIVITY_PER_PAIR * Math.sqrt(shape.pairs), p: Math.sqrt(shape.edges) };
}

const gauss = (l2Sensitivity: number, sigma: number): GaussianMechanism => ({ kind: "gaussian", l2Sensitivity, sigma, repetitions: 1 });

/** The plaintext mechanisms of one site in `round` (1-based). */
export function plainRoundMechanisms(b: MarginalBudget & BudgetShape, round: number): GaussianMechanism[] {
  if (round > 1) return [gauss(b.sensPairs, b.sigmaPairs)];
  const out = [gauss(Math.sqrt(b.columns), b.sigmaMarginals)];
  if (b.fineColumns > 0) out.push(gauss(Math.sqrt(b.fineColumns), ALPHA * b.sigmaMarginals));
  if (b.sensScores > 0) out.push(gauss(b.sensScores, b.sigmaScores));
  return out;
}

export function planPlain(shape: BudgetShape, privacy: StudyPrivacy): MarginalBudget {
  const a = shares(privacy.rounds);
  const d = sensitivities(shape);
  const later = privacy.rounds - 1;
  // σ_k = scale · Δ_k / √share_k, so that release k's (Δ/σ)² is share_k / scale²; later rounds split theirs.
  const at = (scale: number): MarginalBudget => ({
    sigmaMarginals: (scale * d.m) / Math.sqrt(a.m),
    sigmaScores: a.s > 0 ? (scale * d.s) / Math.sqrt(a.s) : 0,
    sigmaPairs: a.p > 0 ? (scale * d.p * Math.sqrt(later)) / Math.sqrt(a.p) : 0,
    sensMarginals: d.m,
    sensScores: a.s > 0 ? d.s : 0,
    sensPairs: a.p > 0 ? d.p : 0,
  });
  const all = (b: MarginalBudget) => Array.from({ length: privacy.rounds }, (_, r) => plainRoundMechanisms({ ...b, ...shape }, r + 1)).flat();
  const scale = calibrateSigma({ epsilon: privacy.epsilon, delta: privacy.delta, mechanismsForSigma: (s) => all(at(s)) });
  return at(scale);
}

/** Per-coordinate weights of round 1 (marginal cells, then scores) and of later rounds, from the shares. */
export function gridWeights(shape: BudgetShape, rounds: number): { marginals: number; scores: number; pairs: number } {
  const a = shares(rounds);
  const d = sensitivities(shape);
  return { marginals: Math.sqrt(a.m) / d.m, scores: a.s > 0 ? Math.sqrt(a.s) / d.s : 0, pairs: a.p > 0 ? Math.sqrt(a.p / (rounds - 1)) / d.p : 0 };
}

export function planSecure(shape: BudgetShape, privacy: StudyPrivacy, maxSiteRows = MARGINAL_MAX_SITE_ROWS): MarginalBudget {
  const { threshold, sites } = privacy.secureAggregation!;
  const a = shares(privacy.rounds);
  const w = gridWeights(shape, privacy.rounds);
  const later = privacy.rounds - 1;
  const d = sensitivities(shape);
  // Weighted by w, release k moves by √share_k under one record, and every coordinate gets the same grid
  // noise: each release gets its share of ρ. Coordinates are bounded by n (cells) and 2n (scores: an L1 distance).
  const firstBound = maxSiteRows * Math.max(w.marginals, 2 * w.scores);
  const plans = (scale: number): DistributedNoisePlan[] => {
    const first = planDistributedNoise({
      clipNorm: Math.sqrt(a.m + a.s), updateNorm: firstBound, dimension: shape.cells + (a.s > 0 ? shape.pairs : 0),
      sites, threshold, repetitions: 1, noiseStddev: scale,
    });
    if (later === 0) return [first];
    const next = planDistributedNoise({
      clipNorm: Math.sqrt(a.p / later), updateNorm: maxSiteRows * w.pairs, dimension: shape.tableCells,
      sites, threshold, repetitions: later, noiseStddev: scale,
    });
    return [first, next];
  };
  const spent = (p: DistributedNoisePlan[]) => Accountant.epsilonOf(p.map((x) => x.mechanism), privacy.delta);
  const [first, next] = plans(calibrateScale(privacy.epsilon, (scale) => spent(plans(scale))));
  const grid = (p: DistributedNoisePlan, bound: number): GridPlan => ({
    gamma: p.gamma, gridSigma: p.sigma, gridL2Sensitivity: p.l2Sensitivity, dimension: p.mechanism.dimension, coordinateBound: bound,
  });
  const share = (p: DistributedNoisePlan | undefined, weight: number) => (p && weight > 0 ? p.noiseStddev / weight : 0);
  return {
    sigmaMarginals: share(first, w.marginals),
    sigmaScores: share(first, w.scores),
    sigmaPairs: share(next, w.pairs),
    sensMarginals: d.m,
    sensScores: a.s > 0 ? d.s : 0,
    sensPairs: a.p > 0 ? d.p : 0,
    secure: {
      threshold, sites, maxSiteRows,
      first: grid(first, firstBound),
      // A one-round study has no later rounds; its "later" grid is never used.
      later: next ? grid(next, maxSiteRows * w.pairs) : grid(first, firstBound),
    },
  };
}

/** One secure round's charge. */
export function secureRoundMechanism(b: MarginalBudget, round: number): DistributedDiscreteGaussianMechanism {
  const s = b.secure!;
  const g = round === 1 ? s.first : s.later;
  return { kind: "distributed-discrete-gaussian", l2Sensitivity: g.gridL2Sensitivity, dimension: g.dimension, sigma: g.gridSigma, sites: s.threshold, repetitions: 1 };
}
