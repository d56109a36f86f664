/**
 * Budget annealing of the selected rounds (settings.annealing "aim"): how much of the selected tables'
 * share of the budget each selected round spends, chosen by the coordinator when it plans the round and
 * carried in the round config (`budget`), so that a site computes the round's charge from it and checks
 * it against the study's epsilon and its own cap like any other (site-agent/budget.ts).
 *
 * AIM (McKenna, Mullins, Sheldon & Miklau 2022, §4.3) starts with small rounds and, when a round's
 * measurements move the model by less than their own noise would (the largest errors are fixed; what is
 * left is too small to see at that noise), makes the next round's budget four times larger (half the
 * noise); its last round spends whatever is left. A study here has a fixed number S of selected rounds, so:
 *   - the first selected round spends 1/(2S) of the share (half an equal split);
 *   - each later one, but the last, spends the previous round's fraction, four times it when the previous
 *     round's measurements were not informative, never more than half of what is left;
 *   - the last spends exactly what the study has left: the largest fraction whose charge, composed with
 *     every earlier round's by the accountant, stays within the study's epsilon.
 * With one selected round (the default three-round study), that round spends the whole share, as an equal
 * split would, and only the exact remainder differs (under secure aggregation, what the earlier rounds'
 * grids left unspent by rounding up).
 *
 * Informative, as AIM tests it: Σ_t ‖N·(M_after,t − M_before,t)‖₁ > √(2/π) Σ_t σ_t · cells_t over the round's
 * tables and columns t, with M the model of the precise measurements (the selected tables and the 1-way
 * marginals: what selection compares the all-pairs contrasts with) fitted without and with the round, and
 * σ_t the pooled noise of one of t's cells (3-way tables, settings.triples, are left out). Everything here is post-processing of released sums.
 */
import type { Schema } from "../../schema/schema.js";
import type { StudyPrivacy } from "../engine.js";
import type { HistogramLayout } from "../independent/histogram.js";
import { Accountant } from "../../privacy/accountant.js";
import { roundMechanisms } from "./budget.js";
import { invalid, roundParts, type MarginalConfig } from "./config.js";
import { collect, type Collected } from "./estimate.js";
import type { RoundRecord } from "./model-bytes.js";
import { roundLayout, siteNoise } from "./site-update.js";
import { modelPairTables, preciseModel } from "./select.js";
import { readRoundBudget, type RoundPlan } from "./round-plan.js";

/** How much larger a round after an uninformative one is (AIM: twice the epsilon, four times the zCDP ρ). */
export const ANNEAL_STEP = 4;

/** Least fraction of the selected share a last round is planned with. */
const MIN_LAST_FRACTION = 1e-6;

/** The fraction of the selected share that round `round` (a selected round) spends; undefined for "equal". */
export function annealedBudget(
  schema: Schema, layout: HistogramLayout, config: MarginalConfig, privacy: Pick<StudyPrivacy, "epsilon" | "delta">, rounds: readonly RoundRecord[], round: number, collected?: Collected,
): number | undefined {
  if (config.settings.annealing === "equal" || !roundParts(config, round).selected) return undefined;
  // Only each round's budget matters here; the rounds' configs were checked when they were aggregated.
  const plans: RoundPlan[] = rounds.map((r, i) => ({ budget: readRoundBudget(r.roundConfig, config, i + 1) }));
  const earlier = plans.filter((_, i) => roundParts(config, i + 1).selected).map((p) => p.budget ?? 1 / config.selectedRounds);
  const left = 1 - earlier.reduce((s, f) => s + f, 0);
  if (round === config.rounds) return lastFraction(config, privacy, plans);
  if (earlier.length === 0) return Math.min(1 / (2 * config.selectedRounds), left / 2);
  const previous = earlier[earlier.length - 1];
  const step = informative(schema, layout, config, rounds, collected) ? 1 : ANNEAL_STEP;
  return Math.min(previous * step, left / 2);
}

/** The largest fraction (at most 1) whose charge, composed with the earlier rounds', is within the study's epsilon. */
function lastFraction(config: MarginalConfig, privacy: Pick<StudyPrivacy, "epsilon" | "delta">, plans: RoundPlan[]): number {
  const before = plans.flatMap((p, i) => roundMechanisms(config, i + 1, p));
  const round = plans.length + 1;
  const spent = (f: number) => Accountant.epsilonOf([...before, ...roundMechanisms(config, round, { budget: f })], privacy.delta);
  if (spent(1) <= privacy.epsilon) return 1;
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 50; i++) {
    const mid = (lo + hi) / 2;
    if (spent(mid) <= privacy.epsilon) lo = mid;
    else hi = mid;
  }
  // What calibration's rounding leaves (a last round of nothing but noise) is no budget either.
  if (!(lo >= MIN_LAST_FRACTION)) throw invalid(`The study has no budget left for its last round (${round})`, "The earlier rounds spent the study's epsilon; the study cannot run another round.");
  return lo;
}

/** Whether the last round's measurements moved the model of the precise measurements by more than their noise. */
function informative(schema: Schema, layout: HistogramLayout, config: MarginalConfig, rounds: readonly RoundRecord[], collected?: Collected): boolean {
  const last = rounds[rounds.length - 1];
  const round = rounds.length;
  const rl = roundLayout({ schema, round, roundConfig: last.roundConfig }, config, layout);
  const part = rl.selectedPart!;
  const noise = siteNoise(config, rl, round);
  const sd = (at: number) => Math.sqrt(last.contributors) * noise[at];
  const after = collected ?? collect(schema, layout, config, rounds);
  const before = collect(schema, layout, config, rounds.slice(0, -1));
  const groups = part.tables.map(([a, b]) => [part.groups[a], part.groups[b]]);
  const [mAfter, mBefore] = [after, before].map((c) => modelPairTables(preciseModel(c), part.tables, groups, after.rows));
  let moved = 0;
  let noiseL1 = 0;
  part.tables.forEach((_, t) => {
    for (let x = 0; x < mAfter[t].length; x++) moved += Math.abs(mAfter[t][x] - mBefore[t][x]);
    noiseL1 += sd(rl.selected + part.offsets[t]) * mAfter[t].length;
  });
  part.columns.forEach((j, t) => {
    for (let c = 0; c < layout.sizes[j]; c++) moved += after.rows * Math.abs(after.p[j][c] - before.p[j][c]);
    noiseL1 += sd(rl.selected + part.columnOffsets[t]) * layout.sizes[j];
  });
  return moved > Math.sqrt(2 / Math.PI) * noiseL1;
}
