/**
 * Column shapes: how well each column's marginal distribution, missingness included, is reproduced.
 * Numeric columns: 1 − Kolmogorov–Smirnov statistic; categorical: 1 − total variation distance.
 */
import type { Cell, Schema, Table } from "../shared/schema/schema.js";
import { clamp01, mean, type ColumnShapeScore, type ColumnShapes } from "./report.js";
import { columnCodes } from "./tables.js";

/**
 * Two-sample KS statistic sup_x |F_a(x) − F_b(x)| where "missing" is an atom below every value, so each
 * empirical CDF starts at its missing rate and a difference in missing rates counts. Null/NaN cells are missing.
 * Both samples must be non-empty (returns 1, the worst, if either is empty).
 */
export function ksStatisticWithMissing(a: ArrayLike<Cell>, b: ArrayLike<Cell>): number {
  const na = a.length;
  const nb = b.length;
  if (na === 0 || nb === 0) return 1;
  const xa = presentSorted(a);
  const xb = presentSorted(b);
  // CDFs just after the missing atom.
  let fa = (na - xa.length) / na;
  let fb = (nb - xb.length) / nb;
  let d = Math.abs(fa - fb);
  let i = 0;
  let k = 0;
  while (i < xa.length || k < xb.length) {
    const x = i < xa.length && (k >= xb.length || xa[i] <= xb[k]) ? xa[i] : xb[k];
    while (i < xa.length && xa[i] === x) i++;
    while (k < xb.length && xb[k] === x) k++;
    fa = (na - xa.length + i) / na;
    fb = (nb - xb.length + k) / nb;
    const diff = Math.abs(fa - fb);
    if (diff > d) d = diff;
  }
  return clamp01(d);
}

function presentSorted(cells: ArrayLike<Cell>): Float64Array {
  let m = 0;
  for (let i = 0; i < cells.length; i++) if (isNum(cells[i])) m++;
  const out = new Float64Array(m);
  let p = 0;
  for (let i = 0; i < cells.length; i++) {
    const c = cells[i];
    if (isNum(c)) out[p++] = c;
  }
  return out.sort();
}

function isNum(c: Cell): c is number {
  return typeof c === "number" && !Number.isNaN(c);
}

/** Total variation distance ½ Σ |p − q| between two histograms given as counts (normalized here). */
export function totalVariation(countsA: ArrayLike<number>, countsB: ArrayLike<number>): number {
  const len = Math.max(countsA.length, countsB.length);
  let sa = 0;
  let sb = 0;
  for (let k = 0; k < countsA.length; k++) sa += countsA[k];
  for (let k = 0; k < countsB.length; k++) sb += countsB[k];
  if (sa <= 0 || sb <= 0) return 1;
  let d = 0;
  for (let k = 0; k < len; k++) d += Math.abs((countsA[k] ?? 0) / sa - (countsB[k] ?? 0) / sb);
  return clamp01(d / 2);
}

/** Histogram of codes 0 .. levels−1. */
export function histogram(codes: Int32Array, levels: number): Float64Array {
  const h = new Float64Array(levels);
  for (let i = 0; i < codes.length; i++) h[codes[i]]++;
  return h;
}

/** Per-column shape scores of `other` (synthetic, or holdout for the baseline) against `real`. */
export function columnShapes(schema: Schema, real: Table, other: Table): ColumnShapes {
  const columns: { [name: string]: ColumnShapeScore } = {};
  const scores: number[] = [];
  schema.columns.forEach((column, j) => {
    const metric = column.type === "numeric" ? "KS" : "TVD";
    let entry: ColumnShapeScore;
    if (real.rowCount === 0 || other.rowCount === 0) {
      entry = { metric, score: 0, note: `no rows in the ${real.rowCount === 0 ? "real" : "compared"} table` };
    } else if (column.type === "numeric") {
      entry = { metric, score: clamp01(1 - ksStatisticWithMissing(real.columns[j], other.columns[j])) };
    } else {
      const a = columnCodes(column, real.columns[j]);
      const b = columnCodes(column, other.columns[j]);
      entry = { metric, score: clamp01(1 - totalVariation(histogram(a.codes, a.levels), histogram(b.codes, b.levels))) };
    }
    columns[column.name] = entry;
    scores.push(entry.score);
  });
  return { score: mean(scores, 0), columns };
}
