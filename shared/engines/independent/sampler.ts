/**
 * Fast sampling of cells from per-column distributions: Walker/Vose alias tables (O(1) per draw, one
 * uniform for the cell and one more for a value within a numeric bin), and value formatting.
 *
 * Columns with a value grid (integer columns, columns with a "step") only ever produce grid values: drawn
 * from the per-value distribution when the column has a fine level, otherwise uniformly within the bin.
 */
import type { Column } from "../../schema/schema.js";
import { numericBins, type NumericGrid } from "../../schema/bins.js";
import type { Rng } from "../../random/rng.js";

export interface AliasTable {
  /** Acceptance threshold of each slot. */
  prob: Float64Array;
  /** The cell used when slot i is not accepted. */
  alias: Int32Array;
}

/** Vose's alias method. Cells with probability 0 are never drawn (also under rounding). */
export function aliasTable(p: ArrayLike<number>): AliasTable {
  const n = p.length;
  const prob = new Float64Array(n);
  const alias = new Int32Array(n);
  let sum = 0;
  let best = 0;
  for (let i = 0; i < n; i++) {
    if (!(p[i] >= 0) || !Number.isFinite(p[i])) throw new RangeError(`aliasTable: invalid probability ${p[i]}`);
    sum += p[i];
    if (p[i] > p[best]) best = i;
  }
  if (!(sum > 0)) throw new RangeError("aliasTable: probabilities sum to 0");
  const scaled = new Float64Array(n);
  for (let i = 0; i < n; i++) scaled[i] = (p[i] / sum) * n;
  const small: number[] = [];
  const large: number[] = [];
  for (let i = 0; i < n; i++) (scaled[i] < 1 ? small : large).push(i);
  while (small.length > 0 && large.length > 0) {
    const s = small.pop()!;
    const l = large.pop()!;
    prob[s] = scaled[s];
    alias[s] = l;
    scaled[l] = scaled[l] + scaled[s] - 1;
    (scaled[l] < 1 ? small : large).push(l);
  }
  for (const i of large) {
    prob[i] = 1;
    alias[i] = i;
  }
  for (const i of small) {
    // Left over only through rounding: such slots are (numerically) full.
    prob[i] = 1;
    alias[i] = i;
  }
  // Guard: a zero-probability cell must never be returned, whatever the rounding did.
  for (let i = 0; i < n; i++) {
    if (p[i] === 0) {
      prob[i] = 0;
      if (p[alias[i]] === 0) alias[i] = best;
    } else if (p[alias[i]] === 0) {
      prob[i] = 1;
      alias[i] = i;
    }
  }
  return { prob, alias };
}

/** Draws a cell index from an alias table with one uniform. */
export function drawAlias(table: AliasTable, rng: Rng): number {
  const n = table.prob.length;
  const u = rng.next() * n;
  const i = Math.min(n - 1, Math.floor(u));
  return u - i < table.prob[i] ? i : table.alias[i];
}

const DECIMALS = 1e4;

/**
 * A value in [min, max] written with at most 4 decimals (shortest round-trip form, so "2.5" not
 * "2.5000"), never leaving [min, max] through rounding.
 */
export function formatDecimal(v: number, min: number, max: number): string {
  let r = Math.round(v * DECIMALS) / DECIMALS;
  if (r > max) r = Math.floor(max * DECIMALS) / DECIMALS;
  if (r < min) r = Math.ceil(min * DECIMALS) / DECIMALS;
  if (r > max || r < min) r = v; // no 4-decimal value within [min, max]
  if (Object.is(r, -0)) r = 0;
  return String(r);
}

/** A grid value as written: integers without decimals, others with the grid's number of decimals. */
export function formatGridValue(grid: NumericGrid, k: number): string {
  const v = grid.value(k);
  return grid.decimals === 0 ? String(v === 0 ? 0 : v) : v.toFixed(grid.decimals);
}

/** Draws one output cell ("" = missing) given the column's cell probabilities (last cell = missing). */
export type CellSampler = (rng: Rng) => string;

/** Most integer values for which formatted strings are cached. */
const INTEGER_STRING_CACHE = 1 << 16;

/**
 * The sampler of one column. `probabilities` are its coarse cells' (last = missing); `values`, for a
 * column with a fine level, the probability of each grid value then of missing (see columnProbabilities).
 */
export function cellSampler(column: Column, probabilities: Float64Array, values?: Float64Array): CellSampler {
  if (column.type === "numeric" && values) {
    const grid = numericBins(column).grid;
    if (!grid || values.length !== grid.count + 1) throw new RangeError(`cellSampler: column '${column.name}' has no grid of ${values.length - 1} values`);
    const labels = Array.from({ length: grid.count + 1 }, (_, k) => (k === grid.count ? "" : formatGridValue(grid, k)));
    const { prob, alias } = aliasTable(values);
    const n = prob.length;
    return (rng) => {
      const u = rng.next() * n;
      const i = u >= n ? n - 1 : Math.floor(u);
      return labels[u - i < prob[i] ? i : alias[i]];
    };
  }
  const table = aliasTable(probabilities);
  const { prob, alias } = table;
  const n = prob.length;
  const missing = n - 1;
  const pick = (rng: Rng): number => {
    const u = rng.next() * n;
    const i = u >= n ? n - 1 : Math.floor(u);
    return u - i < prob[i] ? i : alias[i];
  };

  if (column.type === "categorical") {
    const labels = [...column.values, ""];
    return (rng) => labels[pick(rng)];
  }

  const bins = numericBins(column);
  const grid = bins.grid;
  if (grid && (!column.integer || grid.step !== 1)) {
    // A grid other than all the integers: a uniform grid value within the bin's block.
    const perBin = bins.perBin;
    const count = grid.count;
    const cache = count <= INTEGER_STRING_CACHE ? Array.from({ length: count }, (_, k) => formatGridValue(grid, k)) : null;
    return (rng) => {
      const b = pick(rng);
      if (b === missing) return "";
      const first = b * perBin;
      const m = Math.min(count, first + perBin) - first;
      let k = Math.floor(rng.next() * m);
      if (k >= m) k = m - 1;
      return cache ? cache[first + k] : formatGridValue(grid, first + k);
    };
  }
  const lo = Float64Array.from(bins.lo);
  const width = Float64Array.from(bins.lo, (l, b) => bins.hi[b] - l);
  if (column.integer) {
    const first = lo[0];
    const last = bins.hi[bins.hi.length - 1] - 1;
    const cache = last - first + 1 <= INTEGER_STRING_CACHE ? Array.from({ length: last - first + 1 }, (_, k) => String(first + k)) : null;
    return (rng) => {
      const b = pick(rng);
      if (b === missing) return "";
      const w = width[b];
      let k = Math.floor(rng.next() * w);
      if (k >= w) k = w - 1;
      const value = lo[b] + k;
      return cache ? cache[value - first] : String(value);
    };
  }
  const { min, max } = column;
  const hi = Float64Array.from(bins.hi);
  return (rng) => {
    const b = pick(rng);
    if (b === missing) return "";
    let v = lo[b] + rng.next() * width[b];
    if (v >= hi[b] && b < hi.length - 1) v = lo[b];
    if (v > max) v = max;
    return formatDecimal(v, min, max);
  };
}
