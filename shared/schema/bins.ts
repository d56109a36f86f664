/**
 * Discretization of numeric columns, from the schema alone. Columns with a value grid (integer columns,
 * and columns with a "step") and at most 32 grid values get one bin per value; wider ones get bins made of
 * whole blocks of consecutive grid values; continuous columns get equal-width bins.
 */
import type { Column, NumericColumn } from "./schema.js";

/** Columns whose grid has at most this many values get one bin per value. */
export const MAX_EXACT_INTEGER_VALUES = 32;
export const DEFAULT_NUMERIC_BINS = 16;

/**
 * The values a numeric column can take when it has a grid: `count` values `value(0) < … < value(count−1)`,
 * `origin + k·step`, all within [min, max]. Integer columns have a grid with step 1 (or their "step"),
 * starting at ceil(min); other columns have one when the schema gives a "step", starting at min.
 */
export interface NumericGrid {
  /** Number of grid values (≥ 1). */
  count: number;
  origin: number;
  step: number;
  /** Decimal places that write every grid value exactly (0 for integer columns). */
  decimals: number;
  /** The k-th grid value (k in 0 .. count−1). */
  value(k: number): number;
  /** Index of the grid value nearest to `v`, clamped to 0 .. count−1. */
  index(v: number): number;
}

/** Number of decimal places in the shortest round-trip decimal form of a finite number (e.g. 0.25 → 2, 1e-7 → 7). */
export function decimalPlaces(x: number): number {
  if (!Number.isFinite(x) || Number.isInteger(x)) return 0;
  const s = String(Math.abs(x));
  const e = s.indexOf("e");
  const mantissa = e < 0 ? s : s.slice(0, e);
  const exponent = e < 0 ? 0 : Number(s.slice(e + 1));
  const dot = mantissa.indexOf(".");
  const fraction = dot < 0 ? 0 : mantissa.length - dot - 1;
  return Math.max(0, fraction - exponent);
}

/** Relative slack when counting how many steps fit in [min, max] (absorbs rounding in (max − min) / step). */
const GRID_SLACK = 1e-9;
/** Most decimals used when writing grid values (toFixed allows up to 100; doubles carry ~17 digits). */
const MAX_GRID_DECIMALS = 20;

/** The column's value grid, or undefined for a continuous column without a "step". */
export function numericGrid(column: NumericColumn): NumericGrid | undefined {
  const { min, max } = column;
  if (column.integer) {
    const origin = Math.ceil(min);
    const last = Math.floor(max);
    const step = column.step !== undefined && column.step >= 1 ? Math.round(column.step) : 1;
    const count = last >= origin ? Math.floor((last - origin) / step) + 1 : 1;
    return {
      count,
      origin,
      step,
      decimals: 0,
      value: (k) => origin + k * step,
      index: (v) => clampIndex(Math.round((v - origin) / step), count),
    };
  }
  const step = column.step;
  if (step === undefined || !(step > 0) || !Number.isFinite(step)) return undefined;
  const origin = min;
  const count = max > min ? Math.floor((max - min) / step + GRID_SLACK) + 1 : 1;
  const decimals = Math.min(MAX_GRID_DECIMALS, Math.max(decimalPlaces(step), decimalPlaces(origin)));
  const value = (k: number): number => {
    const v = Number((origin + k * step).toFixed(decimals));
    return v > max ? max : v < min ? min : v === 0 ? 0 : v;
  };
  return { count, origin, step, decimals, value, index: (v) => clampIndex(Math.round((v - origin) / step), count) };
}

function clampIndex(k: number, count: number): number {
  return k <= 0 || Number.isNaN(k) ? 0 : k >= count ? count - 1 : k;
}

/** The grid value nearest to `v` (v itself for a column without a grid). */
export function snapToGrid(column: NumericColumn, v: number): number {
  const grid = numericGrid(column);
  return grid ? grid.value(grid.index(v)) : v;
}

export interface NumericBins {
  column: NumericColumn;
  /** Bin b covers [lo[b], hi[b]): for integer columns, the integers lo[b] .. hi[b]-1. The last bin includes max. */
  lo: number[];
  hi: number[];
  /** The column's value grid, when it has one: bin b then holds grid values b·perBin .. (b+1)·perBin − 1. */
  grid?: NumericGrid;
  /** Grid values per bin (the last bin may hold fewer); 0 for a column without a grid. */
  perBin: number;
}

export function numericBins(column: NumericColumn): NumericBins {
  const { min, max } = column;
  const lo: number[] = [];
  const hi: number[] = [];
  const grid = numericGrid(column);
  if (grid) {
    const values = grid.count;
    const wanted = column.bins ?? (values <= MAX_EXACT_INTEGER_VALUES ? values : DEFAULT_NUMERIC_BINS);
    const perBin = Math.ceil(values / Math.max(1, Math.min(wanted, values)));
    for (let start = 0; start < values; start += perBin) {
      lo.push(grid.value(start));
      const next = start + perBin;
      // Integer columns: the integers lo .. hi−1; others: up to the next block's first value (max for the last).
      if (column.integer) hi.push(next < values ? grid.value(next) : grid.value(values - 1) + 1);
      else hi.push(next < values ? grid.value(next) : max);
    }
    return { column, lo, hi, grid, perBin };
  }
  const count = Math.max(1, column.bins ?? DEFAULT_NUMERIC_BINS);
  const width = (max - min) / count;
  for (let b = 0; b < count; b++) {
    lo.push(min + b * width);
    hi.push(b === count - 1 ? max : min + (b + 1) * width);
  }
  return { column, lo, hi, perBin: 0 };
}

/** Index of the bin holding `value`, which must already lie within [min, max]. */
export function binIndex(bins: NumericBins, value: number): number {
  const { column, lo, grid, perBin } = bins;
  const n = lo.length;
  if (grid) return Math.min(n - 1, Math.floor(grid.index(value) / perBin));
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
