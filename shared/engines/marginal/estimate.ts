/**
 * From the pooled noisy measurements to a consistent tree model (pure post-processing, so free under DP).
 *
 * 1. The row count N: the inverse-variance mean of the 1-way totals (estimateRowCount).
 * 2. Each column's group counts are the inverse-variance mean of every measurement touching them: the
 *    1-way marginal summed over the group (variance |group|·v₁) and each incident 2-way table summed over
 *    the other column (variance |other groups|·v₂). The 1-way cells are shifted so their group sums match,
 *    then made non-negative summing to N (Norm-Sub): the column's distribution p_j.
 * 3. Each 2-way table's departure from independence (the noisy table minus N·p_i·p_jᵀ over groups) is
 *    shrunk James–Stein style by max(0, 1 − df·v₂/‖departure‖²), df = (groups_i − 1)(groups_j − 1): pure
 *    noise has about df·v₂ of squared departure, so a pair keeps only the dependence that stands out of
 *    its noise (at small cohorts most of a table is noise, and spurious dependence costs more fidelity than
 *    none). Then it is made non-negative (Norm-Sub to N) and projected by IPF onto the group margins of
 *    p_i and p_j, so every marginal the model implies agrees with every other.
 * The joint is the maximum-entropy distribution with those marginals over the tree:
 *   p(x) = Π_edges p(x_i, x_j) / Π_columns p(x_j)^(deg_j − 1),
 * with a column's cells split within a group as in p_j.
 */
import { estimateRowCount, normSub, type HistogramLayout } from "../independent/histogram.js";
import { groupCount, type Grouping } from "./discretise.js";

export interface TreeMeasurements {
  layout: HistogramLayout;
  /** The pooled 1-way cells (layout.coarseTotal values) and the variance of each. */
  marginals: Float64Array;
  marginalVariance: number;
  /** Edges [parent, child] in sampling order, the groups of every column, and the pooled tables (averaged over rounds). */
  edges: [number, number][];
  groups: Grouping[];
  tables: Float64Array;
  tableVariance: number;
}

export interface TreeModel {
  rows: number;
  /** Each column's cell probabilities (last = missing), summing to 1. */
  p: Float64Array[];
  edges: [number, number][];
  groups: Grouping[];
  /** Joint group probabilities of each edge, parent groups × child groups, row-major, summing to 1. */
  joints: Float64Array[];
}

/** The offset of each edge's table in the concatenated vector, and the total length. */
export function tableOffsets(edges: [number, number][], groups: Grouping[]): { offsets: number[]; total: number } {
  const offsets: number[] = [];
  let total = 0;
  for (const [a, b] of edges) {
    offsets.push(total);
    total += groupCount(groups[a]) * groupCount(groups[b]);
  }
  return { offsets, total };
}

/** Iterative proportional fitting of a non-negative table to row sums r and column sums c (Σr = Σc). */
export function ipf(table: Float64Array, r: ArrayLike<number>, c: ArrayLike<number>, iterations = 100): Float64Array {
  const R = r.length;
  const C = c.length;
  let total = 0;
  for (let a = 0; a < R; a++) total += r[a];
  // A faint independent floor lets IPF reach margins that the noisy table left empty.
  const x = Float64Array.from(table, (t, k) => t + (total > 0 ? 1e-6 * (r[Math.floor(k / C)] * c[k % C]) / total : 0));
  for (let it = 0; it < iterations; it++) {
    let change = 0;
    for (let a = 0; a < R; a++) {
      let s = 0;
      for (let b = 0; b < C; b++) s += x[a * C + b];
      const f = s > 0 ? r[a] / s : 0;
      change = Math.max(change, Math.abs(f - 1));
      for (let b = 0; b < C; b++) x[a * C + b] *= f;
    }
    for (let b = 0; b < C; b++) {
      let s = 0;
      for (let a = 0; a < R; a++) s += x[a * C + b];
      const f = s > 0 ? c[b] / s : 0;
      change = Math.max(change, Math.abs(f - 1));
      for (let a = 0; a < R; a++) x[a * C + b] *= f;
    }
    if (change < 1e-10) break;
  }
  return x;
}

/** James–Stein shrinkage of a table (rows × cols) toward N·r·cᵀ (r, c: group probabilities); see step 3. */
export function shrinkToIndependence(table: ArrayLike<number>, r: ArrayLike<number>, c: ArrayLike<number>, N: number, variance: number): Float64Array {
  const R = r.length;
  const C = c.length;
  const expected = new Float64Array(R * C);
  let ss = 0;
  for (let a = 0; a < R; a++) {
    for (let b = 0; b < C; b++) {
      expected[a * C + b] = N * r[a] * c[b];
      ss += (table[a * C + b] - expected[a * C + b]) ** 2;
    }
  }
  const df = Math.max(1, (R - 1) * (C - 1));
  const keep = ss > 0 && Number.isFinite(ss) ? Math.max(0, 1 - (df * variance) / ss) : 0;
  return Float64Array.from(expected, (x, k) => x + keep * (table[k] - x));
}

function groupSums(p: ArrayLike<number>, g: Grouping): Float64Array {
  const out = new Float64Array(groupCount(g));
  for (let c = 0; c < g.length; c++) out[g[c]] += p[c];
  return out;
}

export function fitTree(m: TreeMeasurements): TreeModel {
  const { layout, edges, groups } = m;
  const N = Math.max(0, estimateRowCount(layout, m.marginals));
  const { offsets } = tableOffsets(edges, groups);
  const p: Float64Array[] = [];
  for (let j = 0; j < layout.columns; j++) {
    const off = layout.offsets[j];
    const size = layout.sizes[j];
    const y = Float64Array.from(m.marginals.subarray(off, off + size));
    const g = groups[j];
    if (g && edges.length > 0) {
      const G = groupCount(g);
      const members = new Float64Array(G);
      for (let c = 0; c < size; c++) members[g[c]]++;
      const own = groupSums(y, g);
      const weighted = Float64Array.from(own, (s, k) => s / (members[k] * m.marginalVariance));
      const weights = Float64Array.from(members, (k) => 1 / (k * m.marginalVariance));
      edges.forEach(([a, b], e) => {
        if (a !== j && b !== j) return;
        const ga = groupCount(groups[a]);
        const gb = groupCount(groups[b]);
        const other = a === j ? gb : ga;
        for (let k = 0; k < G; k++) {
          let s = 0;
          for (let o = 0; o < other; o++) s += a === j ? m.tables[offsets[e] + k * gb + o] : m.tables[offsets[e] + o * gb + k];
          weighted[k] += s / (other * m.tableVariance);
          weights[k] += 1 / (other * m.tableVariance);
        }
      });
      for (let c = 0; c < size; c++) y[c] += (weighted[g[c]] / weights[g[c]] - own[g[c]]) / members[g[c]];
    }
    const hist = normSub(y, N);
    let sum = 0;
    for (let c = 0; c < size; c++) sum += hist[c];
    const pj = new Float64Array(size);
    if (sum > 0) for (let c = 0; c < size; c++) pj[c] = hist[c] / sum;
    else if (size > 1) pj.fill(1 / (size - 1), 0, size - 1);
    else pj[0] = 1;
    p.push(pj);
  }
  const joints = edges.map(([a, b], e) => {
    const ga = groupCount(groups[a]);
    const gb = groupCount(groups[b]);
    const raw = normSub(shrinkToIndependence(m.tables.subarray(offsets[e], offsets[e] + ga * gb), groupSums(p[a], groups[a]), groupSums(p[b], groups[b]), N, m.tableVariance), Math.max(N, 1));
    let s = 0;
    for (let k = 0; k < raw.length; k++) s += raw[k];
    if (s > 0) for (let k = 0; k < raw.length; k++) raw[k] /= s;
    return ipf(raw, groupSums(p[a], groups[a]), groupSums(p[b], groups[b]));
  });
  return { rows: N, p, edges, groups, joints };
}
