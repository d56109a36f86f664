/**
 * Column-pair trends: whether relationships between two columns survive. Two numeric columns compare
 * Pearson correlations; any other pair (or a numeric pair whose correlation is undefined) compares the
 * joint histogram of the discretized columns, with "missing" as a category of its own.
 */
import type { Schema, Table } from "../shared/schema/schema.js";
import { histogram, totalVariation } from "./column-shapes.js";
import { clamp01, mean, type PairTrendScore, type PairTrends } from "./report.js";
import { columnCodes, numericValues, type Codes } from "./tables.js";

/** Minimum rows with both values present for a correlation to be used. */
export const MIN_CORRELATION_ROWS = 3;

/**
 * Pearson correlation over the rows where both values are present (NaN = missing). Undefined (null) when
 * fewer than MIN_CORRELATION_ROWS such rows exist or either column has zero variance on them.
 */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number | null {
  const n = Math.min(x.length, y.length);
  let m = 0;
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < n; i++) {
    const a = x[i];
    const b = y[i];
    if (Number.isNaN(a) || Number.isNaN(b)) continue;
    m++;
    sx += a;
    sy += b;
  }
  if (m < MIN_CORRELATION_ROWS) return null;
  const mx = sx / m;
  const my = sy / m;
  let sxx = 0;
  let syy = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    const a = x[i];
    const b = y[i];
    if (Number.isNaN(a) || Number.isNaN(b)) continue;
    const dx = a - mx;
    const dy = b - my;
    sxx += dx * dx;
    syy += dy * dy;
    sxy += dx * dy;
  }
  // Relative threshold: a column that is constant up to rounding noise has no correlation.
  const eps = 1e-12;
  if (!(sxx > eps * mx * mx * m) || !(syy > eps * my * my * m)) return null;
  const r = sxy / Math.sqrt(sxx * syy);
  return Number.isFinite(r) ? Math.max(-1, Math.min(1, r)) : null;
}

/** 1 − |ρ_a − ρ_b| / 2, in [0, 1]. */
export function correlationSimilarity(rhoA: number, rhoB: number): number {
  return clamp01(1 - Math.abs(rhoA - rhoB) / 2);
}

/** 1 − TVD of the joint distribution of two discretized columns. */
export function contingencySimilarity(a1: Codes, a2: Codes, b1: Codes, b2: Codes): number {
  return clamp01(1 - totalVariation(jointHistogram(a1, a2), jointHistogram(b1, b2)));
}

function jointHistogram(x: Codes, y: Codes): Float64Array {
  const n = Math.min(x.codes.length, y.codes.length);
  const joint = new Int32Array(n);
  for (let i = 0; i < n; i++) joint[i] = x.codes[i] * y.levels + y.codes[i];
  return histogram(joint, x.levels * y.levels);
}

interface Prepared {
  codes: Codes[];
  /** Numeric columns as numbers with NaN for missing; undefined for categoricals. */
  values: (Float64Array | undefined)[];
}

function prepare(schema: Schema, table: Table): Prepared {
  return {
    codes: schema.columns.map((c, j) => columnCodes(c, table.columns[j])),
    values: schema.columns.map((c, j) => (c.type === "numeric" ? numericValues(table.columns[j]) : undefined)),
  };
}

/** Scores for every pair of columns of `other` (synthetic, or holdout for the baseline) against `real`. */
export function pairTrends(schema: Schema, real: Table, other: Table): PairTrends {
  const cols = schema.columns;
  if (cols.length < 2) return { score: 0, pairs: [], note: "fewer than two columns: no pairs to compare" };
  const empty = real.rowCount === 0 ? "real" : other.rowCount === 0 ? "compared" : null;
  const pr = prepare(schema, real);
  const po = prepare(schema, other);
  const pairs: PairTrendScore[] = [];
  for (let j = 0; j < cols.length; j++) {
    for (let k = j + 1; k < cols.length; k++) {
      const names: [string, string] = [cols[j].name, cols[k].name];
      const bothNumeric = cols[j].type === "numeric" && cols[k].type === "numeric";
      if (empty) {
        pairs.push({ columns: names, metric: bothNumeric ? "correlation" : "contingency", score: 0, note: `no rows in the ${empty} table` });
        continue;
      }
      if (bothNumeric) {
        const rr = pearson(pr.values[j]!, pr.values[k]!);
        const ro = pearson(po.values[j]!, po.values[k]!);
        if (rr !== null && ro !== null) {
          pairs.push({ columns: names, metric: "correlation", score: correlationSimilarity(rr, ro) });
          continue;
        }
        const score = contingencySimilarity(pr.codes[j], pr.codes[k], po.codes[j], po.codes[k]);
        const side = rr === null && ro === null ? "either table" : rr === null ? "the real table" : "the compared table";
        pairs.push({
          columns: names,
          metric: "contingency",
          score,
          note: `no correlation in ${side} (fewer than ${MIN_CORRELATION_ROWS} rows with both values, or a constant column): contingency used`,
        });
        continue;
      }
      pairs.push({ columns: names, metric: "contingency", score: contingencySimilarity(pr.codes[j], pr.codes[k], po.codes[j], po.codes[k]) });
    }
  }
  return { score: mean(pairs.map((p) => p.score), 0), pairs };
}
