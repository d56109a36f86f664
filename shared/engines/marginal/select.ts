/**
 * The coordinator's choices between rounds, from the pooled noisy sums so far only (post-processing, so
 * free; under secure aggregation the coordinator never sees more than these sums).
 *
 * All-pairs round: each column's contrast signs, a split at its pooled median (medianSigns), so that pair
 * (a, b)'s one released value is the interaction of its 2 × 2 table over the two halves — the measurement
 * that spends a pair's whole sensitivity on the direction most dependence takes (a table spends most of
 * its noise on margins the 1-way marginals already give). Or, with settings.pairsKind "tables", each
 * column's groups, at most settings.pairsGroups of them besides missing, of about equal pooled mass.
 * Without round 1's marginals (a study of one round) the halves and groups split the cells evenly. A pair
 * with the schema's declared outcome is contrasted over other coefficients (outcomeSigns): the column's
 * present values split at their median, its missing cell 0 — what a prediction of the outcome needs of the
 * column, and what medianSigns misses where a column is missing in most rows. Measured at ε = 1, secure,
 * common noise (40 heart runs): TSTR AUC +0.013 ± 0.006 and pair trends +0.003 ± 0.001 over medianSigns
 * for those pairs; missing −1 instead of 0 gained nothing, these coefficients for every pair lost 0.015 of
 * AUC and 0.003 of pair trends (missingness shared between columns is much of their dependence), and a
 * second contrast per outcome pair for the column's missingness +0.005 ± 0.006 at −0.002 of pair trends.
 * The outcome's own coefficients in those contrasts are its thirds (outcomeThirds; settings.outcomeSplit,
 * config.ts, has the figures) or, in configs written before, its median split.
 *
 * Selected rounds, AIM-style (McKenna, Mullins, Sheldon & Miklau 2022). The model fitted to the 1-way
 * marginals and the earlier selected tables is compared with every pair's all-pairs measurement: the
 * squared miss minus the noise's expected share, e_p = ‖y_p − N·M_p‖² − cells_p·v_p (a contrast's read as a
 * 2 × 2 table's: a quarter of it on each of 4 cells), estimates how badly the model gets pair p. Measuring
 * p's table at per-cell variance v removes about e_p²/(e_p + c_p·v) of it (the James–Stein fit of a table
 * with that much signal and noise). A column's 1-way marginal is a candidate too: measuring its coarse
 * cells again at variance v removes cells·v_j²/(v_j + v) of its error, which every one of the k − 1 pair
 * tables with the column (and its own shape) carries, so that gain counts k times. K equally weighted
 * candidates each get K times the variance of one (weights 1/√K, Σ w² = 1); the round takes the K
 * candidates of largest gain, with the K that maximizes the summed gain, skipping pairs that would grow
 * the junction tree beyond its bound. Each column's groups for the round's tables are of equal pooled mass,
 * about √(N / (CELL_SIGNAL · cell noise)) of them, so that an average cell of a table of two such columns
 * holds CELL_SIGNAL times its noise. With settings.triples, 3-way tables compete too (select-triples.ts):
 * the K candidates are then taken greedily, a triple counting only the pairs no other choice measures.
 */
import { outcomeIndex, type Schema } from "../../schema/schema.js";
import type { HistogramLayout } from "../independent/histogram.js";
import { SeededRng } from "../../random/rng.js";
import { groupCount, massGrouping, type Grouping } from "./discretise.js";
import type { MarginalConfig } from "./config.js";
import { coarsen, collect, fitCollected, growModel, interactions, runSigns, SIGNIFICANCE, type Collected, type JointModel } from "./estimate.js";
import { pairIndex, pairList, type RoundPlan } from "./round-plan.js";
import { chooseGreedy, tripleCandidates, tripleGroupings, type Candidate } from "./select-triples.js";
import { gridWeights, roundGrid, selectedFraction, selectedSigma } from "./budget.js";
import { modelSampler } from "./model-sampler.js";
import { modelMarginal } from "./pgm.js";
import type { RoundRecord } from "./model-bytes.js";

/** Measured at ε = 1 (8 runs, heart and cohort): 1.5 beat 3, 2, 1 and 0.6 on the heart data's AUC at equal pair trends. */
export const CELL_SIGNAL = 1.5;
/** Rows drawn from the model to estimate the pair tables it does not hold in one clique. */
const SELECTION_SAMPLE = 100_000;

/**
 * A column's contrast signs: its cells in the order missing, then cell 0, 1, …, split at the pooled
 * median — the cells before it −1, the rest +1 — so that the contrast of two columns is their 2 × 2
 * table's interaction over two halves (uniform mass before round 1's marginals are known).
 */
export function medianSigns(p: ArrayLike<number>): number[] {
  const size = p.length;
  const order = [size - 1, ...Array.from({ length: size - 1 }, (_, c) => c)];
  let total = 0;
  for (let c = 0; c < size; c++) total += Math.max(0, p[c]);
  let cum = 0;
  let split = 1;
  let best = Infinity;
  for (let i = 1; i < size; i++) {
    cum += Math.max(0, p[order[i - 1]]);
    const gap = Math.abs(cum - total / 2);
    if (gap < best) {
      best = gap;
      split = i;
    }
  }
  const signs = new Array<number>(size).fill(1);
  for (let i = 0; i < split; i++) signs[order[i]] = -1;
  return signs;
}

/**
 * A column's coefficients in its contrast with the declared outcome: its present cells split at the median
 * of their pooled mass (−1 before, +1 from it on), the missing cell 0 — so that the contrast measures how
 * the column's values go with the outcome, whatever share of the rows miss it (medianSigns would split a
 * column missing in most rows into missing and present, and say nothing of its values).
 */
export function outcomeSigns(p: ArrayLike<number>): number[] {
  const size = p.length;
  let total = 0;
  for (let c = 0; c < size - 1; c++) total += Math.max(0, p[c]);
  let cum = 0;
  let split = 1;
  let best = Infinity;
  for (let i = 1; i < size - 1; i++) {
    cum += Math.max(0, p[i - 1]);
    const gap = Math.abs(cum - total / 2);
    if (gap < best) {
      best = gap;
      split = i;
    }
  }
  const signs = new Array<number>(size).fill(1);
  for (let i = 0; i < Math.min(split, size - 1); i++) signs[i] = -1;
  signs[size - 1] = 0;
  return signs;
}

/**
 * The declared outcome's own coefficients in its contrasts (settings.outcomeSplit "thirds"): each present
 * cell by where its pooled mass's middle falls, −1 in the first third, 0 in the second, +1 in the last;
 * missing 0. A graded contrast: a many-valued outcome's middle values say how a column goes with it without
 * being counted with its extremes. At least one −1 and one +1, so that the contrast is never empty.
 */
export function outcomeThirds(p: ArrayLike<number>): number[] {
  const size = p.length;
  let total = 0;
  for (let c = 0; c < size - 1; c++) total += Math.max(0, p[c]);
  const signs = new Array<number>(size).fill(0);
  let cum = 0;
  for (let c = 0; c < size - 1; c++) {
    const middle = cum + Math.max(0, p[c]) / 2;
    signs[c] = middle < total / 3 ? -1 : middle < (2 * total) / 3 ? 0 : 1;
    cum += Math.max(0, p[c]);
  }
  if (size > 1 && !signs.includes(-1)) signs[0] = -1;
  if (size > 2 && !signs.includes(1)) signs[size - 2] = 1;
  return signs;
}

export function pairsPlan(schema: Schema, layout: HistogramLayout, config: MarginalConfig, p: Float64Array[] | undefined): RoundPlan {
  if (config.settings.pairsKind === "scalars") {
    const marginal = (j: number) => (p ? p[j] : new Float64Array(layout.sizes[j]).fill(1));
    const outcome = outcomeIndex(schema);
    const outcomeOwnSigns = config.settings.outcomeSplit === "thirds" ? outcomeThirds : medianSigns;
    return {
      pairsSigns: layout.sizes.map((_, j) => medianSigns(marginal(j))),
      ...(outcome >= 0 ? { outcomeSigns: layout.sizes.map((_, j) => (j === outcome ? outcomeOwnSigns(marginal(j)) : outcomeSigns(marginal(j)))) } : {}),
      pairs: pairList(layout.columns),
    };
  }
  const most = config.settings.pairsGroups;
  const pairsGroups = schema.columns.map((c, j) => massGrouping(c, layout.sizes[j], p ? p[j] : new Float64Array(layout.sizes[j]).fill(1), most));
  return { pairsGroups, pairs: pairList(layout.columns) };
}

/** The model's table of every pair over the given groups, in counts: exact from a clique where the groups allow, else from samples. */
export function modelPairTables(model: JointModel, pairs: [number, number][], groups: Grouping[][], rows: number): Float64Array[] {
  let sample: Int32Array[] | undefined;
  return pairs.map(([a, b], i) => {
    const [ga, gb] = groups[i];
    const counts = [groupCount(ga), groupCount(gb)];
    const ma = coarsen(model.refine[a], ga);
    const mb = coarsen(model.refine[b], gb);
    const exact = ma && mb ? modelMarginal(model.fit, [a, b], [ma, mb], counts) : undefined;
    if (exact) return exact.map((x) => x * rows);
    sample ??= modelSampler([], model).cells(SELECTION_SAMPLE, new SeededRng(7));
    const out = new Float64Array(counts[0] * counts[1]);
    const x = sample[a];
    const y = sample[b];
    for (let r = 0; r < x.length; r++) out[ga[x[r]] * counts[1] + gb[y[r]]] += 1;
    return out.map((v) => (v * rows) / x.length);
  });
}

/** The model of the precise measurements (the 1-way marginals and the selected tables), without the all-pairs contrasts. */
export function preciseModel(c: Collected): JointModel {
  return fitCollected(c, { use: (t) => t.source === "selected", significant: false });
}

/** The selected round's plan from the rounds so far. */
export function selectedPlan(schema: Schema, layout: HistogramLayout, config: MarginalConfig, rounds: readonly RoundRecord[], contributors: number, collected?: Collected, budget?: number): RoundPlan {
  const c = collected ?? collect(schema, layout, config, rounds);
  // The model without the all-pairs tables: what the precise measurements so far imply.
  const model = preciseModel(c);
  const allPairs = c.tables.filter((t) => t.source === "pairs");
  const previous = c.tables.filter((t) => t.source === "selected");
  const modelTables = modelPairTables(model, allPairs.map((t) => [t.a, t.b]), allPairs.map((t) => t.groups), c.rows);
  const miss = allPairs.map((t, i) => {
    if (t.signs) {
      // A contrast's miss, read as a 2 × 2 table's: four cells of a quarter of the contrast each.
      const m = modelTables[i];
      const sa = runSigns(t.signs[0], t.groups[0]);
      const sb = runSigns(t.signs[1], t.groups[1]);
      let expected = 0;
      for (let x = 0; x < sa.length; x++) for (let y = 0; y < sb.length; y++) expected += m[x * sb.length + y] * sa[x] * sb[y];
      return { table: t, error: ((t.y[0] - expected) ** 2 - t.variance) / 4, cells: 4 };
    }
    let ss = 0;
    for (let x = 0; x < t.y.length; x++) ss += (t.y[x] - modelTables[i][x]) ** 2;
    return { table: t, error: ss - t.y.length * t.variance, cells: t.y.length };
  });
  miss.sort((u, v) => v.error - u.error);
  // One table of weight 1: each site's noise is the grid's (or plaintext) scale over the selected weight.
  const budgetPlan: RoundPlan = budget === undefined ? {} : { budget };
  const w = gridWeights(config, config.settings, selectedFraction(config, budgetPlan));
  const round = rounds.length + 1;
  const grid = config.secure && roundGrid(config, round, budgetPlan);
  const siteSd = grid ? (grid.gridSigma * grid.gamma) / w.selected : selectedSigma(config, budgetPlan);
  const v1 = contributors * siteSd * siteSd;
  // A column measured again: its coarse estimate's error, cells · v_j, falls to cells · v_j·v'/(v_j + v') at a
  // re-measurement of variance v' — and every pair table with the column carries that error in its margin.
  const columnWeight = layout.columns;
  const pairCandidate = (m: (typeof miss)[number]): Candidate => ({
    pair: [m.table.a, m.table.b], parts: [{ id: pairIndex(layout.columns, m.table.a, m.table.b), error: m.error, share: 1, noise: m.cells }],
  });
  const columns: Candidate[] = layout.sizes.map((size, j) => {
    const v = c.marginalVariance[j];
    return { column: j, parts: [], gain: (K: number) => (columnWeight * size * v * v) / (v + K * v1) };
  });
  const choose = (candidates: Candidate[], force = false): { K: number; chosen: Candidate[] } => {
    const all = [...candidates, ...columns];
    let best = { K: 1, gain: -Infinity, chosen: [] as Candidate[] };
    for (let K = 1; K <= Math.min(config.maxTables, all.length); K++) {
      const { chosen, gain } = chooseGreedy(all, K, v1, force);
      if (gain > best.gain * (1 + 1e-12) || best.chosen.length === 0) best = { K, gain, chosen };
    }
    return best;
  };
  const groupsFor = (K: number) => {
    const cellSd = Math.sqrt(v1 * K);
    const target = Math.max(2, Math.floor(Math.sqrt(Math.max(0, c.rows) / (CELL_SIGNAL * cellSd))));
    return schema.columns.map((col, j) => massGrouping(col, layout.sizes[j], c.p[j], target));
  };
  // K from the misses alone, then the candidates the junction tree admits at that K's groups, then K again.
  const K0 = choose(miss.map(pairCandidate)).K;
  const selectedGroups = groupsFor(K0);
  const stubs = miss.map((m) => ({ ...m.table, groups: [selectedGroups[m.table.a], selectedGroups[m.table.b]] as [Grouping, Grouping], source: "selected" as const }));
  // (A pair's all-pairs table is in the final model with its selected one, so both shape the junction tree.)
  const { tables: grown } = growModel(layout.sizes.slice(), previous, [...stubs, ...allPairs]);
  const admitted = new Set(grown.filter((t) => t.source === "selected").map((t) => t.a * layout.columns + t.b));
  const ordered = miss.filter((m) => admitted.has(m.table.a * layout.columns + m.table.b) && !previous.some((p) => p.a === m.table.a && p.b === m.table.b));
  const mode = config.settings.triples;
  const tripleGroups = mode === "off" ? [] : tripleGroupings(selectedGroups, c.p, c.rows, Math.sqrt(v1 * K0), CELL_SIGNAL);
  // The significant all-pairs tables the final model takes after the selected ones (fitCollected), strongest first.
  const inter = mode === "off" ? [] : interactions(c);
  const strength = new Map(c.tables.map((t, i) => [t, inter[i]?.strength ?? 0]));
  const significant = allPairs.filter((t) => strength.get(t)! > SIGNIFICANCE).sort((u, v) => strength.get(v)! - strength.get(u)!);
  const triples = mode === "off" ? [] : tripleCandidates(
    layout.columns, miss.map((m) => ({ a: m.table.a, b: m.table.b, error: m.error })), new Set([...model.pairs, ...significant.map((t) => [t.a, t.b])].map(([a, b]) => pairIndex(layout.columns, a, b))),
    new Set(c.triples.map((t) => t.vars.join(","))), selectedGroups, tripleGroups, v1, layout.sizes.slice(), [...c.triples, ...previous],
    [...grown.filter((t) => t.source === "selected"), ...significant],
  );
  const { chosen } = choose([...ordered.map(pairCandidate), ...triples], mode === "always" && triples.length > 0);
  const weight = Math.sqrt(1 / chosen.length) * (1 - 1e-9);
  const selected = chosen.filter((x) => x.pair).map((x) => x.pair!);
  const measuredColumns = chosen.filter((x) => x.column !== undefined).map((x) => x.column!);
  const measuredTriples = chosen.filter((x) => x.triple).map((x) => x.triple!);
  const tripleFields = measuredTriples.length > 0 ? { tripleGroups, triples: measuredTriples, tripleWeights: measuredTriples.map(() => weight) } : {};
  return { selectedGroups, selected, weights: selected.map(() => weight), columns: measuredColumns, columnWeights: measuredColumns.map(() => weight), ...tripleFields, ...budgetPlan };
}
