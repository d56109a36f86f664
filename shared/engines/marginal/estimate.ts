/**
 * From the pooled noisy sums of the rounds so far to a fitted junction-tree model (pure post-processing of
 * released values, so free under DP).
 *
 * 1. Every column's distribution over its cells and, for columns with a fine level, over its grid values:
 *    round 1's coarse cells pooled (inverse-variance) with any selected round's re-measurement of the
 *    column, then read as the independent engine reads its histograms (coarse and fine levels combined,
 *    Norm-Sub, the fine split by shrinkBlock), with numeric bins smoothed first (smooth.ts); and the row
 *    count N.
 * 2. Every released pair measurement, with its noise variance (public: the config's noise and the rounds'
 *    contributor counts): the all-pairs round's contrasts (or tables) and the selected rounds' tables.
 *    Before fitting, each one's dependence is shrunk towards independence, James–Stein style: a table's
 *    interaction — its departure from N·r·cᵀ (r, c: the columns' group shares from step 1), double-centred
 *    so that it lies in the (R−1)(C−1) dimensions a dependence can occupy — by max(0, 1 − df·v/‖I‖²), a
 *    contrast's departure D from N·E[sign_a]·E[sign_b] by max(0, 1 − v/D²). Pure noise has about df·v of
 *    it, so a measurement keeps only the dependence that stands out of its noise (at small cohorts most of
 *    a table is noise, and spurious dependence costs more fidelity than none). A table's margins are kept:
 *    they are further measurements of the 1-way shares.
 * 3. The model's pairs: every selected table's pair, then the pairs whose all-pairs measurement stands out
 *    (‖I‖² > SIGNIFICANCE·df·v), strongest first, as long as the junction tree of all of them stays within
 *    MODEL_CELLS cells. Each column's domain in the model is the common refinement of the groupings its
 *    measurements use (one group when none), so that every measurement is a linear query of the model.
 * 4. The fit (pgm.ts): clique marginals over the refined groups, consistent and non-negative, fitting the
 *    1-way estimates (each group's sum, variance |group|·v_j) and every shrunk measurement of the model's
 *    pairs in weighted least squares — and the selected rounds' 3-way tables (triple.ts), whose columns
 *    the junction tree holds in one clique (they join the model first, each shrunk part by part). Within a group, cells and grid values split as step 1 says.
 */
import { columnProbabilities, estimateRowCount, readColumn, type ColumnDistributions, type HistogramLayout } from "../independent/histogram.js";
import { outcomeIndex, type NumericColumn, type Schema } from "../../schema/schema.js";
import { numericBins } from "../../schema/bins.js";
import { smoothCounts } from "./smooth.js";
import { groupCount, type Grouping } from "./discretise.js";
import { FINE_NOISE_MULTIPLIER } from "./budget.js";
import type { MarginalConfig } from "./config.js";
import { junctionTree, type JunctionTree } from "./junction-tree.js";
import { fitModel, type FittedModel, type Measurement } from "./pgm.js";
import { roundLayout, siteNoise } from "./site-update.js";
import { pairIndex } from "./round-plan.js";
import type { RoundRecord } from "./model-bytes.js";
import { shrinkTriple, tripleSize, type TripleMeasurement } from "./triple.js";

/** Most cells of the model's clique tables together (bounds the fit's work and the sampler's tables). */
export const MODEL_CELLS = 30_000;
/** An all-pairs table joins the model when its interaction exceeds this many times its noise's expectation. */
export const SIGNIFICANCE = 2;

export interface PairMeasurement {
  a: number;
  b: number;
  groups: [Grouping, Grouping];
  /** The pooled noisy table (a's groups × b's groups, row-major) and each cell's noise variance. */
  y: Float64Array;
  variance: number;
  /** "pairs": the all-pairs round; "selected": a selected round. */
  source: "pairs" | "selected";
  /**
   * A contrast instead of a table: each column's cell signs; y holds one value, Σ_rows sign_a · sign_b,
   * and `groups` are the runs of equal sign (missing apart), over which the contrast is a linear query.
   */
  signs?: [number[], number[]];
}

/** Runs of equal sign of a column's cells, the missing cell (last) a run of its own: a valid grouping. */
export function signRuns(signs: readonly number[]): Grouping {
  const out: Grouping = [];
  let g = 0;
  for (let c = 0; c < signs.length; c++) {
    if (c > 0 && (signs[c] !== signs[c - 1] || c === signs.length - 1)) g++;
    out.push(g);
  }
  return out;
}

/** A contrast's sign per group of its runs. */
export function runSigns(signs: readonly number[], runs: Grouping): Float64Array {
  const out = new Float64Array(groupCount(runs));
  for (let c = 0; c < signs.length; c++) out[runs[c]] = signs[c];
  return out;
}

export interface Collected {
  layout: HistogramLayout;
  rows: number;
  /** Each column's cell probabilities (last = missing) and, for fine columns, grid-value probabilities. */
  p: Float64Array[];
  values: (Float64Array | undefined)[];
  /** Each column's noise variance of a pooled coarse 1-way cell (round 1's, less where a selected round measured the column again). */
  marginalVariance: number[];
  tables: PairMeasurement[];
  /** The selected rounds' 3-way tables (triple.ts). */
  triples: TripleMeasurement[];
}

export function collect(schema: Schema, layout: HistogramLayout, config: MarginalConfig, rounds: readonly RoundRecord[]): Collected {
  const tables: PairMeasurement[] = [];
  const triples: TripleMeasurement[] = [];
  const k = layout.columns;
  // Every column's coarse cells as weighted sums (precision-weighted), round 1's and any re-measurement's.
  let first: Float64Array | undefined;
  let firstVariance = 1;
  const weighted = layout.sizes.map((size) => new Float64Array(size));
  const precision = new Float64Array(k);
  rounds.forEach((r, i) => {
    const round = i + 1;
    const rl = roundLayout({ schema, round, roundConfig: r.roundConfig }, config, layout);
    const noise = siteNoise(config, rl, round);
    const variance = (at: number) => r.contributors * noise[at] ** 2;
    if (rl.marginals >= 0) {
      first = r.sum.subarray(rl.marginals, rl.marginals + layout.total);
      firstVariance = variance(rl.marginals);
      for (let j = 0; j < k; j++) {
        for (let c = 0; c < layout.sizes[j]; c++) weighted[j][c] += first[layout.offsets[j] + c] / firstVariance;
        precision[j] += 1 / firstVariance;
      }
    }
    if (rl.plan.pairsSigns) {
      // A pair with the declared outcome has both its columns' outcomeSigns (round-plan.ts).
      const outcome = outcomeIndex(schema);
      rl.plan.pairs!.forEach(([a, b], t) => {
        const signs = rl.plan.outcomeSigns && (a === outcome || b === outcome) ? rl.plan.outcomeSigns : rl.plan.pairsSigns!;
        const [sa, sb] = [signs[a], signs[b]];
        tables.push({
          a, b, groups: [signRuns(sa), signRuns(sb)], y: Float64Array.of(r.sum[rl.pairs + t]), variance: variance(rl.pairs + t), source: "pairs", signs: [sa, sb],
        });
      });
    }
    for (const [part, offset, source] of [[rl.pairsPart, rl.pairs, "pairs"], [rl.selectedPart, rl.selected, "selected"]] as const) {
      if (!part) continue;
      part.tables.forEach(([a, b], t) => {
        const ga = part.groups[a];
        const gb = part.groups[b];
        const at = offset + part.offsets[t];
        const n = groupCount(ga) * groupCount(gb);
        tables.push({ a, b, groups: [ga, gb], y: Float64Array.from(r.sum.subarray(at, at + n)), variance: variance(at), source });
      });
      part.columns.forEach((j, t) => {
        const at = offset + part.columnOffsets[t];
        const v = variance(at);
        for (let c = 0; c < layout.sizes[j]; c++) weighted[j][c] += r.sum[at + c] / v;
        precision[j] += 1 / v;
      });
      part.triples.forEach((vars, t) => {
        const groups = vars.map((j) => part.tripleGroups[j]) as TripleMeasurement["groups"];
        const at = offset + part.tripleOffsets[t];
        triples.push({ vars, groups, y: Float64Array.from(r.sum.subarray(at, at + tripleSize(groups))), variance: variance(at) });
      });
    }
  });
  const marginalVariance = Array.from(precision, (w) => (w > 0 ? 1 / w : firstVariance));
  let hist = columnProbabilities(layout, new Float64Array(layout.total));
  if (first) {
    const estimate = Float64Array.from(first);
    for (let j = 0; j < k; j++) for (let c = 0; c < layout.sizes[j]; c++) estimate[layout.offsets[j] + c] = weighted[j][c] / precision[j];
    hist = columnDistributions(schema, layout, estimate, marginalVariance, FINE_NOISE_MULTIPLIER ** 2 * firstVariance);
  }
  return { layout, rows: hist.rows, p: hist.probabilities, values: hist.values, marginalVariance, tables, triples };
}

/** Inverse-variance weighted mean of a coarse bin's count and the sum of its m fine counts (as the independent engine). */
function combineBlock(coarse: number, fineSum: number, m: number, coarseVariance: number, fineVariance: number): number {
  const wc = 1 / coarseVariance;
  const wf = 1 / (m * fineVariance);
  return (wc * coarse + wf * fineSum) / (wc + wf);
}

/** The pooled row count: the precision-weighted mean of the columns' totals (estimateRowCount, with per-column variances). */
function rowCount(layout: HistogramLayout, estimate: Float64Array, variances: readonly number[]): number {
  let weighted = 0;
  let weights = 0;
  for (let j = 0; j < layout.columns; j++) {
    let total = 0;
    for (let c = 0; c < layout.sizes[j]; c++) total += estimate[layout.offsets[j] + c];
    const w = 1 / (layout.sizes[j] * variances[j]);
    weighted += w * total;
    weights += w;
  }
  return weights > 0 ? weighted / weights : estimateRowCount(layout, estimate);
}

/**
 * Step 1: the independent engine's reading of round 1's histograms (columnProbabilities: coarse and fine
 * levels combined, Norm-Sub, the fine split by shrinkBlock), with one addition: a numeric column's bins
 * (missing aside) are smoothed first by smoothCounts (smooth.ts), whose SURE-chosen strength leaves them
 * as they are unless pooling neighbours beats their noise.
 */
export function columnDistributions(schema: Schema, layout: HistogramLayout, estimate: Float64Array, variances: readonly number[], fineVariance: number): ColumnDistributions {
  const rows = rowCount(layout, estimate, variances);
  const probabilities: Float64Array[] = [];
  const values: (Float64Array | undefined)[] = [];
  for (let j = 0; j < layout.columns; j++) {
    const size = layout.sizes[j];
    const off = layout.offsets[j];
    const fine = layout.fineOf[j];
    const coarse = Float64Array.from(estimate.subarray(off, off + size));
    const coarseVariance = variances[j];
    let binVariance = coarseVariance;
    const widths = new Float64Array(size - 1).fill(1);
    if (fine) {
      for (let b = 0; b < size - 1; b++) {
        const first = b * fine.perBin;
        const m = Math.min(fine.size, first + fine.perBin) - first;
        widths[b] = m;
        let fineSum = 0;
        for (let k = 0; k < m; k++) fineSum += estimate[fine.offset + first + k];
        coarse[b] = combineBlock(coarse[b], fineSum, m, coarseVariance, fineVariance);
      }
      // The combination's variance (of a full bin; the last, narrower one is a little better measured).
      binVariance = 1 / (1 / coarseVariance + 1 / (fine.perBin * fineVariance));
    } else if (schema.columns[j].type === "numeric") {
      const bins = numericBins(schema.columns[j] as NumericColumn);
      if (bins.grid) for (let b = 0; b < size - 1; b++) widths[b] = Math.min(bins.grid.count, (b + 1) * bins.perBin) - b * bins.perBin;
    }
    if (schema.columns[j].type === "numeric") coarse.set(smoothCounts(coarse.subarray(0, size - 1), widths, binVariance), 0);
    const { p, v } = readColumn(coarse, rows, fine, estimate, fineVariance);
    probabilities.push(p);
    values.push(v);
  }
  return { rows: Math.max(0, rows), probabilities, values };
}

export function groupShares(p: ArrayLike<number>, g: Grouping): Float64Array {
  const out = new Float64Array(groupCount(g));
  for (let c = 0; c < g.length; c++) out[g[c]] += p[c];
  return out;
}

export interface Interaction {
  /** The table with its interaction shrunk (see the file comment). */
  shrunk: Float64Array;
  /** ‖I‖² / (df · v): about 1 for pure noise. */
  strength: number;
  keep: number;
}

/** Step 2 for one table of R × C cells, against the group shares r and c of a population of N rows. */
export function shrinkInteraction(y: ArrayLike<number>, r: ArrayLike<number>, c: ArrayLike<number>, N: number, variance: number): Interaction {
  const R = r.length;
  const C = c.length;
  const d = new Float64Array(R * C);
  for (let a = 0; a < R; a++) for (let b = 0; b < C; b++) d[a * C + b] = y[a * C + b] - N * r[a] * c[b];
  const rowMean = new Float64Array(R);
  const colMean = new Float64Array(C);
  let all = 0;
  for (let a = 0; a < R; a++) {
    for (let b = 0; b < C; b++) {
      rowMean[a] += d[a * C + b] / C;
      colMean[b] += d[a * C + b] / R;
      all += d[a * C + b] / (R * C);
    }
  }
  const inter = new Float64Array(R * C);
  let ss = 0;
  for (let a = 0; a < R; a++) {
    for (let b = 0; b < C; b++) {
      const x = d[a * C + b] - rowMean[a] - colMean[b] + all;
      inter[a * C + b] = x;
      ss += x * x;
    }
  }
  const df = (R - 1) * (C - 1);
  const strength = df > 0 && variance > 0 ? ss / (df * variance) : 0;
  const keep = df > 0 && ss > 0 && Number.isFinite(ss) ? Math.max(0, 1 - (df * variance) / ss) : 0;
  const shrunk = Float64Array.from(y, (v, k) => v - (1 - keep) * inter[k]);
  return { shrunk, strength, keep };
}

/** A contrast's departure from its value under independence, N·E[sign_a]·E[sign_b], shrunk by max(0, 1 − v/D²). */
export function shrinkContrast(y: number, pa: ArrayLike<number>, pb: ArrayLike<number>, signs: [readonly number[], readonly number[]], N: number, variance: number): Interaction {
  let ma = 0;
  let mb = 0;
  for (let c = 0; c < pa.length; c++) ma += pa[c] * signs[0][c];
  for (let c = 0; c < pb.length; c++) mb += pb[c] * signs[1][c];
  const expected = N * ma * mb;
  const d = y - expected;
  const ss = d * d;
  const keep = ss > 0 && variance > 0 ? Math.max(0, 1 - variance / ss) : 0;
  return { shrunk: Float64Array.of(expected + keep * d), strength: variance > 0 ? ss / variance : 0, keep };
}

/** The interaction of every table, against the collected 1-way shares. */
export function interactions(c: Collected): Interaction[] {
  return c.tables.map((t) =>
    t.signs
      ? shrinkContrast(t.y[0], c.p[t.a], c.p[t.b], t.signs, c.rows, t.variance)
      : shrinkInteraction(t.y, groupShares(c.p[t.a], t.groups[0]), groupShares(c.p[t.b], t.groups[1]), c.rows, t.variance),
  );
}

/** The common refinement of groupings of one column (every boundary of any of them); one group when there are none. */
export function refinement(size: number, groupings: readonly Grouping[]): Grouping {
  const out: Grouping = new Array(size).fill(0);
  let g = 0;
  for (let c = 1; c < size; c++) {
    if (groupings.some((x) => x[c] !== x[c - 1])) g++;
    out[c] = g;
  }
  return out;
}

/** Map from the groups of `fine` to those of `coarse`, or undefined when `coarse` does not merge whole groups of `fine`. */
export function coarsen(fine: Grouping, coarse: Grouping): Int32Array | undefined {
  const out = new Int32Array(groupCount(fine)).fill(-1);
  for (let c = 0; c < fine.length; c++) {
    const f = fine[c];
    if (out[f] < 0) out[f] = coarse[c];
    else if (out[f] !== coarse[c]) return undefined;
  }
  return out;
}

/** A table the model must hold in one clique: a pair's or a triple's. */
export type ModelTable = PairMeasurement | TripleMeasurement;

/** A table's columns, ascending. */
export function tableVars(t: ModelTable): number[] {
  return "vars" in t ? t.vars : [t.a, t.b];
}

const tableKey = (t: ModelTable) => tableVars(t).join(",");

/** The model's columns' domains: each column's refinement of the groupings of the model's tables on it. */
function modelDomain(sizes: number[], tables: readonly ModelTable[]): Grouping[] {
  return sizes.map((size, j) => refinement(size, tables.flatMap((t) => {
    const at = tableVars(t).indexOf(j);
    return at >= 0 ? [t.groups[at]] : [];
  })));
}

/** Domain sizes of a model's columns when its tables use these groupings (for bounding the junction tree). */
function domainOf(sizes: number[], tables: readonly ModelTable[]): number[] {
  return modelDomain(sizes, tables).map(groupCount);
}

/**
 * Adds tables' column sets (pairs or triples) in order while the junction tree (over the columns' refined
 * groups) stays within `limit` cells; returns the tables kept (every table of a kept set) and the tree.
 * At most 4 × columns sets are tried beyond the base ones (each try triangulates the graph afresh).
 */
export function growModel<T extends ModelTable>(sizes: number[], base: readonly T[], candidates: readonly T[], limit = MODEL_CELLS): { tables: T[]; tree: JunctionTree } {
  const k = sizes.length;
  const bySet = new Map<string, T[]>();
  const order: string[] = [];
  for (const t of [...base, ...candidates]) {
    const id = tableKey(t);
    if (!bySet.has(id)) {
      bySet.set(id, []);
      order.push(id);
    }
    bySet.get(id)!.push(t);
  }
  const baseIds = new Set(base.map(tableKey));
  const kept: T[] = [];
  let tree = junctionTree(domainOf(sizes, []), []);
  let tried = 0;
  for (const id of order) {
    if (!baseIds.has(id) && ++tried > 4 * k) break;
    const tables = [...kept, ...bySet.get(id)!];
    const next = junctionTree(domainOf(sizes, tables), tables.map(tableVars));
    if (next.size > limit) continue;
    kept.push(...bySet.get(id)!);
    tree = next;
  }
  return { tables: kept, tree };
}

/** A fitted model over the columns' refined groups, with what splits a group into cells and grid values. */
export interface JointModel {
  fit: FittedModel;
  /** Per column: cell → model group. */
  refine: Grouping[];
  /** Per column: cell probabilities and, for fine columns, grid-value probabilities (as collected). */
  p: Float64Array[];
  values: (Float64Array | undefined)[];
  /** The model's pairs, and its 3-way tables' columns. */
  pairs: [number, number][];
  triples: [number, number, number][];
}

export interface ModelOptions {
  /** Which pair tables the fit may use (default: all; every 3-way table is used). */
  use?: (t: PairMeasurement) => boolean;
  /** Whether unselected all-pairs tables may join the model when significant (default true). */
  significant?: boolean;
  iterations?: number;
  trace?: number[];
}

let fits = 0;

/** How many times fitCollected has run in this process: lets a test show that reading a stored fit runs none. */
export function fitCollectedRuns(): number {
  return fits;
}

/** Steps 3 and 4. */
export function fitCollected(c: Collected, opts: ModelOptions = {}): JointModel {
  fits++;
  const sizes = c.layout.sizes.slice();
  const k = sizes.length;
  const use = opts.use ?? (() => true);
  const inter = interactions(c);
  const shrunk = new Map<PairMeasurement, Interaction>(c.tables.map((t, i) => [t, inter[i]]));
  const used = c.tables.filter(use);
  const base = used.filter((t) => t.source === "selected");
  const extra = opts.significant === false ? [] : used
    .filter((t) => t.source === "pairs" && shrunk.get(t)!.strength > SIGNIFICANCE)
    .sort((u, v) => shrunk.get(v)!.strength - shrunk.get(u)!.strength);
  // Every measurement of a pair in the model is used, whichever round it came from; 3-way tables come first.
  const grown = growModel<ModelTable>(sizes, [...c.triples, ...base], extra).tables;
  const triples = grown.filter((t): t is TripleMeasurement => "vars" in t);
  const inModel = new Set(grown.filter((t): t is PairMeasurement => !("vars" in t)).map((t) => pairIndex(k, t.a, t.b)));
  const tables = used.filter((t) => inModel.has(pairIndex(k, t.a, t.b)));
  const refine = modelDomain(sizes, [...triples, ...tables]);
  const domain = refine.map(groupCount);
  const pairs = [...inModel].map((id) => {
    const t = tables.find((u) => pairIndex(k, u.a, u.b) === id)!;
    return [t.a, t.b] as [number, number];
  });
  const tree = junctionTree(domain, [...triples.map((t) => t.vars), ...pairs]);
  const measurements: Measurement[] = [];
  c.p.forEach((p, j) => {
    if (domain[j] <= 1) return;
    const members = new Float64Array(domain[j]);
    const y = new Float64Array(domain[j]);
    for (let cell = 0; cell < p.length; cell++) {
      y[refine[j][cell]] += p[cell] * c.rows;
      members[refine[j][cell]] += 1;
    }
    measurements.push({ vars: [j], y, variance: Float64Array.from(members, (m) => m * c.marginalVariance[j]) });
  });
  for (const t of tables) {
    const ga = coarsen(refine[t.a], t.groups[0])!;
    const gb = coarsen(refine[t.b], t.groups[1])!;
    if (t.signs) {
      // The contrast: every model group's mass times its two signs, summed into one value.
      const sa = runSigns(t.signs[0], t.groups[0]);
      const sb = runSigns(t.signs[1], t.groups[1]);
      measurements.push({
        vars: [t.a, t.b], groups: [new Int32Array(ga.length), new Int32Array(gb.length)], groupCounts: [1, 1],
        coef: [Float64Array.from(ga, (g) => sa[g]), Float64Array.from(gb, (g) => sb[g])], y: shrunk.get(t)!.shrunk, variance: t.variance,
      });
      continue;
    }
    measurements.push({ vars: [t.a, t.b], groups: [ga, gb], groupCounts: [groupCount(t.groups[0]), groupCount(t.groups[1])], y: shrunk.get(t)!.shrunk, variance: t.variance });
  }
  for (const t of triples) {
    const shrunk = shrinkTriple(t.y, [0, 1, 2].map((i) => groupShares(c.p[t.vars[i]], t.groups[i])) as [Float64Array, Float64Array, Float64Array], c.rows, t.variance).shrunk;
    measurements.push({
      vars: [...t.vars], groups: t.vars.map((j, i) => coarsen(refine[j], t.groups[i])!), groupCounts: t.groups.map(groupCount), y: shrunk, variance: t.variance,
    });
  }
  const start = c.p.map((p, j) => {
    const s = groupShares(p, refine[j]);
    return Float64Array.from(s, (x) => Math.log(x + 1e-12));
  });
  const fit = fitModel(tree, domain, measurements, c.rows, { start, iterations: opts.iterations, trace: opts.trace });
  return { fit, refine, p: c.p, values: c.values, pairs, triples: triples.map((t) => t.vars) };
}
