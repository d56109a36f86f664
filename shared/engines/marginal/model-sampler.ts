/**
 * Ancestral sampling of a junction-tree model over the columns' model groups. Clique by clique (parents
 * first), each new column is drawn given the groups of its separator and of the clique's new columns
 * before it, from the clique's fitted marginal: one column, one alias-table draw. A column's draw is at its
 * code level when that table is small (FUSED_ENTRIES): its codes are its grid values and missing for
 * columns with a fine level (see FineCodes), else its cells, each weighted by its share of its group
 * (from the collected column distribution) — one draw gives the group, the cell and the value. Otherwise
 * the draw gives the group, and the code within it comes from the group's own alias table, reusing the
 * first draw's uniform. Then every code is written as a value as the independent engine's sampler writes
 * it (a category, a grid value, or uniform within the bin for continuous columns, from the draw's uniform
 * again; never outside the bounds). Rows are drawn SAMPLE_CHUNK at a time, step by step over the chunk,
 * and consecutive draws with few outcomes between them share one uniform (see fill). Alias tables are flat
 * typed arrays, so that a draw costs a cache line or two.
 */
import type { Column, OutputRow } from "../../schema/schema.js";
import { numericBins } from "../../schema/bins.js";
import { fillUniforms, type Rng } from "../../random/rng.js";
import { aliasTable, formatDecimal, formatGridValue } from "../independent/sampler.js";
import { projectionMap } from "./pgm.js";
import type { JointModel } from "./estimate.js";
import { tableSize } from "./junction-tree.js";

/**
 * Writes a column's codes as output strings: a category or a grid value by code; or, given one more
 * uniform (the residual of the code's draw, see fill), a grid value uniform within the bin's block, or a
 * value uniform within a continuous column's bin (never outside the bounds): as the independent engine's
 * sampler writes them. Codes are cells for columns without labels (a fine column always has them).
 */
interface ColumnWriter {
  /** Strings by code, when the code alone determines the string (else undefined). */
  labels?: string[];
  /** The string of cell `c` given a uniform `t` in [0, 1] (for columns without labels). */
  write(c: number, t: number): string;
  /** Most strings the uniform chooses between within one cell (1 with labels). */
  outcomes: number;
}

function columnWriter(column: Column, size: number, labels: string[] | undefined): ColumnWriter {
  const none = (): string => "";
  // Every writer has the same shape (labels, write, outcomes), so that reading them stays monomorphic.
  if (labels) return { labels, write: none, outcomes: 1 };
  if (column.type === "categorical") return { labels: [...column.values, ""], write: none, outcomes: 1 };
  const missing = size - 1;
  const bins = numericBins(column);
  const grid = bins.grid;
  if (grid) {
    // Grid values of the block (integers, or multiples of the step), as the independent engine draws them.
    const perBin = bins.perBin;
    const count = grid.count;
    const values = count <= 1 << 16 ? Array.from({ length: count }, (_, k) => formatGridValue(grid, k)) : null;
    if (perBin === 1 && values) return { labels: [...values, ""], write: none, outcomes: 1 };
    return {
      labels: undefined,
      write(c, t) {
        if (c === missing) return "";
        const first = c * perBin;
        const m = Math.min(count, first + perBin) - first;
        let k = m === 1 ? 0 : Math.floor(t * m);
        if (k >= m) k = m - 1;
        return values ? values[first + k] : formatGridValue(grid, first + k);
      },
      outcomes: perBin,
    };
  }
  const { min, max } = column;
  const lo = Float64Array.from(bins.lo);
  const hi = Float64Array.from(bins.hi);
  const last = hi.length - 1;
  const format = decimalFormatter(min, max);
  let widest = 0;
  for (let c = 0; c <= last; c++) widest = Math.max(widest, hi[c] - lo[c]);
  return {
    labels: undefined,
    write(c, t) {
      if (c === missing) return "";
      let v = lo[c] + t * (hi[c] - lo[c]);
      if (v >= hi[c] && c < last) v = lo[c];
      if (v > max) v = max;
      return format(v);
    },
    // 4-decimal values in the widest bin, and one for rounding at either end.
    outcomes: Math.ceil(widest * 1e4) + 2,
  };
}

/**
 * fastDecimal for one column's bounds, with the integer parts' strings computed once (bounds within
 * ±100,000). For bounds within a few hundred, from strings of the integer part and first two decimals
 * ("12.3", "12.34", "-0.05"…; see decimalHeads) and of the last two ("5", "05", "45"): at most one
 * concatenation of two strings from small tables, which stay in cache.
 */
export function decimalFormatter(min: number, max: number): (v: number) => string {
  const span = Math.max(Math.abs(min), Math.abs(max));
  if (!(span <= 100_000)) return (v) => fastDecimal(v, min, max);
  // k / 10⁴ (rounded) is within [min, max] exactly for k in lo .. hi: it grows with k.
  let lo = Math.ceil(min * 1e4);
  while ((lo - 1) / 1e4 >= min) lo--;
  while (lo / 1e4 < min) lo++;
  let hi = Math.floor(max * 1e4);
  while ((hi + 1) / 1e4 <= max) hi++;
  while (hi / 1e4 > max) hi--;
  const count = Math.floor(span) + 2;
  if (count * 100 * (min < 0 ? 2 : 1) <= HEAD_STRINGS) {
    const { head, trimmed, negative } = decimalHeads(count, min < 0);
    return (v) => {
      // + 0 turns the −0 of values just below 0 into 0: the same string, and V8 keeps k an integer (a −0
      // would deoptimize the sampler at the first such value).
      const k = Math.round(v * 1e4) + 0;
      if (!(k >= lo && k <= hi)) return formatDecimal(v, min, max);
      const a = k < 0 ? -k : k;
      // a < 2³¹, and a / 100 is never rounded up to the next integer: truncation is the floor.
      const hundreds = (a / 100) | 0;
      const rest = a - hundreds * 100;
      const i = (k < 0 ? negative : 0) + hundreds;
      return rest === 0 ? trimmed[i] : head[i] + LAST_DIGITS[rest];
    };
  }
  const wholes = Array.from({ length: count }, (_, w) => String(w));
  return (v) => {
    const k = Math.round(v * 1e4) + 0;
    if (!(k >= lo && k <= hi)) return formatDecimal(v, min, max);
    const a = k < 0 ? -k : k;
    const whole = Math.floor(a / 1e4);
    return (k < 0 ? "-" : "") + wholes[whole] + FRACTIONS[a - whole * 1e4];
  };
}

/** Most strings in one decimalHeads table (each some 30 bytes). */
const HEAD_STRINGS = 1 << 14;

/** "05" … "99" without trailing zeros ("5" for 50): the third and fourth decimals after the first two. */
const LAST_DIGITS = Array.from({ length: 100 }, (_, d) => String(d).padStart(2, "0").replace(/0+$/, ""));

const headTables = new Map<number, { head: string[]; trimmed: string[]; negative: number }>();

/**
 * Strings of w + h/100 for w < count and h < 100, at w·100 + h (and of their negatives from `negative`
 * on): `head` with both decimals ("3.05", "3.50"), `trimmed` without trailing zeros ("3.05", "3.5", "3").
 */
function decimalHeads(count: number, negatives: boolean): { head: string[]; trimmed: string[]; negative: number } {
  const key = 2 * count + (negatives ? 1 : 0);
  let t = headTables.get(key);
  if (!t) {
    const head: string[] = [];
    const trimmed: string[] = [];
    for (const sign of negatives ? ["", "-"] : [""]) {
      for (let w = 0; w < count; w++) {
        for (let h = 0; h < 100; h++) {
          head.push(sign + w + "." + String(h).padStart(2, "0"));
          trimmed.push(sign + w + FRACTIONS[h * 100]);
        }
      }
    }
    t = { head, trimmed, negative: count * 100 };
    headTables.set(key, t);
  }
  return t;
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
  // Everything a row's draws read, flattened into typed arrays (one loop, no object per step): each step's
  // fields in META (at i·META_STRIDE), its conditioning columns and strides, and the alias tables (each
  // slot's threshold and alias side by side: see aliasPairs).
  const S = steps.length;
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
  const table = aliasPairs(tableStart[S]);
  steps.forEach((st, i) => table.set(tableStart[i], st.prob, st.alias));
  // Per column: codes' groups, and the within-group tables (paired too) and first codes, at offsets.
  const codeStart = new Int32Array(k + 1);
  for (let j = 0; j < k; j++) codeStart[j + 1] = codeStart[j] + codes[j].within.length;
  const groupOfCode = new Int32Array(codeStart[k]);
  const within = aliasPairs(codeStart[k]);
  const firstStart = new Int32Array(k + 1);
  for (let j = 0; j < k; j++) firstStart[j + 1] = firstStart[j] + first[j].length;
  const firstCode = new Int32Array(firstStart[k]);
  for (let j = 0; j < k; j++) {
    groupOfCode.set(codes[j].groupOf, codeStart[j]);
    within.set(codeStart[j], withinProb[j], withinAlias[j]);
    firstCode.set(first[j], firstStart[j]);
  }
  // Strings by code wherever the code alone determines them (fine columns' grid values, categories, grid
  // columns of one value per bin); the other columns' strings need a uniform beyond the code's (below).
  const writers = columns.map((column, j) => columnWriter(column, sizes[j], codes[j].labels));
  const meta = new Int32Array(S * META_STRIDE);
  steps.forEach((st, i) => {
    const v = st.column;
    const needsRest = writers[v] !== undefined && writers[v].labels === undefined;
    meta.set([v, st.width, (st.fused ? FUSED : 0) | (st.chained ? CHAINED : 0) | (needsRest ? REST : 0), givenStart[i], givenStart[i + 1],
      tableStart[i], codeStart[v], firstStart[v], st.chained ? steps[i - 1].column : 0, st.chained ? domain[steps[i - 1].column] : 0], i * META_STRIDE);
  });
  // Which steps draw a fresh uniform, and which take the previous step's residual (sample only; see fill).
  let leaves = Infinity;
  steps.forEach((st, i) => {
    const v = st.column;
    const writer = writers[v];
    let size = 2 * st.width;
    if (!st.fused) for (let g = 0; g + 1 < first[v].length; g++) size = Math.max(size, 4 * st.width * (first[v][g + 1] - first[v][g]));
    if (writer !== undefined && writer.labels === undefined) size *= writer.outcomes;
    const ends = meta[i * META_STRIDE + 2] & REST;
    if (leaves * size <= SHARED_LEAVES) {
      meta[i * META_STRIDE + 2] |= SHARED;
      meta[(i - 1) * META_STRIDE + 2] |= KEEP;
      leaves *= size;
    } else leaves = size;
    if (ends) leaves = Infinity;
  });
  // Each step's fresh uniform within its row's, when sampling rows (−1 for a shared one).
  let freshShared = 0;
  for (let i = 0; i < S; i++) meta[i * META_STRIDE + 10] = (meta[i * META_STRIDE + 2] & SHARED) === 0 ? freshShared++ : -1;
  // Every number a chunk's draws read and write is in these buffers, which the draws capture rather than
  // take as arguments: V8 then addresses them as constants, where it checks a typed array argument at each
  // access. Only while the process has made one sampler, though (V8 shares one compiled draw among all
  // closures of its literal): after a second, sampling runs at about two thirds of the speed, measured
  // paired on one model (0.56–0.79M against 0.81–1.1M rows/s), as does a version whose draws take the
  // buffers from a state object instead (measured the same, and slower with one sampler). A chunk's codes are all written as strings (or cells) before any row is handed out, so that
  // every sample and cells call can use the same buffers.
  const CH = SAMPLE_CHUNK;
  /** The chunk's codes (column v's of row r at v·CH + r), their model groups, and each row's configuration index. */
  const code = new Int32Array(k * CH);
  const group = new Int32Array(k * CH);
  const config = new Int32Array(CH);
  /**
   * Doubles: the rows' uniforms (row r's f-th fresh one at r·F + f: see fill), each column's residuals for
   * its strings (column v's at RESIDUALS + v·CH + r), and the residuals the next draw takes (CARRIED + r).
   */
  const RESIDUALS = CH * S;
  const CARRIED = RESIDUALS + k * CH;
  const real = new Float64Array(CARRIED + CH);

  /**
   * Draws `rows` rows of codes into `code` (column c's of row r at c·SAMPLE_CHUNK + r). Each column's draw
   * takes one uniform u: u·width gives the alias slot and the fraction f within it, and f against the
   * slot's threshold the outcome. Given the slot and which side of the threshold f fell (which fix the
   * outcome), where f fell within that side is again uniform on [0, 1), and independent of the outcome and
   * of everything drawn before: this residual draws a not-fused column's code within its group (the same
   * way), and then, for a column whose string needs one more uniform (REST), the value within the bin
   * (into `real` from RESIDUALS on, laid out as `code`).
   *
   * In `sample` (`share`), a column's draw also takes its uniform from the previous column's residual
   * (SHARED) as long as the draws sharing one uniform have at most SHARED_LEAVES outcomes between them.
   * What a uniform decides (one draw's, or those sharing it) is a sequence of splits of [0, 1) into
   * intervals, one per joint outcome (the draws' slots, sides, and the value's string), each of which
   * holds its length's share of the 2⁵³ equally likely uniforms give or take one (rounding in the splits
   * moves their ends by a few ulps). So the joint outcome is distributed as the model says within about
   * (its outcomes) × 2⁻⁵³ in total variation: at most 2⁻³³ for draws sharing a uniform, and for a single
   * draw of a column with a value drawn within its bin about 2⁻³² (tens of slots, hundreds of codes and
   * thousands of values); far below anything a sample can show. `cells` draws one uniform per column, as
   * this sampler always did (the selection's Monte Carlo sample of a model stays as it was, but for the
   * rare draw that the thresholds' rounding turns: see aliasPairs).
   *
   * The rows' uniforms are drawn first, in the order the rows take them (rng.fill, when it has one, gives
   * the same numbers as next() in a fraction of the time); then the steps go one at a time over all the
   * rows (their draws are independent of each other, so the processor overlaps them), each in one loop
   * (drawStep).
   *
   * Which side of its slot's threshold a draw falls on is as unpredictable as a coin, so the draws do not
   * branch on it: `miss` is 0 or 1, and picks the outcome (j + miss·(alias − j)) and the side's start and
   * length for the residual: (f − miss·p) / (p + miss·(1 − 2p)). Those are the side's f / p or
   * (f − p) / (1 − p) exactly, with the same rounding: p is a multiple of 2⁻³² within [0, 1), so 1 − 2p
   * and p + (1 − 2p) = 1 − p are exact, and so are f − 0 and p + 0.
   */
  const fill = (rows: number, rng: Rng, share: boolean) => {
    const F = share ? freshShared : S;
    fillUniforms(rng, real, 0, rows * F);
    for (let i = 0, m0 = 0; i < S; i++, m0 += META_STRIDE) {
      const flags = meta[m0 + 2];
      configIndices(m0, flags, rows);
      // Where in `real` the draw's uniforms are (row r's at from + r·step), and where its residuals go (row r's at to + r).
      const fromCarried = share && (flags & SHARED) !== 0;
      const from = fromCarried ? CARRIED : share ? meta[m0 + 10] : i;
      const step = fromCarried ? 1 : F;
      const to = (flags & REST) !== 0 ? RESIDUALS + meta[m0] * CH : CARRIED;
      const fused = (flags & FUSED) !== 0;
      // A fused code's residual is needed for the value within the bin, or (sample) by the next draw.
      const keep = !fused || (flags & (share ? KEEP | REST : REST)) !== 0;
      drawStep(m0, rows, from, step, keep ? to : -1, fused);
    }
  };

  /** Each row's configuration index for step `m0`'s draw: from the previous step's (chained), or from the given columns' groups. */
  const configIndices = (m0: number, flags: number, rows: number) => {
    const SI = config;
    const G = group;
    if ((flags & CHAINED) !== 0) {
      const times = meta[m0 + 9];
      const prev = meta[m0 + 8] * CH;
      for (let r = 0; r < rows; r++) SI[r] = SI[r] * times + G[prev + r];
    } else {
      // Two given columns per pass over the rows (the first pass sets the index, the others add to it):
      // a pass's loads and stores of the index cost as much as its two columns' terms.
      const end = meta[m0 + 4];
      let a = meta[m0 + 3];
      if (a === end) SI.fill(0, 0, rows);
      for (let set = true; a < end; a += 2, set = false) {
        const g1 = givenColumn[a] * CH;
        const s1 = givenStride[a];
        // A lone last column adds 0 times its own groups.
        const g2 = a + 1 < end ? givenColumn[a + 1] * CH : g1;
        const s2 = a + 1 < end ? givenStride[a + 1] : 0;
        if (set) for (let r = 0; r < rows; r++) SI[r] = G[g1 + r] * s1 + G[g2 + r] * s2;
        else for (let r = 0; r < rows; r++) SI[r] += G[g1 + r] * s1 + G[g2 + r] * s2;
      }
    }
  };

  /**
   * Step `m0`'s draw for each row, from the row's uniform at real[from + r·step]: a fused step's code (and
   * its group), a not-fused step's group, with the residual into real[to + r] (unless `to` is −1); a
   * not-fused step then draws the code within the group from that residual (drawWithinGroups). All the
   * groups first, then all the codes, so that each pass's chain of a division and a table read per row is
   * short and the processor runs many rows' at once.
   */
  const drawStep = (m0: number, rows: number, from: number, step: number, to: number, fused: boolean) => {
    // Arguments as int32 once, rather than checked at every use in the loop.
    const first = from | 0;
    const stride = step | 0;
    const keep = to >= 0;
    const target = to | 0;
    const P = table.prob;
    const A = table.alias;
    const SI = config;
    const G = group;
    const gOf = groupOfCode;
    const n = meta[m0 + 1];
    const start = meta[m0 + 5];
    const cs = meta[m0 + 6];
    const out = meta[m0] * CH;
    for (let r = 0, at = first; r < rows; r++, at += stride) {
      const u = real[at] * n;
      // u is in [0, n]: truncation is its floor.
      let j = u | 0;
      if (j >= n) j = n - 1;
      const e = start + SI[r] * n + j;
      const f = u - j;
      const p = P[2 * e] * TWO_TO_MINUS_32;
      // 1 past the threshold (the alias), 0 before it (the slot's own outcome): see fill.
      const miss = +(f >= p);
      const x = j + miss * (A[2 * e + 1] - j);
      if (fused) {
        code[out + r] = x;
        G[out + r] = gOf[cs + x];
      } else G[out + r] = x;
      if (keep) {
        let t = (f - miss * p) / (p + miss * (1 - 2 * p));
        // Rounding can bring a residual to 1 (and, from there, to 0 / 0 in the next split): kept below 1
        // (a group's residual as it is: the code's draw takes it).
        if (fused && !(t < 1)) t = BELOW_ONE;
        real[target + r] = t;
      }
    }
    if (!fused) drawWithinGroups(m0, rows, target);
  };

  /**
   * The code within each row's group (step `m0`'s column, its group drawn) from the group draw's residual
   * at real[to + r], and this draw's residual in its place.
   */
  const drawWithinGroups = (m0: number, rows: number, to: number) => {
    const target = to | 0;
    const WP = within.prob;
    const WA = within.alias;
    const G = group;
    const fc = firstCode;
    const cs = meta[m0 + 6];
    const fs0 = meta[m0 + 7];
    const out = meta[m0] * CH;
    for (let r = 0; r < rows; r++) {
      const x = G[out + r];
      const lo = fc[fs0 + x];
      const m = fc[fs0 + x + 1] - lo;
      const residual = real[target + r];
      if (m <= 1) {
        code[out + r] = lo;
        // Rounding can bring a residual to 1 (and, from there, to 0 / 0 in the next split): kept below 1.
        if (!(residual < 1)) real[target + r] = BELOW_ONE;
        continue;
      }
      const w = residual * m;
      let q = w | 0;
      if (q >= m) q = m - 1;
      const c = cs + lo + q;
      const g = w - q;
      // The same split over the group's codes (see fill for the branch-free sides).
      const pw = WP[2 * c] * TWO_TO_MINUS_32;
      const beyond = +(g >= pw);
      code[out + r] = lo + q + beyond * (WA[2 * c + 1] - lo - q);
      let t = (g - beyond * pw) / (pw + beyond * (1 - 2 * pw));
      if (!(t < 1)) t = BELOW_ONE;
      real[target + r] = t;
    }
  };
  const cellOf = codes.map((cd) => cd.cellOf);
  const labels = writers.map((w) => w.labels);
  const blank = new Array<string>(k).fill("");
  return {
    *sample(n: number, rng: Rng): Iterable<OutputRow> {
      for (let done = 0; done < n; done += CH) {
        const rows = Math.min(CH, n - done);
        fill(rows, rng, true);
        // Copies of a row of strings: arrays that hold strings from the start, so that no store changes their kind.
        const out = new Array<string[]>(rows);
        for (let r = 0; r < rows; r++) out[r] = blank.slice();
        // Column by column, so that each loop does one kind of write.
        for (let j = 0, at = 0; j < k; j++, at += CH) {
          const l = labels[j];
          if (l !== undefined) for (let r = 0; r < rows; r++) out[r][j] = l[code[at + r]];
          else {
            const writer = writers[j];
            const cells = cellOf[j];
            for (let r = 0; r < rows; r++) out[r][j] = writer.write(cells[code[at + r]], real[RESIDUALS + at + r]);
          }
        }
        for (let r = 0; r < rows; r++) yield out[r];
      }
    },
    cells(n: number, rng: Rng): Int32Array[] {
      const out = Array.from({ length: k }, () => new Int32Array(n));
      for (let done = 0; done < n; done += CH) {
        const rows = Math.min(CH, n - done);
        fill(rows, rng, false);
        for (let j = 0; j < k; j++) {
          const cells = cellOf[j];
          const column = out[j];
          for (let r = 0; r < rows; r++) column[done + r] = cells[code[j * CH + r]];
        }
      }
      return out;
    },
  };
}

/** Rows drawn at a time (their codes, then their strings). */
const SAMPLE_CHUNK = 256;

/**
 * Fields of a step in the sampler's META: column, width, flags, given start and end, table start, the
 * column's code start and first-code start, (chained) the previous step's column and its groups, and its
 * fresh uniform's index within a row's (when sampling rows; −1 when shared).
 */
const META_STRIDE = 11;
/** Flags: the draw is over the column's codes (else its groups). */
const FUSED = 1;
/** The configuration index follows from the previous step's. */
const CHAINED = 2;
/** The column's strings need a uniform beyond its code's: the draw's residual. */
const REST = 4;
/** The draw takes its uniform from the previous step's residual (when sampling rows). */
const SHARED = 8;
/** The draw's residual goes to the next step. */
const KEEP = 16;
const TWO_TO_MINUS_32 = 2 ** -32;
/** The largest double below 1. */
const BELOW_ONE = 1 - 2 ** -53;
/** Most joint outcomes of the draws that share one uniform (see fill). */
const SHARED_LEAVES = 2 ** 20;

/**
 * Alias tables' entries in one buffer, 8 bytes each: entry e's threshold at prob[2e], as a multiple of
 * 2⁻³² (a uint32, rounded to nearest, 2³² − 1 for 1), and its alias at alias[2e + 1]. A draw then reads
 * one cache line, and the tables take half the cache that doubles would. The draws are exact for the
 * rounded thresholds, which move each slot's split by at most 2⁻³² (2⁻³³ but next to 1), and so the
 * outcome's distribution by at most 2⁻³² in total variation. A full slot's alias is itself (aliasTable),
 * so that it loses nothing to the 2⁻³²; a cell of probability 0 has threshold 0 and is nobody's alias:
 * it is never drawn.
 */
function aliasPairs(entries: number): { prob: Uint32Array; alias: Int32Array; set(at: number, prob: Float64Array, alias: Int32Array): void } {
  const buffer = new ArrayBuffer(8 * entries);
  const p = new Uint32Array(buffer);
  const a = new Int32Array(buffer);
  return {
    prob: p,
    alias: a,
    set(at, prob, alias) {
      for (let e = 0; e < prob.length; e++) {
        p[2 * (at + e)] = Math.min(2 ** 32 - 1, Math.round(prob[e] * 2 ** 32));
        a[2 * (at + e) + 1] = alias[e];
      }
    },
  };
}
