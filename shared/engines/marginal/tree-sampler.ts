/**
 * Ancestral sampling of a tree model: roots from their own distributions, then each edge's child from
 * its distribution given the parent's group, one alias-table draw per cell; then the cell is written as a
 * value as the independent engine's sampler writes it (a category, or a value of the bin: uniform on the
 * grid values of the block, or uniform within the bin for continuous columns; never outside the bounds).
 * Columns with a fine level are drawn directly at the grid-value level (see FineCodes), so their point
 * masses survive as in the independent engine.
 *
 * The child's cell given the parent's group a: p(c | a) = p(g(c) | a) · p_child(c) / p_child(g(c)), so one
 * draw gives both the child's group (for its own children) and its cell.
 */
import type { Column, OutputRow } from "../../schema/schema.js";
import { numericBins } from "../../schema/bins.js";
import type { Rng } from "../../random/rng.js";
import { aliasTable, formatDecimal, formatGridValue } from "../independent/sampler.js";
import { groupCount } from "./discretise.js";
import type { TreeModel } from "./estimate.js";

/** Writes cell `c` of a column as an output string ("" for the missing cell). */
export type CellDecoder = (c: number, rng: Rng) => string;

export function cellDecoder(column: Column, size: number): CellDecoder {
  const missing = size - 1;
  if (column.type === "categorical") {
    const labels = [...column.values, ""];
    return (c) => labels[c];
  }
  const bins = numericBins(column);
  const grid = bins.grid;
  if (grid) {
    // Grid values of the block (integers, or multiples of the step), as the independent engine draws them.
    const perBin = bins.perBin;
    const count = grid.count;
    const labels = count <= 1 << 16 ? Array.from({ length: count }, (_, k) => formatGridValue(grid, k)) : null;
    return (c, rng) => {
      if (c === missing) return "";
      const first = c * perBin;
      const m = Math.min(count, first + perBin) - first;
      if (m === 1) return labels ? labels[first] : formatGridValue(grid, first);
      let k = Math.floor(rng.next() * m);
      if (k >= m) k = m - 1;
      return labels ? labels[first + k] : formatGridValue(grid, first + k);
    };
  }
  const { min, max } = column;
  const lo = bins.lo;
  const hi = bins.hi;
  return (c, rng) => {
    if (c === missing) return "";
    let v = lo[c] + rng.next() * (hi[c] - lo[c]);
    if (v >= hi[c] && c < hi.length - 1) v = lo[c];
    if (v > max) v = max;
    return fastDecimal(v, min, max);
  };
}

/** ".0001" … ".9999" without trailing zeros ("" for 0): the fraction of a 4-decimal value. */
const FRACTIONS = Array.from({ length: 10_000 }, (_, f) => (f === 0 ? "" : "." + String(f).padStart(4, "0").replace(/0+$/, "")));

/**
 * formatDecimal's string (the shortest form of v rounded to 4 decimals, within [min, max]) built from
 * integers: number-to-string of a fraction is the slowest step of sampling a continuous column. Values
 * where the two could differ (huge magnitudes, or no 4-decimal value within the bounds) go to formatDecimal.
 */
export function fastDecimal(v: number, min: number, max: number): string {
  const k = Math.round(v * 1e4);
  const r = k / 1e4;
  if (!(Math.abs(v) < 1e11) || r > max || r < min) return formatDecimal(v, min, max);
  const a = k < 0 ? -k : k;
  const whole = Math.floor(a / 1e4);
  const fraction = a - whole * 1e4;
  return (k < 0 ? "-" : "") + String(whole) + FRACTIONS[fraction];
}

interface Alias {
  prob: Float64Array;
  alias: Int32Array;
}

function draw(t: Alias, rng: Rng): number {
  const n = t.prob.length;
  const u = rng.next() * n;
  const i = u >= n ? n - 1 : Math.floor(u);
  return u - i < t.prob[i] ? i : t.alias[i];
}

export interface TreeSampler {
  sample(n: number, rng: Rng): Iterable<OutputRow>;
}

/** The child's cell distribution given each of the parent's groups. */
export function conditionals(model: TreeModel, edge: number): Float64Array[] {
  const [a, b] = model.edges[edge];
  const ga = groupCount(model.groups[a]);
  const gb = groupCount(model.groups[b]);
  const joint = model.joints[edge];
  const pb = model.p[b];
  const gOf = model.groups[b];
  const groupMass = new Float64Array(gb);
  for (let c = 0; c < pb.length; c++) groupMass[gOf[c]] += pb[c];
  return Array.from({ length: ga }, (_, x) => {
    let row = 0;
    for (let y = 0; y < gb; y++) row += joint[x * gb + y];
    const out = new Float64Array(pb.length);
    for (let c = 0; c < pb.length; c++) {
      const g = gOf[c];
      // A parent group the model never sees falls back to the child's own distribution.
      const given = row > 0 ? joint[x * gb + g] / row : groupMass[g];
      out[c] = groupMass[g] > 0 ? (given * pb[c]) / groupMass[g] : 0;
    }
    let s = 0;
    for (let c = 0; c < out.length; c++) s += out[c];
    return s > 0 ? out : Float64Array.from(pb);
  });
}

/**
 * A column with a fine level is drawn at the grid-value level in one draw (its bin's probability times the
 * value's share of the bin, from the independent engine's per-value estimate), instead of a bin and then
 * a value: one alias draw and one uniform fewer per cell. Codes: grid values 0 .. count−1, then missing.
 */
interface FineCodes {
  /** The coarse cell of each code. */
  cellOf: Int32Array;
  /** Each code's share of its cell (1 for missing). */
  share: Float64Array;
  labels: string[];
}

function fineCodes(column: Column, size: number, values: Float64Array | undefined): FineCodes | undefined {
  if (column.type !== "numeric" || !values) return undefined;
  const bins = numericBins(column);
  const grid = bins.grid;
  if (!grid || values.length !== grid.count + 1 || grid.count > 1 << 16) return undefined;
  const count = grid.count;
  const cellOf = Int32Array.from({ length: count + 1 }, (_, k) => (k === count ? size - 1 : Math.floor(k / bins.perBin)));
  const share = new Float64Array(count + 1);
  share[count] = 1;
  for (let c = 0; c < size - 1; c++) {
    const first = c * bins.perBin;
    const last = Math.min(count, first + bins.perBin);
    let sum = 0;
    for (let k = first; k < last; k++) sum += values[k];
    for (let k = first; k < last; k++) share[k] = sum > 0 ? values[k] / sum : 1 / (last - first);
  }
  const labels = Array.from({ length: count + 1 }, (_, k) => (k === count ? "" : formatGridValue(grid, k)));
  return { cellOf, share, labels };
}

/** A distribution over a column's cells as one over its codes. */
function overCodes(p: Float64Array, fine: FineCodes | undefined): Float64Array {
  return fine ? Float64Array.from(fine.cellOf, (c, k) => p[c] * fine.share[k]) : p;
}

export function treeSampler(columns: readonly Column[], model: TreeModel, values: readonly (Float64Array | undefined)[] = []): TreeSampler {
  const k = columns.length;
  const fine = columns.map((column, j) => fineCodes(column, model.p[j].length, values[j]));
  const decoders = columns.map((column, j) => cellDecoder(column, model.p[j].length));
  const isChild = new Uint8Array(k);
  for (const [, b] of model.edges) isChild[b] = 1;
  const roots: number[] = [];
  const rootTables: Alias[] = [];
  for (let j = 0; j < k; j++) {
    if (isChild[j]) continue;
    roots.push(j);
    rootTables.push(aliasTable(overCodes(model.p[j], fine[j])));
  }
  const parents = Int32Array.from(model.edges, ([a]) => a);
  const children = Int32Array.from(model.edges, ([, b]) => b);
  // A parent's group from its code (through the code's cell for fine columns).
  const parentGroups = model.edges.map(([a]) => (fine[a] ? Int32Array.from(fine[a]!.cellOf, (c) => model.groups[a][c]) : Int32Array.from(model.groups[a])));
  const childTables: Alias[][] = model.edges.map(([, b], e) => conditionals(model, e).map((q) => aliasTable(overCodes(q, fine[b]))));
  const labels = fine.map((f) => f?.labels);
  return {
    *sample(n: number, rng: Rng): Iterable<OutputRow> {
      const codes = new Int32Array(k);
      for (let r = 0; r < n; r++) {
        for (let i = 0; i < roots.length; i++) codes[roots[i]] = draw(rootTables[i], rng);
        for (let e = 0; e < children.length; e++) codes[children[e]] = draw(childTables[e][parentGroups[e][codes[parents[e]]]], rng);
        const row = new Array<string>(k);
        for (let j = 0; j < k; j++) {
          const l = labels[j];
          row[j] = l ? l[codes[j]] : decoders[j](codes[j], rng);
        }
        yield row;
      }
    },
  };
}
