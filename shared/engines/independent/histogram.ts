/**
 * Per-column histograms over the schema's cells, and their post-processing into distributions.
 *
 * Coarse level: column j has categoryCount(column) + 1 cells: its categories (categorical values or
 * numeric bins) and a last cell for "missing". The coarse histograms of all columns are laid out one after
 * another at the start of the vector.
 *
 * Fine level: a numeric column whose value grid (integer values, or multiples of its "step") has more than
 * MAX_EXACT_INTEGER_VALUES and at most MAX_FINE_VALUES values, and whose coarse bins hold several grid
 * values each, also gets one cell per grid value (no missing cell). These fine histograms follow the
 * coarse ones, in column order.
 */
import type { Schema, Table } from "../../schema/schema.js";
import { binIndex, categoryCount, MAX_EXACT_INTEGER_VALUES, numericBins, type NumericBins, type NumericGrid } from "../../schema/bins.js";
import { FedsynthError } from "../../errors.js";

/** Grids with at most this many values get a fine (one cell per value) level. */
export const MAX_FINE_VALUES = 2000;

export interface FineLevel {
  /** Schema index of the column. */
  column: number;
  /** Index of the column's first fine cell in the concatenated vector. */
  offset: number;
  /** Number of fine cells: the grid's values. */
  size: number;
  /** Grid values per coarse bin (bin b holds grid values b·perBin .. (b+1)·perBin − 1). */
  perBin: number;
  grid: NumericGrid;
}

export interface HistogramLayout {
  /** Number of schema columns. */
  columns: number;
  /** Coarse cells of each column, including its last "missing" cell. */
  sizes: number[];
  /** Index of each column's first coarse cell in the concatenated vector. */
  offsets: number[];
  /** Number of coarse cells (they come first). */
  coarseTotal: number;
  /** The fine levels, in column order (their cells follow the coarse ones). */
  fine: FineLevel[];
  /** Fine level of each column, or undefined. */
  fineOf: (FineLevel | undefined)[];
  /** Total number of cells, coarse and fine. */
  total: number;
}

/** The column's bins when it gets a fine level (a grid of 33 .. MAX_FINE_VALUES values, bins of several values). */
export function fineBins(bins: NumericBins): boolean {
  const grid = bins.grid;
  return grid !== undefined && grid.count > MAX_EXACT_INTEGER_VALUES && grid.count <= MAX_FINE_VALUES && bins.perBin > 1;
}

export function histogramLayout(schema: Schema): HistogramLayout {
  const sizes: number[] = [];
  const offsets: number[] = [];
  let total = 0;
  for (const column of schema.columns) {
    const size = categoryCount(column) + 1;
    offsets.push(total);
    sizes.push(size);
    total += size;
  }
  const coarseTotal = total;
  const fine: FineLevel[] = [];
  const fineOf: (FineLevel | undefined)[] = schema.columns.map(() => undefined);
  schema.columns.forEach((column, j) => {
    if (column.type !== "numeric") return;
    const bins = numericBins(column);
    if (!fineBins(bins)) return;
    const level: FineLevel = { column: j, offset: total, size: bins.grid!.count, perBin: bins.perBin, grid: bins.grid! };
    fine.push(level);
    fineOf[j] = level;
    total += level.size;
  });
  return { columns: schema.columns.length, sizes, offsets, coarseTotal, fine, fineOf, total };
}

/**
 * Raw (un-noised) counts of a table: for every row, one coarse cell per column is incremented by 1, and
 * one fine cell per fine column whose value is present — so adding or removing a row changes the coarse
 * part by exactly sqrt(columns) and the fine part by at most sqrt(fine columns) in L2 norm.
 */
export function countTable(schema: Schema, layout: HistogramLayout, table: Table): Float64Array {
  const counts = new Float64Array(layout.total);
  const rows = table.rowCount;
  if (!Number.isSafeInteger(rows) || rows < 0) {
    throw new FedsynthError("invalid-data", `The table's row count is invalid (${String(rows)})`);
  }
  if (!Array.isArray(table.columns) || table.columns.length !== layout.columns) {
    throw new FedsynthError(
      "invalid-data",
      `The table has ${Array.isArray(table.columns) ? table.columns.length : "no"} columns, the schema ${layout.columns}`,
      { hint: "Read the site's data through the study schema." },
    );
  }
  for (let j = 0; j < layout.columns; j++) {
    const column = schema.columns[j];
    const cells = table.columns[j];
    if (!Array.isArray(cells) || cells.length !== rows) {
      throw new FedsynthError("invalid-data", `Column '${column.name}' has ${cells?.length} cells, expected ${rows}`, {
        location: { column: column.name },
      });
    }
    const offset = layout.offsets[j];
    const missing = offset + layout.sizes[j] - 1;
    if (column.type === "categorical") {
      const count = column.values.length;
      for (let i = 0; i < rows; i++) {
        const v = cells[i];
        if (v === null) counts[missing] += 1;
        else if (Number.isInteger(v) && v >= 0 && v < count) counts[offset + v] += 1;
        else {
          throw new FedsynthError("invalid-data", `Column '${column.name}' holds an invalid category index ${String(v)} in row ${i + 1}`, {
            location: { column: column.name },
          });
        }
      }
    } else {
      const bins = numericBins(column);
      const fine = layout.fineOf[j];
      for (let i = 0; i < rows; i++) {
        const v = cells[i];
        if (v === null) counts[missing] += 1;
        else if (typeof v === "number" && Number.isFinite(v)) {
          counts[offset + binIndex(bins, v)] += 1;
          if (fine) counts[fine.offset + fine.grid.index(v)] += 1;
        } else {
          throw new FedsynthError("invalid-data", `Column '${column.name}' holds a non-numeric value in row ${i + 1}`, {
            location: { column: column.name },
          });
        }
      }
    }
  }
  return counts;
}

/**
 * The pooled row count from noisy per-column totals: the inverse-variance-weighted mean of the totals.
 * Column j's total sums sizes[j] cells that carry independent noise of equal variance, so its variance is
 * proportional to sizes[j] and its weight to 1/sizes[j].
 */
export function estimateRowCount(layout: HistogramLayout, estimate: Float64Array): number {
  let weighted = 0;
  let weights = 0;
  for (let j = 0; j < layout.columns; j++) {
    const off = layout.offsets[j];
    let total = 0;
    for (let c = 0; c < layout.sizes[j]; c++) total += estimate[off + c];
    const w = 1 / layout.sizes[j];
    weighted += w * total;
    weights += w;
  }
  return weights > 0 ? weighted / weights : 0;
}

/**
 * "Norm-Sub" (Wang et al., "Locally Differentially Private Frequency Estimation with Consistency",
 * NDSS 2020): the non-negative vector summing to `total` closest to `x` in L2 — subtract one constant c
 * from every cell and clip at zero, with c chosen so that Σ max(0, x_i − c) = total. When even the
 * positive part sums to less than `total`, the positive part is scaled up instead. Returns all zeros when
 * `total` ≤ 0 or no cell is positive.
 */
export function normSub(x: ArrayLike<number>, total: number): Float64Array {
  const n = x.length;
  const out = new Float64Array(n);
  if (!(total > 0) || !Number.isFinite(total)) return out;
  let positive = 0;
  for (let i = 0; i < n; i++) if (x[i] > 0) positive += x[i];
  if (positive <= 0) return out;
  if (positive <= total) {
    const scale = total / positive;
    for (let i = 0; i < n; i++) out[i] = x[i] > 0 ? x[i] * scale : 0;
    return out;
  }
  // Σ max(0, x_i − c) is continuous and decreasing in c, ≥ total at c = 0: find c ≥ 0 exactly from the
  // sorted values (the Euclidean projection onto the scaled simplex).
  const sorted = Array.from(x).sort((a, b) => b - a);
  let prefix = 0;
  let c = 0;
  for (let m = 1; m <= n; m++) {
    prefix += sorted[m - 1];
    const cm = (prefix - total) / m;
    if (m === n || sorted[m] <= cm) {
      c = cm;
      break;
    }
  }
  c = Math.max(0, c);
  for (let i = 0; i < n; i++) out[i] = Math.max(0, x[i] - c);
  return out;
}

/** Noise of the round-averaged estimate (public: from the config's σ and the rounds' contributor counts). */
export interface EstimateNoise {
  /** Variance of a coarse cell. */
  coarseVariance: number;
  /** Variance of a fine cell. */
  fineVariance: number;
}

export interface ColumnDistributions {
  /** Post-processed estimate of the pooled row count. */
  rows: number;
  /** Each column's coarse cell probabilities (last cell = missing); each sums to 1. */
  probabilities: Float64Array[];
  /**
   * For each column with a fine level: the probability of each grid value, then of "missing" (length
   * grid values + 1, sums to 1; the grid values of coarse bin b sum to probabilities[j][b]). Undefined for
   * other columns.
   */
  values: (Float64Array | undefined)[];
}

/** Inverse-variance weighted mean of a coarse bin's count and the sum of its m fine counts. */
function combineBlock(coarse: number, fineSum: number, m: number, noise: EstimateNoise | undefined): number {
  if (!noise) return coarse;
  const wc = 1 / noise.coarseVariance;
  const wf = 1 / (m * noise.fineVariance);
  if (!Number.isFinite(wc) || !Number.isFinite(wf) || !(wc > 0) || !(wf > 0)) return coarse;
  return (wc * coarse + wf * fineSum) / (wc + wf);
}

/**
 * Splits a block's count over its grid values from their noisy fine counts f (m values): James–Stein
 * shrinkage of the deviations d_i = f_i − mean(f) toward a uniform split, by the factor
 * s = max(0, 1 − (m−1)·fineVariance / Σ d_i²); then negatives are clipped and the result rescaled to
 * `count`. Writes the (non-negative) shares into out[0 .. m−1], summing to 1 (uniform when nothing is left).
 */
export function shrinkBlock(fine: ArrayLike<number>, count: number, fineVariance: number, out: Float64Array | number[]): void {
  const m = fine.length;
  if (m === 0) return;
  let mean = 0;
  for (let i = 0; i < m; i++) mean += fine[i];
  mean /= m;
  let ss = 0;
  for (let i = 0; i < m; i++) ss += (fine[i] - mean) ** 2;
  const shrink = ss > 0 && Number.isFinite(ss) ? Math.max(0, 1 - ((m - 1) * Math.max(0, fineVariance)) / ss) : 0;
  const base = Math.max(0, count) / m;
  let sum = 0;
  for (let i = 0; i < m; i++) {
    const x = Math.max(0, base + shrink * (fine[i] - mean));
    out[i] = x;
    sum += x;
  }
  if (sum > 0 && Number.isFinite(sum)) for (let i = 0; i < m; i++) out[i] /= sum;
  else for (let i = 0; i < m; i++) out[i] = 1 / m;
}

/**
 * Post-processing of the averaged noisy histograms into one probability vector per column (pure
 * post-processing: it uses only released values and public metadata, so it costs no privacy).
 *
 * 1. The pooled row count N: the inverse-variance weighted mean of the coarse column totals.
 * 2. Two-level columns: each coarse bin's count becomes the inverse-variance weighted mean of the bin's
 *    coarse count and the sum of its fine counts (when `noise` is given).
 * 3. Each coarse histogram becomes non-negative and sums to N (Norm-Sub); probabilities are it divided by
 *    N. A column without any positive mass is uniform over its non-missing cells.
 * 4. Two-level columns: each bin's probability is split over its grid values by `shrinkBlock`.
 */
export function columnProbabilities(layout: HistogramLayout, estimate: Float64Array, noise?: EstimateNoise): ColumnDistributions {
  const rows = estimateRowCount(layout, estimate);
  const probabilities: Float64Array[] = [];
  const values: (Float64Array | undefined)[] = [];
  for (let j = 0; j < layout.columns; j++) {
    const size = layout.sizes[j];
    const off = layout.offsets[j];
    const fine = layout.fineOf[j];
    const coarse = Float64Array.from(estimate.subarray(off, off + size));
    if (fine) {
      for (let b = 0; b < size - 1; b++) {
        const first = b * fine.perBin;
        const m = Math.min(fine.size, first + fine.perBin) - first;
        let fineSum = 0;
        for (let k = 0; k < m; k++) fineSum += estimate[fine.offset + first + k];
        coarse[b] = combineBlock(coarse[b], fineSum, m, noise);
      }
    }
    const { p, v } = readColumn(coarse, rows, fine, estimate, noise ? noise.fineVariance : 0);
    probabilities.push(p);
    values.push(v);
  }
  return { rows: Math.max(0, rows), probabilities, values };
}

/**
 * Steps 3 and 4 for one column: its (combined) coarse counts made non-negative and summing to `rows`, as
 * probabilities, and for a two-level column each bin's probability split over its grid values.
 */
export function readColumn(
  coarse: Float64Array, rows: number, fine: FineLevel | undefined, estimate: Float64Array, fineVariance: number,
): { p: Float64Array; v: Float64Array | undefined } {
  const size = coarse.length;
  const hist = normSub(coarse, rows);
  let sum = 0;
  for (let c = 0; c < size; c++) sum += hist[c];
  const p = new Float64Array(size);
  if (sum > 0 && Number.isFinite(sum)) {
    for (let c = 0; c < size; c++) p[c] = hist[c] / sum;
  } else if (size > 1) {
    for (let c = 0; c < size - 1; c++) p[c] = 1 / (size - 1);
  } else {
    p[0] = 1; // a column with no categories at all can only be missing
  }
  if (!fine) return { p, v: undefined };
  const v = new Float64Array(fine.size + 1);
  const shares = new Float64Array(fine.perBin);
  for (let b = 0; b < size - 1; b++) {
    const first = b * fine.perBin;
    const m = Math.min(fine.size, first + fine.perBin) - first;
    shrinkBlock(estimate.subarray(fine.offset + first, fine.offset + first + m), hist[b], fineVariance, shares);
    for (let k = 0; k < m; k++) v[first + k] = p[b] * shares[k];
  }
  v[fine.size] = p[size - 1];
  return { p, v };
}

/** Numeric bins of every column (undefined for categoricals), computed once. */
export function schemaBins(schema: Schema): (NumericBins | undefined)[] {
  return schema.columns.map((c) => (c.type === "numeric" ? numericBins(c) : undefined));
}
