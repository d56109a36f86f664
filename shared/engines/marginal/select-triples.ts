/**
 * 3-way tables as candidates of a selected round (settings.triples; post-processing of pooled sums only).
 *
 * Nothing released before a triple's own table says how its three-way interaction departs from the model,
 * so a triple is valued only by what is known: its three 2-way margins. A pair table of P_a × P_b groups
 * at per-cell variance V spreads pair p's miss e_p over df_P = (P_a − 1)(P_b − 1) interaction dimensions,
 * each with noise V, and removes about e_p²/(e_p + df_P·V) of it; select.ts's calibrated gain writes
 * 4·K·v₁ for df_P·V. The margin (a, b) of triple (a, b, c) over G groups holds only df_G = (G_a − 1)(G_b − 1)
 * of those dimensions — a share f = df_G/df_P of the miss, spread evenly — each with noise G_c·V (a margin
 * cell sums G_c cells), so on the same scale its gain is (f·e_p)² / (f·e_p + 4·K·v₁·df_G·G_c/df_P). A
 * triple's gain is the sum over its pairs, each pair's miss less what the chosen tables already remove of
 * it (chooseGreedy): one table (one weight) for three pairs, worth it where all three miss by far more
 * than their noise, while a pair table chosen besides still gains what the triple's coarse margins miss.
 * Its 3-way interaction is a bonus the estimate does not count.
 *
 * Measured at ε = 1, secure (NOISE_SEED A/B, 8 heart and 4 cohort runs): without the share f (a triple
 * seeing its pairs' whole misses) 45 triples over the heart runs cost 0.03 of TSTR AUC and 54 over the
 * cohort runs 0.007 of pair trends; with the all-pairs round's halves as the triple's groups (f = 1, no
 * finer structure) 66 cohort triples cost 0.02 of pair trends: the contrasts' 2 × 2 misses understate
 * what finer pair tables catch, so a triple must not stand in for them. As it is (8 heart, 4 cohort runs,
 * common noise): heart 8 triples, pair trends 0.849 vs 0.847, AUC 0.693 vs 0.683; cohort 32 triples, pair
 * trends 0.957 vs 0.959, AUC 0.793 vs 0.795; cohort at ε = 4, 37 triples, 0.964 vs 0.965, AUC 0.794 vs
 * 0.796 — the cohort's rounds take the most tables the study allows (2k), so each triple displaces a pair
 * table, and its coarse margins are worth less than this estimate says. Hence settings.triples is off by
 * default.
 *
 * Candidates: triples all of whose pairs the final model will hold anyway (selected before, or an
 * all-pairs measurement that stands out of its noise: no new edge, so no clique the model would not
 * have), of largest gain at K = 1, not measured before, whose junction tree with the round's other
 * candidates, the significant all-pairs tables the final model will take and the triples admitted before
 * it stays within the model's bound (a triple that grew the cliques beyond it would push all-pairs
 * dependence out of the model).
 * Their groups coarsen the round's pair groups (coarserGrouping), to about ∛(N / (CELL_SIGNAL · cell
 * noise)) per column and at most TRIPLE_GROUPS, so that a triple refines no column the round's pair
 * tables measure and an average cell holds CELL_SIGNAL times its noise.
 */
import { coarserGrouping, groupCount, TRIPLE_GROUPS, type Grouping } from "./discretise.js";
import { growModel, MODEL_CELLS, refinement, tableVars, type ModelTable, type PairMeasurement } from "./estimate.js";
import { pairIndex } from "./round-plan.js";
import { junctionTree } from "./junction-tree.js";

/** A selected round's candidate: a pair table, a column's 1-way cells, or a 3-way table. */
export interface Candidate {
  pair?: [number, number];
  column?: number;
  triple?: [number, number, number];
  /**
   * The pairs it measures (id: pairIndex): each pair's miss e_p, the share of it the candidate's table can
   * see, and the noise it measures that share with, in units of K·v₁ (4 for a pair table, select.ts).
   */
  parts: { id: number; error: number; share: number; noise: number }[];
  /** A column's gain at K (columns measure no pair). */
  gain?: (K: number) => number;
}

export interface PairMiss {
  a: number;
  b: number;
  /** select.ts's e_p: the squared miss beyond noise, of the pair's 2 × 2 reading. */
  error: number;
}

/** Each column's groups for the round's 3-way tables. */
export function tripleGroupings(pairGroups: Grouping[], p: Float64Array[], rows: number, cellSd: number, cellSignal: number): Grouping[] {
  const target = Math.min(TRIPLE_GROUPS, Math.max(2, Math.floor(Math.cbrt(Math.max(0, rows) / (cellSignal * cellSd)))));
  return pairGroups.map((g, j) => coarserGrouping(g, p[j], target));
}

/** Gain of measuring a pair of miss e at noise `noise` over its four 2 × 2 cells (select.ts's pair gain). */
export const pairGain = (e: number, noise: number) => (e > 0 ? (e * e) / (e + noise) : 0);

/**
 * Triple candidates (see the file comment). `held`: pairs the final model holds anyway; `previous`: triples
 * measured in earlier rounds; `pairGroups`: the round's pair groups; `around`: the round's admitted pair
 * stubs and the significant all-pairs tables, with which a triple's junction tree must fit; `most`: how
 * many to return.
 */
export function tripleCandidates(
  k: number, misses: readonly PairMiss[], held: ReadonlySet<number>, previous: ReadonlySet<string>, pairGroups: Grouping[], tripleGroups: Grouping[],
  v1: number, sizes: number[], base: readonly ModelTable[], around: readonly PairMeasurement[], most = 4 * k,
): Candidate[] {
  const error = new Float64Array((k * (k - 1)) / 2).fill(-Infinity);
  for (const m of misses) error[pairIndex(k, m.a, m.b)] = m.error;
  const edge = (a: number, b: number) => held.has(pairIndex(k, a, b));
  const found: { triple: [number, number, number]; covers: number[]; share: number[]; noise: number[]; gain1: number }[] = [];
  for (let a = 0; a < k; a++) {
    for (let b = a + 1; b < k; b++) {
      if (!edge(a, b)) continue;
      for (let c = b + 1; c < k; c++) {
        if (!edge(a, c) || !edge(b, c) || previous.has(`${a},${b},${c}`)) continue;
        const pairs: [number, number, number][] = [[a, b, c], [a, c, b], [b, c, a]];
        const df = (g: Grouping[], x: number, y: number) => Math.max(1, (groupCount(g[x]) - 1) * (groupCount(g[y]) - 1));
        const covers = pairs.map(([x, y]) => pairIndex(k, x, y));
        const share = pairs.map(([x, y]) => Math.min(1, df(tripleGroups, x, y) / df(pairGroups, x, y)));
        const noise = pairs.map(([x, y, z]) => (4 * df(tripleGroups, x, y) * groupCount(tripleGroups[z])) / df(pairGroups, x, y));
        const gain1 = covers.reduce((s, id, i) => s + pairGain(share[i] * error[id], v1 * noise[i]), 0);
        if (gain1 > 0) found.push({ triple: [a, b, c], covers, share, noise, gain1 });
      }
    }
  }
  found.sort((x, y) => y.gain1 - x.gain1);
  // The earlier tables with what the final model will take: each triple must fit a junction tree with all of them and the triples before it.
  const fitted: ModelTable[] = growModel<ModelTable>(sizes, base, around).tables;
  const out: Candidate[] = [];
  for (const f of found) {
    if (out.length >= most) break;
    const stub = { vars: f.triple, groups: f.triple.map((j) => tripleGroups[j]) as [Grouping, Grouping, Grouping], y: new Float64Array(0), variance: 1 };
    const tables = [...fitted, stub];
    const domain = sizes.map((size, j) => groupCount(refinement(size, tables.flatMap((t) => {
      const at = tableVars(t).indexOf(j);
      return at >= 0 ? [t.groups[at]] : [];
    }))));
    if (junctionTree(domain, tables.map(tableVars)).size > MODEL_CELLS) continue;
    fitted.push(stub);
    out.push({ triple: f.triple, parts: f.covers.map((id, i) => ({ id, error: error[id], share: f.share[i], noise: f.noise[i] })) });
  }
  return out;
}

/**
 * The K candidates of largest summed gain, greedily: each step takes the candidate of largest gain given
 * those taken, a pair's miss reduced by what the chosen tables already remove of it (so that a pair table
 * after a triple still gains what the triple's coarse margins miss). With `force`, the best triple is
 * taken first. Without triples this is the K of largest gain (no two candidates share a pair).
 */
export function chooseGreedy(candidates: readonly Candidate[], K: number, v1: number, force = false): { chosen: Candidate[]; gain: number } {
  const removed = new Map<number, number>();
  const taken = new Uint8Array(candidates.length);
  const chosen: Candidate[] = [];
  let total = 0;
  const partGain = (p: Candidate["parts"][number]) => pairGain(p.share * Math.max(0, p.error - (removed.get(p.id) ?? 0)), K * v1 * p.noise);
  const marginal = (c: Candidate) => (c.gain ? c.gain(K) : c.parts.reduce((s, p) => s + partGain(p), 0));
  for (let step = 0; step < K; step++) {
    const forcing = force && step === 0 && candidates.some((c) => c.triple);
    let best = -1;
    let bestGain = -Infinity;
    candidates.forEach((c, i) => {
      if (taken[i] || (forcing && !c.triple)) return;
      const g = marginal(c);
      if (g > bestGain) {
        best = i;
        bestGain = g;
      }
    });
    if (best < 0) break;
    taken[best] = 1;
    chosen.push(candidates[best]);
    total += bestGain;
    for (const p of candidates[best].parts) removed.set(p.id, (removed.get(p.id) ?? 0) + partGain(p));
  }
  return { chosen, gain: total };
}
