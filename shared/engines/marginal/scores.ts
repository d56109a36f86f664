/**
 * Round 1's selection scores, and the tree chosen from their pooled noisy sums.
 *
 * A site's score of the pair (i, j) is the L1 distance between its 2-way table T over the two columns'
 * schema groups and the product of its own 1-way margins: S = Σ_ab |T_ab − R_a·C_b / n| (0 when n = 0).
 * It is large when the two columns depend on each other at that site, and it is additive over sites, so
 * the coordinator's sum is a pooled dependence score. The table itself is never released.
 *
 * Sensitivity, exactly. Add a record in cell (a, b) to a table of n rows with margins proportions p = R/n,
 * q = C/n. With D = T − R·Cᵀ/n the change is
 *   ΔD = e_ab − [(R + e_a)(C + e_b)ᵀ/(n+1) − R·Cᵀ/n] = n/(n+1) · (e_a − p)(e_b − q)ᵀ,
 * a rank-one matrix (expand the products: the terms in R·Cᵀ, e_a·Cᵀ, R·e_bᵀ and e_ab collect into it).
 * Its L1 norm is n/(n+1) · ‖e_a − p‖₁ · ‖e_b − q‖₁ = n/(n+1) · 2(1 − p_a) · 2(1 − q_b) < 4, and
 * |ΔS| ≤ ‖ΔD‖₁ by the triangle inequality. Removing a record is the same step read backwards. The bound 4
 * is the supremum (n large, p_a and q_b small), so one record moves each pair's score by less than 4 and
 * the score vector of P pairs by less than 4√P in L2. (scores.test.ts checks it by brute force.)
 */
import type { Grouping } from "./discretise.js";
import { groupCount } from "./discretise.js";

export const SCORE_SENSITIVITY_PER_PAIR = 4;

/** All pairs i < j, in lexicographic order: the order of the score vector. */
export function pairList(columns: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < columns; i++) for (let j = i + 1; j < columns; j++) out.push([i, j]);
  return out;
}

/** The L1 distance of a table (rows × cols, row-major) from the product of its margins. */
export function dependenceScore(table: ArrayLike<number>, rows: number, cols: number): number {
  const r = new Float64Array(rows);
  const c = new Float64Array(cols);
  let n = 0;
  for (let a = 0; a < rows; a++) {
    for (let b = 0; b < cols; b++) {
      const t = table[a * cols + b];
      r[a] += t;
      c[b] += t;
      n += t;
    }
  }
  if (n <= 0) return 0;
  let s = 0;
  for (let a = 0; a < rows; a++) for (let b = 0; b < cols; b++) s += Math.abs(table[a * cols + b] - (r[a] * c[b]) / n);
  return s;
}

/** A site's score vector over `pairList(codes.length)`, from its coarse cell codes and the schema groupings. */
export function siteScores(codes: Int32Array[], groupings: Grouping[]): Float64Array {
  const columns = codes.length;
  const rows = columns > 0 ? codes[0].length : 0;
  const grouped = codes.map((col, j) => Int32Array.from(col, (c) => groupings[j][c]));
  const pairs = pairList(columns);
  const out = new Float64Array(pairs.length);
  pairs.forEach(([i, j], k) => {
    const gi = groupCount(groupings[i]);
    const gj = groupCount(groupings[j]);
    const table = new Float64Array(gi * gj);
    const x = grouped[i];
    const y = grouped[j];
    for (let r = 0; r < rows; r++) table[x[r] * gj + y[r]] += 1;
    out[k] = dependenceScore(table, gi, gj);
  });
  return out;
}

/**
 * A maximum spanning tree over the pooled scores (Prim's algorithm on the complete graph), as edges
 * [parent, child] in the order a breadth-first walk from column 0 meets them: ancestral sampling can then
 * follow the list. Deterministic: ties go to the lower column index.
 */
export function maximumSpanningTree(columns: number, scores: ArrayLike<number>): [number, number][] {
  if (columns <= 1) return [];
  const index = (i: number, j: number) => {
    const [a, b] = i < j ? [i, j] : [j, i];
    return a * columns - (a * (a + 1)) / 2 + (b - a - 1);
  };
  const inTree = new Uint8Array(columns);
  const best = new Float64Array(columns).fill(-Infinity);
  const from = new Int32Array(columns).fill(-1);
  const parent = new Int32Array(columns).fill(-1);
  let current = 0;
  inTree[0] = 1;
  for (let added = 1; added < columns; added++) {
    for (let v = 0; v < columns; v++) {
      if (inTree[v]) continue;
      const s = scores[index(current, v)];
      if (s > best[v]) {
        best[v] = s;
        from[v] = current;
      }
    }
    let next = -1;
    for (let v = 0; v < columns; v++) if (!inTree[v] && (next < 0 || best[v] > best[next])) next = v;
    inTree[next] = 1;
    parent[next] = from[next];
    current = next;
  }
  // Breadth-first order from the root.
  const edges: [number, number][] = [];
  const queue = [0];
  for (let h = 0; h < queue.length; h++) {
    const p = queue[h];
    for (let v = 0; v < columns; v++) {
      if (parent[v] === p) {
        edges.push([p, v]);
        queue.push(v);
      }
    }
  }
  return edges;
}
