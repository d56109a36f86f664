/**
 * Per-column histograms over the schema's cells, and their post-processing into distributions.
 *
 * Column j has categoryCount(column) + 1 cells: its categories (categorical values or numeric bins) and
 * a last cell for "missing". The histograms of all columns are laid out one after another in one vector.
 */
import type { Schema, Table } from "../../schema/schema.js";
import { binIndex, categoryCount, numericBins, type NumericBins } from "../../schema/bins.js";
import { FedsynthError } from "../../errors.js";

export interface HistogramLayout {
  /** Number of schema columns. */
  columns: number;
  /** Cells of each column, including its last "missing" cell. */
  sizes: number[];
  /** Index of each column's first cell in the concatenated vector. */
  offsets: number[];
  /** Total number of cells. */
  total: number;
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
  return { columns: schema.columns.length, sizes, offsets, total };
}

/**
 * Raw (un-noised) counts of a table: for every row, one cell per column is incremented by 1 — so adding or
 * removing a row changes the vector by exactly sqrt(columns) in L2 norm.
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
      for (let i = 0; i < rows; i++) {
        const v = cells[i];
        if (v === null) counts[missing] += 1;
        else if (typeof v === "number" && Number.isFinite(v)) counts[offset + binIndex(bins, v)] += 1;
        else {
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

/**
 * Post-processing of the averaged noisy histograms into one probability vector per column (pure
 * post-processing: it uses only released values and public metadata, so it costs no privacy).
 * Column probabilities sum to 1; a column without any positive mass is uniform over its non-missing cells.
 */
export function columnProbabilities(layout: HistogramLayout, estimate: Float64Array): { rows: number; probabilities: Float64Array[] } {
  const rows = estimateRowCount(layout, estimate);
  const probabilities: Float64Array[] = [];
  for (let j = 0; j < layout.columns; j++) {
    const size = layout.sizes[j];
    const off = layout.offsets[j];
    const hist = normSub(estimate.subarray(off, off + size), rows);
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
    probabilities.push(p);
  }
  return { rows: Math.max(0, rows), probabilities };
}

/** Numeric bins of every column (undefined for categoricals), computed once. */
export function schemaBins(schema: Schema): (NumericBins | undefined)[] {
  return schema.columns.map((c) => (c.type === "numeric" ? numericBins(c) : undefined));
}
