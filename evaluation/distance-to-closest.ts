/**
 * Privacy check by distance to closest record (DCR): are synthetic rows closer to the training rows than
 * new real patients (the holdout) are? Copies or near-copies of training rows show up as a small synthetic
 * median distance and a share of exact copies.
 *
 * Distance between two rows = mean over columns of: numeric |a − b| / (max − min); categorical 0 if equal,
 * else 1; missing vs missing 0; missing vs present 1.
 */
import { SeededRng } from "../shared/random/rng.js";
import type { Schema, Table } from "../shared/schema/schema.js";
import { clamp01, safeRatio, type DistanceToClosest } from "./report.js";
import { isPresent } from "./tables.js";

/** At most this many synthetic (and holdout) rows are measured. */
export const DCR_MAX_ROWS = 2000;

/**
 * Cells are encoded so that one branch-free rule gives every per-column distance: min(1, |a − b|).
 * Numeric → (x − min)/(max − min) in [0, 1]; categorical index k → FAR·k (distinct categories are ≥ FAR
 * apart); missing → −FAR (≥ FAR from any present value, 0 from another missing).
 */
const FAR = 2;

/**
 * Rows of `table` (or the selected ones) encoded row-major, one value per column. Columns are stored
 * categoricals first (most categories first), then numerics: the distance does not depend on the order,
 * and columns likely to mismatch early let the nearest-neighbour search abandon far rows sooner.
 */
export function encodeRows(schema: Schema, table: Table, rows?: ArrayLike<number>): Float64Array {
  const cols = schema.columns;
  const m = cols.length;
  const n = rows ? rows.length : table.rowCount;
  const out = new Float64Array(n * m);
  const order = searchOrder(schema);
  for (let p = 0; p < m; p++) {
    const j = order[p];
    const c = cols[j];
    const cells = table.columns[j];
    const span = c.type === "numeric" ? c.max - c.min : 0;
    for (let r = 0; r < n; r++) {
      const cell = cells[rows ? rows[r] : r];
      let v: number;
      if (!isPresent(c, cell)) v = -FAR;
      else if (c.type === "categorical") v = FAR * cell;
      else v = span > 0 ? Math.min(1, Math.max(0, (cell - c.min) / span)) : 0;
      out[r * m + p] = v;
    }
  }
  return out;
}

function searchOrder(schema: Schema): number[] {
  const rank = (j: number): number => {
    const c = schema.columns[j];
    return c.type === "categorical" ? c.values.length : 0;
  };
  return schema.columns.map((_, j) => j).sort((a, b) => rank(b) - rank(a) || a - b);
}

/** Distance between two encoded rows. */
export function rowDistance(a: Float64Array, ai: number, b: Float64Array, bi: number, columns: number): number {
  if (columns === 0) return 0;
  let s = 0;
  for (let j = 0; j < columns; j++) s += Math.min(1, Math.abs(a[ai * columns + j] - b[bi * columns + j]));
  return s / columns;
}

/**
 * For each query row, the distance to its closest reference row (both encoded by encodeRows). Brute force
 * with early exit: a reference row is abandoned as soon as its partial sum reaches the best so far.
 */
export function closestDistances(query: Float64Array, reference: Float64Array, columns: number): Float64Array {
  const nq = columns > 0 ? query.length / columns : 0;
  const nr = columns > 0 ? reference.length / columns : 0;
  const out = new Float64Array(nq);
  if (columns === 0) return out;
  for (let q = 0; q < nq; q++) {
    const qb = q * columns;
    let best = Infinity;
    for (let r = 0; r < nr && best > 0; r++) {
      const rb = r * columns;
      let s = 0;
      for (let j = 0; j < columns && s < best; j++) s += Math.min(1, Math.abs(query[qb + j] - reference[rb + j]));
      if (s < best) best = s;
    }
    out[q] = nr === 0 ? 1 : best / columns;
  }
  return out;
}

/** Up to `max` distinct row indices of 0 .. n−1 drawn without replacement (all of them, in order, if n ≤ max). */
export function sampleRows(n: number, max: number, rng: SeededRng): Int32Array {
  const idx = new Int32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  if (n <= max) return idx;
  for (let i = 0; i < max; i++) {
    const k = i + Math.floor(rng.next() * (n - i));
    const t = idx[i];
    idx[i] = idx[k];
    idx[k] = t;
  }
  return idx.slice(0, max).sort();
}

export function median(values: Float64Array): number {
  const n = values.length;
  if (n === 0) return 0;
  const s = Float64Array.from(values).sort();
  return n % 2 === 1 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** Distances at or below this count as 0 (exact copies), to absorb floating-point noise. */
const EXACT = 1e-12;

export interface DcrInput {
  schema: Schema;
  real: Table;
  synthetic: Table;
  holdout: Table;
  seed?: number;
  maxRows?: number;
}

export function distanceToClosest(input: DcrInput): DistanceToClosest {
  const { schema, real, synthetic, holdout } = input;
  const max = input.maxRows ?? DCR_MAX_ROWS;
  const rng = new SeededRng(input.seed ?? 1);
  const m = schema.columns.length;
  const synRows = sampleRows(synthetic.rowCount, max, rng);
  const holdRows = sampleRows(holdout.rowCount, max, rng);
  const ref = encodeRows(schema, real);
  const dSyn = closestDistances(encodeRows(schema, synthetic, synRows), ref, m);
  const dHold = closestDistances(encodeRows(schema, holdout, holdRows), ref, m);

  const syntheticMedian = median(dSyn);
  const holdoutMedian = median(dHold);
  const share = (d: Float64Array, pred: (x: number) => boolean): number => {
    if (d.length === 0) return 0;
    let k = 0;
    for (let i = 0; i < d.length; i++) if (pred(d[i])) k++;
    return k / d.length;
  };
  const notes: string[] = [];
  if (real.rowCount === 0) notes.push("no real rows: distances are reported as 1");
  if (synthetic.rowCount === 0) notes.push("no synthetic rows to measure");
  if (holdout.rowCount === 0) notes.push("no holdout rows to measure");
  if (synthetic.rowCount > max) notes.push(`${max} of ${synthetic.rowCount} synthetic rows sampled`);
  if (holdout.rowCount > max) notes.push(`${max} of ${holdout.rowCount} holdout rows sampled`);
  if (holdoutMedian <= EXACT && holdout.rowCount > 0) {
    notes.push("the median holdout row exactly matches a training row (coarse schema): the ratio is not informative");
  }
  const result: DistanceToClosest = {
    syntheticMedian: clamp01(syntheticMedian),
    holdoutMedian: clamp01(holdoutMedian),
    ratio: safeRatio(syntheticMedian <= EXACT ? 0 : syntheticMedian, holdoutMedian <= EXACT ? 0 : holdoutMedian),
    shareExactCopies: share(dSyn, (x) => x <= EXACT),
    holdoutShareExactCopies: share(dHold, (x) => x <= EXACT),
    shareCloserThanHoldoutMedian: share(dSyn, (x) => x < holdoutMedian - EXACT),
    sampled: { synthetic: synRows.length, holdout: holdRows.length },
  };
  if (notes.length > 0) result.notes = notes;
  return result;
}
