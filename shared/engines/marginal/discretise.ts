/**
 * The marginal engine's cells, from the public schema only: every column's coarse cells of the independent
 * engine's layout (categories or numeric bins, then one "missing" cell), and coarser GROUPS of those cells
 * for the 2-way tables. Groups keep 2-way tables small (≤ 6 × 9 cells), which is what makes them
 * measurable at epsilon ≈ 1 on a few hundred patients per site; the 1-way marginals keep the full cells.
 * (The groups of a selected round are chosen by select.ts from the pooled 1-way marginals; checkGrouping
 * is what a site checks them with.)
 *
 * A grouping maps each cell of a column to a group: consecutive non-missing cells form groups, and the
 * missing cell is always a group of its own, the last one (missingness is often what two columns share).
 */
import type { Column, Schema, Table } from "../../schema/schema.js";
import { binIndex, numericBins } from "../../schema/bins.js";
import { FedsynthError } from "../../errors.js";
import { histogramLayout, type HistogramLayout } from "../independent/histogram.js";

/** Most groups of non-missing cells of a numeric column in a 2-way table. */
export const NUMERIC_GROUPS = 5;
/** Categorical columns with at most this many values keep one group per value. */
export const CATEGORICAL_GROUPS = 8;

/**
 * Most groups of non-missing cells per column in a 3-way table (at most 4 × 4 × 4 cells with missing): its
 * groups are the all-pairs round's (select-triples.ts) — a contrast's two halves, or the all-pairs tables'
 * groups, at most pairsGroups — so that a triple costs about what one pair table does.
 */
export const TRIPLE_GROUPS = 3;

/** cell → group; group count = max + 1. */
export type Grouping = number[];

export function coarseLayout(schema: Schema): HistogramLayout {
  return histogramLayout(schema);
}

/** The most groups (missing included) any grouping of the column may have: this bounds table sizes publicly. */
export function maxGroups(column: Column, size: number): number {
  const cap = column.type === "numeric" ? NUMERIC_GROUPS : CATEGORICAL_GROUPS;
  return Math.min(size - 1, cap) + 1;
}

export function groupCount(g: Grouping): number {
  return g.length === 0 ? 0 : g[g.length - 1] + 1;
}

/** Splits k non-missing cells into `groups` consecutive runs whose boundaries follow the cumulative `mass`. */
function runs(mass: ArrayLike<number>, k: number, groups: number): Grouping {
  const out: Grouping = [];
  let total = 0;
  for (let c = 0; c < k; c++) total += Math.max(0, mass[c]);
  let cum = 0;
  let g = 0;
  for (let c = 0; c < k; c++) {
    out.push(g);
    cum += Math.max(0, mass[c]);
    const left = k - c - 1;
    // Close the group once its share of the mass is reached, keeping enough cells for the groups still to come.
    const reached = total > 0 ? cum >= ((g + 1) * total) / groups : (c + 1) * groups >= (g + 1) * k;
    if (g < groups - 1 && left >= groups - 1 - g && (reached || left === groups - 1 - g)) g++;
  }
  return out;
}

/** Groups of equal numbers of cells, from the schema alone. */
export function schemaGrouping(column: Column, size: number): Grouping {
  return massGrouping(column, size, new Float64Array(size).fill(1));
}

/**
 * Groups of about equal mass under `p` (the column's pooled noisy 1-way marginal, public after round 1:
 * choosing groups from it is post-processing), at most `most` of them besides missing. Columns with few
 * cells keep one group per cell.
 */
export function massGrouping(column: Column, size: number, p: ArrayLike<number>, most = Infinity): Grouping {
  const k = size - 1;
  const groups = Math.max(1, Math.min(most, maxGroups(column, size) - 1));
  const g = k <= groups ? Array.from({ length: k }, (_, c) => c) : runs(p, k, groups);
  g.push(k === 0 ? 0 : g[k - 1] + 1);
  return g;
}

/**
 * A coarsening of `g` into at most `most` groups besides missing, merging consecutive groups of `g` to
 * about equal mass under `p` (post-processing, like massGrouping): every group of the result is a union of
 * groups of `g`, so that a 3-way table over it refines no column of the model further than its pair tables do.
 */
export function coarserGrouping(g: Grouping, p: ArrayLike<number>, most: number): Grouping {
  const n = groupCount(g) - 1;
  const mass = new Float64Array(Math.max(0, n));
  for (let c = 0; c < g.length - 1; c++) mass[g[c]] += Math.max(0, p[c]);
  const merged = n <= most ? Array.from({ length: n }, (_, x) => x) : runs(mass, n, Math.max(1, most));
  const out = g.slice(0, -1).map((x) => merged[x]);
  out.push(n === 0 ? 0 : merged[n - 1] + 1);
  return out;
}

/**
 * Throws unless `g` is a valid grouping of the column: contiguous, non-empty groups, missing alone and
 * last, and at most `most` groups besides missing (and never more than maxGroups).
 */
export function checkGrouping(g: unknown, column: Column, size: number, most = Infinity): Grouping {
  const bad = (why: string) =>
    new FedsynthError("invalid-argument", `The marginal engine's grouping of column '${column.name}' is invalid: ${why}`, {
      hint: "Use the round config the coordinator's planRound produced for this study.",
    });
  if (!Array.isArray(g) || g.length !== size) throw bad(`expected ${size} cells`);
  for (let c = 0; c < size; c++) {
    const v = g[c];
    if (!Number.isSafeInteger(v)) throw bad(`cell ${c} has no group`);
    const prev = c === 0 ? -1 : (g[c - 1] as number);
    if (v !== prev && v !== prev + 1) throw bad("groups must be consecutive runs starting at 0");
  }
  if (size > 1 && g[size - 1] === g[size - 2]) throw bad("the missing cell must be a group of its own");
  const cap = Math.min(maxGroups(column, size), Math.min(size - 1, most) + 1);
  if (groupCount(g as Grouping) > cap) throw bad(`more than ${cap} groups`);
  return g as Grouping;
}

/**
 * Each column's coarse cell of every row (the missing cell for null). Checks the table against the schema
 * as the independent engine's countTable does.
 */
export function cellCodes(schema: Schema, layout: HistogramLayout, table: Table): Int32Array[] {
  const rows = table.rowCount;
  if (!Number.isSafeInteger(rows) || rows < 0) throw new FedsynthError("invalid-data", `The table's row count is invalid (${String(rows)})`);
  if (!Array.isArray(table.columns) || table.columns.length !== layout.columns) {
    throw new FedsynthError("invalid-data", `The table has ${Array.isArray(table.columns) ? table.columns.length : "no"} columns, the schema ${layout.columns}`, {
      hint: "Read the site's data through the study schema.",
    });
  }
  return schema.columns.map((column, j) => {
    const cells = table.columns[j];
    if (!Array.isArray(cells) || cells.length !== rows) {
      throw new FedsynthError("invalid-data", `Column '${column.name}' has ${cells?.length} cells, expected ${rows}`, { location: { column: column.name } });
    }
    const missing = layout.sizes[j] - 1;
    const out = new Int32Array(rows);
    const bins = column.type === "numeric" ? numericBins(column) : undefined;
    for (let i = 0; i < rows; i++) {
      const v = cells[i];
      if (v === null) out[i] = missing;
      else if (column.type === "categorical" && Number.isInteger(v) && (v as number) >= 0 && (v as number) < column.values.length) out[i] = v as number;
      else if (bins && typeof v === "number" && Number.isFinite(v)) out[i] = binIndex(bins, v);
      else {
        throw new FedsynthError("invalid-data", `Column '${column.name}' holds an invalid value ${String(v)} in row ${i + 1}`, { location: { column: column.name } });
      }
    }
    return out;
  });
}
