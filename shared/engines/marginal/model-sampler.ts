/**
 * Ancestral sampling of a junction-tree model over the columns' model groups. Clique by clique (parents
 * first), each new column is drawn given the groups of its separator and of the clique's new columns
 * before it, from the clique's fitted marginal: one column, one alias-table draw. A column's draw is at its
 * code level when that table is small (FUSED_ENTRIES): its codes are its grid values and missing for
 * columns with a fine level (see FineCodes), else its cells, each weighted by its share of its group
 * (from the collected column distribution) — one draw gives the group, the cell and the value. Otherwise
 * the draw gives the group, and the code within it comes from the group's own alias table, reusing the
 * first draw's uniform. Then every code is written as a value as the independent engine's sampler writes
 * it (a category, a grid value, or uniform within the bin for continuous columns; never outside the
 * bounds). Alias tables are flat typed arrays per draw, so that a row costs a few cache lines per column.
 */
import type { Column, OutputRow } from "../../schema/schema.js";
import { numericBins } from "../../schema/bins.js";
import type { Rng } from "../../random/rng.js";
import { aliasTable, formatDecimal, formatGridValue } from "../independent/sampler.js";
import { projectionMap } from "./pgm.js";
import type { JointModel } from "./estimate.js";
import { tableSize } from "./junction-tree.js";

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
  const format = decimalFormatter(min, max);
  return (c, rng) => {
    if (c === missing) return "";
    let v = lo[c] + rng.next() * (hi[c] - lo[c]);
    if (v >= hi[c] && c < hi.length - 1) v = lo[c];
    if (v > max) v = max;
    return format(v);
  };
}

/** A column's output string per cell when the cell alone determines it (else undefined). */
function cellLabels(column: Column, size: number): string[] | undefined {
  if (column.type === "categorical") return [...column.values, ""];
  const bins = numericBins(column);
  if (!bins.grid || bins.perBin !== 1 || bins.grid.count > 1 << 16) return undefined;
  return Array.from({ length: size }, (_, c) => (c === size - 1 ? "" : formatGridValue(bins.grid!, c)));
}

/** fastDecimal for one column's bounds, with the integer parts' strings computed once (bounds within ±100,000). */
export function decimalFormatter(min: number, max: number): (v: number) => string {
  const span = Math.max(Math.abs(min), Math.abs(max));
  if (!(span <= 100_000)) return (v) => fastDecimal(v, min, max);
  const wholes = Array.from({ length: Math.floor(span) + 2 }, (_, w) => String(w));
  return (v) => {
    const k = Math.round(v * 1e4);
    const r = k / 1e4;
    if (r > max || r < min) return formatDecimal(v, min, max);
    const a = k < 0 ? -k : k;
    const whole = Math.floor(a / 1e4);
    return (k < 0 ? "-" : "") + wholes[whole] + FRACTIONS[a - whole * 1e4];
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

export interface ModelSampler {
  sample(n: number, rng: Rng): Iterable<OutputRow>;
  /** Rows as cells only (no values, no strings): for estimating a model's marginals. */
  cells(n: number, rng: Rng): Int32Array[];
}

/** One column's draw: its code (fused) or its group, given the groups of the columns drawn before it in its clique. */
interface ColumnStep {
  column: number;
  /** Conditioning columns and their strides in the configuration index. */
  given: Int32Array;
  stride: Int32Array;
  /** One alias table per configuration, over the column's codes (fused) or over its groups, flattened: configuration c's is entries c·width … (c+1)·width − 1. */
  prob: Float64Array;
  alias: Int32Array;
  width: number;
  fused: boolean;
  /** The column's code → group (fused), or its codes' within-group tables and each group's first code (not fused). */
  groupOf: Int32Array;
  withinProb: Float64Array;
  withinAlias: Int32Array;
  first: Int32Array;
  /** Whether the configuration index follows from the previous step's (the clique's earlier new column). */
  chained: boolean;
}

/** Alias tables of equal width, one after another in two flat arrays. */
function flatAlias(rows: Float64Array[]): { prob: Float64Array; alias: Int32Array; width: number } {
  const width = rows[0]?.length ?? 0;
  const prob = new Float64Array(rows.length * width);
  const alias = new Int32Array(rows.length * width);
  rows.forEach((r, c) => {
    const t = aliasTable(r);
    prob.set(t.prob, c * width);
    alias.set(t.alias, c * width);
  });
  return { prob, alias, width };
}

/** Largest fused table (entries over all configurations): larger ones draw a group, then a code within it. */
const FUSED_ENTRIES = 1 << 10;

/** Conditional distributions of a clique's new columns given each separator configuration (empty rows fall back to the clique's own marginal of them). */
function conditionals(marginal: Float64Array, vars: number[], domain: number[], sep: number[], fresh: number[]): Float64Array[] {
  const sMap = projectionMap(vars, domain, sep);
  const nMap = projectionMap(vars, domain, fresh);
  const sSize = tableSize(sep, domain);
  const nSize = tableSize(fresh, domain);
  const rows = Array.from({ length: sSize }, () => new Float64Array(nSize));
  const overall = new Float64Array(nSize);
  for (let c = 0; c < marginal.length; c++) {
    rows[sMap[c]][nMap[c]] += marginal[c];
    overall[nMap[c]] += marginal[c];
  }
  let total = 0;
  for (let i = 0; i < nSize; i++) total += overall[i];
  if (!(total > 0)) overall.fill(1);
  return rows.map((r) => {
    let s = 0;
    for (let i = 0; i < nSize; i++) s += r[i];
    return s > 1e-300 ? r : Float64Array.from(overall);
  });
}

/**
 * A column's codes — its grid values then missing (fine columns), else its cells — with each code's cell,
 * model group, and probability within its group.
 */
interface Codes {
  cellOf: Int32Array;
  groupOf: Int32Array;
  within: Float64Array;
  labels?: string[];
}

function columnCodes(fine: FineCodes | undefined, p: Float64Array, refine: ArrayLike<number>): Codes {
  const size = p.length;
  const cellOf = fine ? fine.cellOf : Int32Array.from({ length: size }, (_, c) => c);
  const mass = Float64Array.from(cellOf, (c, k) => p[c] * (fine ? fine.share[k] : 1));
  const groupOf = Int32Array.from(cellOf, (c) => refine[c]);
  const groups = groupOf.reduce((m, g) => Math.max(m, g), 0) + 1;
  const total = new Float64Array(groups);
  const members = new Float64Array(groups);
  for (let k = 0; k < mass.length; k++) {
    total[groupOf[k]] += mass[k];
    members[groupOf[k]] += 1;
  }
  // A group without mass (possible only through rounding) splits evenly.
  const within = Float64Array.from(mass, (m, k) => (total[groupOf[k]] > 0 ? m / total[groupOf[k]] : 1 / members[groupOf[k]]));
  return { cellOf, groupOf, within, labels: fine?.labels };
}

export function modelSampler(columns: readonly Column[], model: JointModel): ModelSampler {
  const { fit } = model;
  const { domain } = fit;
  const k = domain.length;
  const { cliques, separators } = fit.tree;
  const sizes = model.p.map((p) => p.length);
  const codes = model.p.map((p, j) => columnCodes(columns[j] ? fineCodes(columns[j], sizes[j], model.values[j]) : undefined, p, model.refine[j]));
  const decoders = columns.map((column, j) => cellDecoder(column, sizes[j]));
  // Per column, an alias table over its codes within each of its groups (for columns not drawn fused).
  // Per column, an alias table over each group's codes (consecutive: codes follow the cells), flattened
  // over the column's codes: group g's is entries first[g] … first[g + 1] − 1, its alias indices absolute.
  const withinProb = codes.map((cd) => new Float64Array(cd.within.length));
  const withinAlias = codes.map((cd) => new Int32Array(cd.within.length));
  const first = codes.map((cd, j) => {
    const starts = new Int32Array(domain[j] + 1).fill(cd.within.length);
    for (let code = cd.within.length - 1; code >= 0; code--) starts[cd.groupOf[code]] = code;
    for (let g = domain[j] - 1; g >= 0; g--) starts[g] = Math.min(starts[g], starts[g + 1]);
    for (let g = 0; g < domain[j]; g++) {
      const lo = starts[g];
      const hi = starts[g + 1];
      if (hi <= lo) continue;
      const q = cd.within.slice(lo, hi);
      if (!q.some((x) => x > 0)) q.fill(1);
      const t = aliasTable(q);
      withinProb[j].set(t.prob, lo);
      withinAlias[j].set(Int32Array.from(t.alias, (x) => x + lo), lo);
    }
    return starts;
  });
  // Each clique's new columns one at a time, each given its separator and the new columns before it.
  const steps: ColumnStep[] = cliques.flatMap((vars, i) => {
    const sep = separators[i];
    const fresh = vars.filter((v) => !sep.includes(v));
    return fresh.map((v, a) => {
      // Separator first, then the earlier new columns, the last one fastest: each new column's configuration
      // index is the previous one's times its column's groups plus that column's group.
      const given = [...sep, ...fresh.slice(0, a)];
      const stride = new Int32Array(given.length);
      let s = 1;
      for (let b = given.length - 1; b >= 0; b--) {
        stride[b] = s;
        s *= domain[given[b]];
      }
      const rows = conditionals(fit.marginals[i], vars, domain, given, [v]);
      const cd = codes[v];
      const fused = rows.length * cd.within.length <= FUSED_ENTRIES;
      const flat = flatAlias(fused ? rows.map((r) => Float64Array.from(cd.within, (w, code) => w * r[cd.groupOf[code]])) : rows);
      return { column: v, given: Int32Array.from(given), stride, ...flat, fused, groupOf: cd.groupOf, withinProb: withinProb[v], withinAlias: withinAlias[v], first: first[v], chained: a > 0 };
    });
  });
  // Everything a row's draws read, flattened into typed arrays (one loop, no object per step).
  const S = steps.length;
  const stepColumn = Int32Array.from(steps, (st) => st.column);
  const stepWidth = Int32Array.from(steps, (st) => st.width);
  const stepFused = Uint8Array.from(steps, (st) => (st.fused ? 1 : 0));
  const stepChained = Uint8Array.from(steps, (st) => (st.chained ? 1 : 0));
  const givenStart = new Int32Array(S + 1);
  steps.forEach((st, i) => (givenStart[i + 1] = givenStart[i] + st.given.length));
  const givenColumn = new Int32Array(givenStart[S]);
  const givenStride = new Int32Array(givenStart[S]);
  steps.forEach((st, i) => {
    givenColumn.set(st.given, givenStart[i]);
    givenStride.set(st.stride, givenStart[i]);
  });
  const tableStart = new Int32Array(S + 1);
  steps.forEach((st, i) => (tableStart[i + 1] = tableStart[i] + st.prob.length));
  const prob = new Float64Array(tableStart[S]);
  const alias = new Int32Array(tableStart[S]);
  steps.forEach((st, i) => {
    prob.set(st.prob, tableStart[i]);
    alias.set(st.alias, tableStart[i]);
  });
  // Per column: codes' groups, and the within-group tables and first codes, at offsets.
  const codeStart = new Int32Array(k + 1);
  for (let j = 0; j < k; j++) codeStart[j + 1] = codeStart[j] + codes[j].within.length;
  const groupOfCode = new Int32Array(codeStart[k]);
  const withinP = new Float64Array(codeStart[k]);
  const withinA = new Int32Array(codeStart[k]);
  const firstStart = new Int32Array(k + 1);
  for (let j = 0; j < k; j++) firstStart[j + 1] = firstStart[j] + first[j].length;
  const firstCode = new Int32Array(firstStart[k]);
  for (let j = 0; j < k; j++) {
    groupOfCode.set(codes[j].groupOf, codeStart[j]);
    withinP.set(withinProb[j], codeStart[j]);
    withinA.set(withinAlias[j], codeStart[j]);
    firstCode.set(first[j], firstStart[j]);
  }
  const group = new Int32Array(k);

  // A not-fused column's code within its group reuses the group draw's uniform: given the draw's outcome,
  // where the uniform fell within the outcome's share of its slot is again uniform on [0, 1).
  const fill = (code: Int32Array, rng: Rng) => {
    let si = 0;
    for (let i = 0; i < S; i++) {
      if (stepChained[i] === 1) {
        const prev = stepColumn[i - 1];
        si = si * domain[prev] + group[prev];
      } else {
        si = 0;
        for (let a = givenStart[i], end = givenStart[i + 1]; a < end; a++) si += group[givenColumn[a]] * givenStride[a];
      }
      const n = stepWidth[i];
      const u = rng.next() * n;
      const j = u >= n ? n - 1 : Math.floor(u);
      const at = tableStart[i] + si * n + j;
      const f = u - j;
      const p = prob[at];
      const x = f < p ? j : alias[at];
      const v = stepColumn[i];
      if (stepFused[i] === 1) {
        code[v] = x;
        group[v] = groupOfCode[codeStart[v] + x];
      } else {
        group[v] = x;
        const lo = firstCode[firstStart[v] + x];
        const m = firstCode[firstStart[v] + x + 1] - lo;
        if (m <= 1) code[v] = lo;
        else {
          const w = (f < p ? f / p : (f - p) / (1 - p)) * m;
          const q = w >= m ? m - 1 : Math.floor(w);
          const c = codeStart[v] + lo + q;
          code[v] = w - q < withinP[c] ? lo + q : withinA[c];
        }
      }
    }
  };
  // Strings by code wherever the code alone determines them: fine columns' grid values, categories, and grid
  // columns of one value per bin; the rest (continuous, or several grid values per bin) are drawn by decoders.
  const labels = codes.map((cd, j) => cd.labels ?? (columns[j] ? cellLabels(columns[j], sizes[j]) : undefined));
  const cellOf = codes.map((cd) => cd.cellOf);
  return {
    *sample(n: number, rng: Rng): Iterable<OutputRow> {
      const code = new Int32Array(k);
      for (let r = 0; r < n; r++) {
        fill(code, rng);
        const row = new Array<string>(k);
        for (let j = 0; j < k; j++) {
          const l = labels[j];
          row[j] = l ? l[code[j]] : decoders[j](code[j], rng);
        }
        yield row;
      }
    },
    cells(n: number, rng: Rng): Int32Array[] {
      const out = Array.from({ length: k }, () => new Int32Array(n));
      const code = new Int32Array(k);
      for (let r = 0; r < n; r++) {
        fill(code, rng);
        for (let j = 0; j < k; j++) out[j][r] = cellOf[j][code[j]];
      }
      return out;
    },
  };
}
