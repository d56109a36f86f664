/**
 * Discretization of numeric columns, from the schema alone. Integer columns with a small range get one
 * bin per value; wider ones get equal-width bins (whole numbers of integers for integer columns).
 */
import type { Column, NumericColumn } from "./schema.js";

/** Columns whose integer range has at most this many values get one bin per value. */
export const MAX_EXACT_INTEGER_VALUES = 32;
export const DEFAULT_NUMERIC_BINS = 16;

export interface NumericBins {
  column: NumericColumn;
  /** Bin b covers [lo[b], hi[b]): for integer columns, the integers lo[b] .. hi[b]-1. The last bin includes max. */
  lo: number[];
  hi: number[];
}

export function numericBins(column: NumericColumn): NumericBins {
  const { min, max } = column;
  const lo: number[] = [];
  const hi: number[] = [];
  if (column.integer) {
    const first = Math.ceil(min);
    const last = Math.floor(max);
    const values = Math.max(1, last - first + 1);
    const wanted = column.bins ?? (values <= MAX_EXACT_INTEGER_VALUES ? values : DEFAULT_NUMERIC_BINS);
    const width = Math.ceil(values / Math.max(1, Math.min(wanted, values)));
    for (let start = first; start <= last; start += width) {
      lo.push(start);
      hi.push(Math.min(start + width, last + 1));
    }
    if (lo.length === 0) {
      lo.push(first);
      hi.push(first + 1);
    }
  } else {
    const count = Math.max(1, column.bins ?? DEFAULT_NUMERIC_BINS);
    const width = (max - min) / count;
    for (let b = 0; b < count; b++) {
      lo.push(min + b * width);
      hi.push(b === count - 1 ? max : min + (b + 1) * width);
    }
  }
  return { column, lo, hi };
}

/** Index of the bin holding `value`, which must already lie within [min, max]. */
export function binIndex(bins: NumericBins, value: number): number {
  const { column, lo } = bins;
  const n = lo.length;
  if (column.integer) {
    const width = n > 1 ? lo[1] - lo[0] : 1;
    const b = Math.floor((Math.round(value) - lo[0]) / width);
    return Math.min(n - 1, Math.max(0, b));
  }
  if (column.max === column.min) return 0;
  const b = Math.floor(((value - column.min) / (column.max - column.min)) * n);
  return Math.min(n - 1, Math.max(0, b));
}

/**
 * Number of categories a column takes in histogram-based engines and metrics, excluding "missing":
 * the schema's values for categoricals, the bins for numerics.
 */
export function categoryCount(column: Column): number {
  return column.type === "categorical" ? column.values.length : numericBins(column).lo.length;
}
