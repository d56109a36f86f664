/**
 * Column-by-column sampling from the MADE, in chunks of rows: after column j is drawn for every row of
 * the chunk, column j+1's logits see it. Each column step computes only what column j's logits need:
 *
 * - the first layer's pre-activation z1 = b1 + x·(W1⊙M1) is kept per row (in JavaScript) and updated
 *   incrementally, by adding the masked weight row of each drawn cell, instead of uploading and multiplying
 *   the whole one-hot x again at every column (tfjs-backend-wasm's gather, tile and slice are far slower
 *   than these loops);
 * - each hidden unit once: with the hidden units ordered by the columns they read (worked out from the
 *   masks, so any autoregressive mask works), the units final after column j's predecessors are drawn are
 *   a prefix of each layer; column j computes only the second-layer units that become final there, and
 *   its logits from the final prefix (units in a prefix that column j does not read have masked-out zero
 *   weights, as in the full network);
 * - only column j's output block;
 * - the direct connections likewise accumulated per drawn cell, in the direct outputs' space when they are
 *   projected onto the logits (one scalar per numeric column rather than one per bin), and projected onto
 *   column j's block only when it is drawn;
 * - the softmax left unnormalized: the draw scales its uniform by the row's total instead.
 *
 * Drawing is as in the straightforward sampler (same random draws in the same order; rows match it up to
 * floating-point rounding of the probabilities). Drawn cells become text through per-column decoders that
 * precompute labels, rather than formatting every cell anew.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { OutputRow } from "../../schema/schema.js";
import type { Rng } from "../../random/rng.js";
import { formatDecimal, formatGridValue } from "../independent/sampler.js";
import { decodeCell, type ColumnBlock, type Encoding, type InputEncoding } from "./encoding.js";
import { directWidthOf, inputWidthOf, unflattenParams, type MadeMasks, type MadeShape } from "./made.js";

/** Rows per chunk: every column step is a few TensorFlow.js ops over the whole chunk. */
export const SAMPLE_CHUNK = 8192;

/** Turns a drawn cell into its CSV text, drawing from `rng` exactly as decodeCell does. */
export type CellDecoder = (cell: number, rng: Rng) => string;

/** Grid values whose labels are cached (wider grids are formatted per cell). */
const MAX_CACHED_LABELS = 1 << 16;
/** Block fields the fast decoders know; a block with any other field is decoded by decodeCell. */
const KNOWN_BLOCK_FIELDS = new Set(["column", "offset", "size", "bins", "gridShares"]);

/** A decoder equivalent to `(cell, rng) => decodeCell(block, cell, rng)`, with labels precomputed. */
export function cellDecoder(block: ColumnBlock): CellDecoder {
  if (Object.keys(block).some((k) => !KNOWN_BLOCK_FIELDS.has(k))) return (cell, rng) => decodeCell(block, cell, rng);
  const missing = block.size - 1;
  const column = block.column;
  if (column.type === "categorical") {
    const labels = [...column.values, ""];
    return (cell) => labels[cell];
  }
  const bins = block.bins!;
  const grid = bins.grid;
  if (grid) {
    const cache: (string | undefined)[] | undefined = grid.count <= MAX_CACHED_LABELS ? new Array<string | undefined>(grid.count) : undefined;
    const label = (k: number): string => (cache ? (cache[k] ??= formatGridValue(grid, k)) : formatGridValue(grid, k));
    const perBin = bins.perBin;
    const shares = (block as { gridShares?: Float64Array }).gridShares;
    return (cell, rng) => {
      if (cell === missing) return "";
      const first = cell * perBin;
      const last = Math.min(grid.count, first + perBin) - 1;
      if (shares && last > first) {
        let u = rng.next();
        let k = first;
        while (k < last && u >= shares[k]) u -= shares[k++];
        return label(k);
      }
      return label(first + Math.floor(rng.next() * (last - first + 1)));
    };
  }
  const { lo, hi } = bins;
  const { min, max } = column;
  return (cell, rng) => (cell === missing ? "" : fastDecimal(lo[cell] + rng.next() * (hi[cell] - lo[cell]), min, max));
}

const DECIMALS = 1e4;
let fractions: string[] | undefined;

/**
 * formatDecimal(v, min, max), without String(double): the value rounded to 4 decimals is k/10⁴ for an
 * integer k, and for |k| < 10¹⁵ the shortest decimal that reads back as that double is k/10⁴ written out
 * (at most 15 significant digits), which is what String() gives. Anything else goes to formatDecimal.
 */
export function fastDecimal(v: number, min: number, max: number): string {
  let r = Math.round(v * DECIMALS) / DECIMALS;
  if (r > max) r = Math.floor(max * DECIMALS) / DECIMALS;
  if (r < min) r = Math.ceil(min * DECIMALS) / DECIMALS;
  if (r > max || r < min) return formatDecimal(v, min, max);
  const k = Math.round(r * DECIMALS);
  if (!(Math.abs(k) < 1e15) || k / DECIMALS !== r) return formatDecimal(v, min, max);
  if (k === 0) return "0";
  fractions ??= Array.from({ length: DECIMALS }, (_, f) => (f === 0 ? "" : "." + String(f).padStart(4, "0").replace(/0+$/, "")));
  const a = k < 0 ? -k : k;
  const whole = Math.floor(a / DECIMALS);
  const text = String(whole) + fractions[a - whole * DECIMALS];
  return k < 0 ? "-" + text : text;
}

/**
 * The sampling plan, from the masks alone. A hidden unit is *final* once every column it reads (through
 * the masks) is drawn: ready1[k] = 1 + the last column an h1 unit reads, ready2[l] = the largest ready1 of
 * the h1 units an h2 unit reads. Units are renumbered in order of readiness (a permutation of hidden
 * units does not change the network), so that at column j the final units are a prefix of each layer:
 * p1[j] units of h1 and p2[j] units of h2. Column j's logits read only h2 units with ready2 ≤ j (that is
 * the autoregressive property, checked here), so each h2 unit is computed once, at the first column whose
 * prefix holds it, from the h1 prefix of that column.
 */
interface Plan {
  /** New unit order of each layer: position → original unit. */
  order1: Int32Array;
  order2: Int32Array;
  /** Final units of h1 and h2 at column j (prefix lengths in the new order); p1[j] ≤ p1[j+1]. */
  p1: Int32Array;
  p2: Int32Array;
}

function samplingPlan(shape: MadeShape, masks: MadeMasks, encoding: Encoding, input: { width: number; blocks: { offset: number; size: number }[] }): Plan {
  const { width, hidden } = shape;
  const { blocks } = encoding;
  const columnOf = new Int32Array(input.width);
  input.blocks.forEach((b, j) => columnOf.fill(j, b.offset, b.offset + b.size));
  const ready1 = new Int32Array(hidden);
  for (let i = 0; i < input.width; i++) for (let k = 0; k < hidden; k++) if (masks.m1[i * hidden + k] !== 0) ready1[k] = Math.max(ready1[k], columnOf[i] + 1);
  const ready2 = new Int32Array(hidden);
  for (let k = 0; k < hidden; k++) for (let l = 0; l < hidden; l++) if (masks.m2[k * hidden + l] !== 0) ready2[l] = Math.max(ready2[l], ready1[k]);
  blocks.forEach((b, j) => {
    for (let l = 0; l < hidden; l++) {
      for (let o = b.offset; o < b.offset + b.size; o++) {
        if (masks.m3[l * width + o] !== 0 && ready2[l] > j) throw new Error(`sampleRows: the masks are not autoregressive (column ${j} reads hidden unit ${l}, which reads a later column)`);
      }
    }
  });
  const order = (ready: Int32Array) => Int32Array.from(Array.from({ length: hidden }, (_, k) => k).sort((a, b) => ready[a] - ready[b] || a - b));
  const prefix = (ready: Int32Array) => Int32Array.from(blocks, (_, j) => ready.reduce((n, r) => n + (r <= j ? 1 : 0), 0));
  return { order1: order(ready1), order2: order(ready2), p1: prefix(ready1), p2: prefix(ready2) };
}

// The per-element loops live in small functions of their own, which V8 optimizes far better than the
// same loops inside the generator.

/** out[i, 0..k) = relu(z[i, 0..k)) for rows 0..m (z has `stride` columns), packed row-major. */
function reluPrefix(z: Float32Array, stride: number, m: number, k: number, out: Float32Array): void {
  for (let i = 0; i < m; i++) {
    const from = i * stride;
    const to = i * k;
    for (let u = 0; u < k; u++) {
      const v = z[from + u];
      out[to + u] = v > 0 ? v : 0;
    }
  }
}

/** out[i, 0..k) = a[i, 0..k) for rows 0..m (a has `stride` columns), packed row-major. */
function packPrefix(a: Float32Array, stride: number, m: number, k: number, out: Float32Array): void {
  for (let i = 0; i < m; i++) {
    const from = i * stride;
    const to = i * k;
    for (let u = 0; u < k; u++) out[to + u] = a[from + u];
  }
}

/** a[i, lo..lo+k) = part[i, 0..k) for rows 0..m (a has `stride` columns). */
function unpackColumns(part: Float32Array, k: number, m: number, a: Float32Array, stride: number, lo: number): void {
  for (let i = 0; i < m; i++) {
    const from = i * k;
    const to = i * stride + lo;
    for (let u = 0; u < k; u++) a[to + u] = part[from + u];
  }
}

/**
 * z[i, from..stride) += W[offset + cell_i, from..stride): x·W for the drawn cells, W holding each cell's
 * contribution (its input features times the masked weights).
 */
function addDrawnRows(z: Float32Array, stride: number, w: Float32Array, offset: number, cells: Int32Array, m: number, from: number): void {
  for (let i = 0; i < m; i++) {
    const src = (offset + cells[i]) * stride;
    const to = i * stride;
    for (let u = from; u < stride; u++) z[to + u] += w[src + u];
  }
}

/**
 * Row-wise exp(logits[i, 0..k) + direct[i, lo..lo+k) − max) in place (direct has `stride` columns; may be
 * absent), each row's total in totals[i]: draw divides by the total, not the cells by it (one pass fewer).
 */
function softmaxRows(logits: Float32Array, k: number, m: number, direct: Float32Array | undefined, stride: number, lo: number, totals: Float64Array): void {
  for (let i = 0; i < m; i++) {
    const base = i * k;
    if (direct) for (let c = 0; c < k; c++) logits[base + c] += direct[i * stride + lo + c];
    let max = -Infinity;
    for (let c = 0; c < k; c++) if (logits[base + c] > max) max = logits[base + c];
    let sum = 0;
    for (let c = 0; c < k; c++) sum += logits[base + c] = Math.exp(logits[base + c] - max);
    totals[i] = sum;
  }
}

/** A block's direct outputs (those whose projection reaches its logits) and their projection onto them. */
interface ProjectionBlock {
  /** The first direct output that this block or any later one reads (what a drawn cell must update). */
  from: number;
  outputs: Int32Array;
  /** outputs.length × block size. */
  s: Float32Array;
}

/**
 * Each block's direct outputs from the projection s0 (directWidth × width): the outputs with a nonzero
 * entry in the block's logits. directProjection has each output reach one block's logits, in the blocks'
 * order, so that the outputs later blocks read are a suffix; any other projection gets undefined (and
 * the sampler accumulates in the logits' space).
 */
function projectionBlocks(s0: Float32Array, dWidth: number, blocks: readonly ColumnBlock[]): ProjectionBlock[] | undefined {
  const width = s0.length / dWidth;
  const out = blocks.map((b) => {
    const outputs: number[] = [];
    for (let d = 0; d < dWidth; d++) {
      for (let c = 0; c < b.size; c++) {
        if (s0[d * width + b.offset + c] !== 0) {
          outputs.push(d);
          break;
        }
      }
    }
    const s = new Float32Array(outputs.length * b.size);
    outputs.forEach((d, t) => {
      for (let c = 0; c < b.size; c++) s[t * b.size + c] = s0[d * width + b.offset + c];
    });
    return { from: dWidth, outputs: Int32Array.from(outputs), s };
  });
  let from = dWidth;
  for (let j = out.length - 1; j >= 0; j--) {
    const o = out[j].outputs;
    if (o.length > 0) {
      if (o[o.length - 1] >= from) return undefined;
      from = o[0];
    }
    out[j].from = from;
  }
  return out;
}

/** logits[i, 0..k) += Σ over the block's direct outputs d of z[i, d]·s[d, ·] (z has `stride` columns). */
function addProjected(logits: Float32Array, k: number, m: number, z: Float32Array, stride: number, block: ProjectionBlock): void {
  const { outputs, s } = block;
  for (let i = 0; i < m; i++) {
    const base = i * k;
    const row = i * stride;
    for (let t = 0; t < outputs.length; t++) {
      const v = z[row + outputs[t]];
      if (v === 0) continue;
      for (let c = 0, at = t * k; c < k; c++, at++) logits[base + c] += v * s[at];
    }
  }
}

/** Each row's cell by inversion of its probabilities (row i at probs[i·stride ..], k cells; with totals, its weights and their total), one draw per row. */
function draw(probs: Float32Array, stride: number, k: number, m: number, rng: Rng, out: Int32Array, totals?: Float64Array): void {
  for (let i = 0; i < m; i++) {
    let u = totals ? rng.next() * totals[i] : rng.next();
    let c = 0;
    const base = i * stride;
    while (c < k - 1 && u >= probs[base + c]) {
      u -= probs[base + c];
      c++;
    }
    out[i] = c;
  }
}

/**
 * `input` (default: one-hot inputs) gives each drawn cell's input features; the network's hidden layers
 * and direct connections read those.
 */
export function* sampleRows(
  shape: MadeShape, masks: MadeMasks, encoding: Encoding, params: Float32Array, n: number, rng: Rng, input?: InputEncoding,
): Generator<OutputRow> {
  const { blocks, width } = encoding;
  const { hidden } = shape;
  const inW = inputWidthOf(shape);
  const columns = blocks.length;
  const p = unflattenParams(shape, params);
  const inputBlocks = input?.blocks ?? blocks;
  const { order1, order2, p1, p2 } = samplingPlan(shape, masks, encoding, { width: inW, blocks: inputBlocks });
  /** Each output cell's contribution through its input features to the columns of a masked weight matrix `cols` wide. */
  const cellRows = (cols: number, weight: (i: number, u: number) => number): Float32Array => {
    const out = new Float32Array(width * cols);
    blocks.forEach((b, j) => {
      const { offset: at, size: k } = inputBlocks[j];
      for (let c = 0; c < b.size; c++) {
        for (let f = 0; f < k; f++) {
          const v = input ? input.features[j][c * k + f] : f === c ? 1 : 0;
          if (v === 0) continue;
          for (let u = 0; u < cols; u++) out[(b.offset + c) * cols + u] += v * weight(at + f, u);
        }
      }
    });
    return out;
  };
  // Masked weights with the hidden units renumbered: w1 (per drawn cell) width × hidden, w2 hidden × hidden, w3 hidden × width.
  const w1 = cellRows(hidden, (i, u) => p.w1[i * hidden + order1[u]] * masks.m1[i * hidden + order1[u]]);
  const dWidth = directWidthOf(shape);
  const s0 = masks.s0;
  // With a projection, the direct connections are accumulated per drawn cell in the direct outputs' space
  // (dWidth, fewer than the logits: one scalar per numeric column instead of one per bin) and projected
  // onto a block's logits when it is drawn: the accumulation was a third of sampling's time.
  const projected = shape.direct && s0 ? projectionBlocks(s0, dWidth, blocks) : undefined;
  const w0d = projected ? cellRows(dWidth, (i, d) => p.w0[i * dWidth + d] * masks.m0[i * dWidth + d]) : undefined;
  const w0 = shape.direct && !projected
    ? cellRows(width, s0
      ? (i, o) => {
        let v = 0;
        for (let d = 0; d < dWidth; d++) v += p.w0[i * dWidth + d] * masks.m0[i * dWidth + d] * s0[d * width + o];
        return v;
      }
      : (i, o) => p.w0[i * width + o] * masks.m0[i * width + o])
    : undefined;
  const b1 = Float32Array.from(order1, (k) => p.b1[k]);
  const w2 = (u: number, v: number) => p.w2[order1[u] * hidden + order2[v]] * masks.m2[order1[u] * hidden + order2[v]];
  const w3 = (v: number, o: number) => p.w3[order2[v] * width + o] * masks.m3[order2[v] * width + o];
  const decoders = blocks.map(cellDecoder);
  const tensors: tf.Tensor[] = [];
  const keep = <T extends tf.Tensor>(t: T): T => {
    tensors.push(t);
    return t;
  };
  type Layer = { w: tf.Tensor2D; b: tf.Tensor1D };
  // Per column: the h2 units that become final there (from the h1 prefix, at least one unit wide: an
  // extra unit's weights are masked to zero), and the output block's weights on the h2 prefix.
  const steps = blocks.map((block, j) => {
    const lo = j === 0 ? 0 : p2[j - 1];
    const hi = p2[j];
    const k1 = Math.max(1, p1[j]);
    let second: Layer | undefined;
    if (hi > lo) {
      const w = new Float32Array(k1 * (hi - lo));
      for (let u = 0; u < k1; u++) for (let v = lo; v < hi; v++) w[u * (hi - lo) + v - lo] = w2(u, v);
      second = { w: keep(tf.tensor2d(w, [k1, hi - lo])), b: keep(tf.tensor1d(Float32Array.from(order2.subarray(lo, hi), (l) => p.b2[l]))) };
    }
    const b3 = p.b3.subarray(block.offset, block.offset + block.size);
    let head: Layer | undefined;
    let fixed: Float32Array | undefined;
    if (hi > 0) {
      const w = new Float32Array(hi * block.size);
      for (let v = 0; v < hi; v++) for (let c = 0; c < block.size; c++) w[v * block.size + c] = w3(v, block.offset + c);
      head = { w: keep(tf.tensor2d(w, [hi, block.size])), b: keep(tf.tensor1d(b3)) };
    } else if (!shape.direct) {
      // No hidden unit reaches this block (the first column): its distribution is softmax(b3).
      const top = Math.max(...b3);
      const e = Array.from(b3, (v) => Math.exp(v - top));
      const total = e.reduce((a, v) => a + v, 0);
      fixed = Float32Array.from(e, (v) => v / total);
    }
    return { offset: block.offset, size: block.size, lo, hi, k1, second, head, fixed, b3 };
  });
  const rows = Math.min(SAMPLE_CHUNK, Math.max(0, n));
  const z1 = new Float32Array(rows * hidden);
  const direct = shape.direct ? { w: (w0d ?? w0)!, stride: projected ? dWidth : width } : undefined;
  const zd = direct ? new Float32Array(rows * direct.stride) : undefined;
  const logits = direct ? new Float32Array(rows * Math.max(1, ...blocks.map((b) => b.size))) : undefined;
  const totals = direct ? new Float64Array(rows) : undefined;
  const h2 = new Float32Array(rows * hidden);
  const packed = new Float32Array(rows * hidden);
  try {
    for (let done = 0; done < n; done += SAMPLE_CHUNK) {
      const m = Math.min(SAMPLE_CHUNK, n - done);
      const cells = blocks.map(() => new Int32Array(m));
      for (let i = 0; i < m; i++) z1.set(b1, i * hidden);
      zd?.fill(0);
      for (let j = 0; j < columns; j++) {
        const step = steps[j];
        if (step.second) {
          // h2 units lo..hi−1 = relu(h1[:, 0..k1) · W2 + b2), h1 = relu(z1) on its final prefix.
          reluPrefix(z1, hidden, m, step.k1, packed);
          const second = step.second;
          const out = tf.tidy(() => tf.fused.matMul({ a: tf.tensor2d(packed.subarray(0, m * step.k1), [m, step.k1]), b: second.w, bias: second.b, activation: "relu" }));
          const part = out.dataSync() as Float32Array;
          out.dispose();
          unpackColumns(part, step.hi - step.lo, m, h2, hidden, step.lo);
        }
        let probs: Float32Array;
        let stride = step.size;
        if (zd) {
          // Direct connections: the logits (hidden path with its bias, or the bias alone) plus the drawn
          // columns' direct contributions, softmax here.
          probs = logits!;
          if (step.head) {
            packPrefix(h2, hidden, m, step.hi, packed);
            const head = step.head;
            const out = tf.tidy(() => tf.fused.matMul({ a: tf.tensor2d(packed.subarray(0, m * step.hi), [m, step.hi]), b: head.w, bias: head.b }));
            probs.set(out.dataSync() as Float32Array);
            out.dispose();
          } else {
            for (let i = 0; i < m; i++) probs.set(step.b3, i * step.size);
          }
          if (projected) {
            addProjected(probs, step.size, m, zd, dWidth, projected[j]);
            softmaxRows(probs, step.size, m, undefined, 0, 0, totals!);
          } else softmaxRows(probs, step.size, m, zd, width, step.offset, totals!);
        } else if (step.head) {
          packPrefix(h2, hidden, m, step.hi, packed);
          const head = step.head;
          const out = tf.tidy(() => tf.softmax(tf.fused.matMul({ a: tf.tensor2d(packed.subarray(0, m * step.hi), [m, step.hi]), b: head.w, bias: head.b })));
          probs = out.dataSync() as Float32Array;
          out.dispose();
        } else {
          probs = step.fixed!;
          stride = 0;
        }
        draw(probs, stride, step.size, m, rng, cells[j], zd ? totals : undefined);
        // Units that are not final yet (ready1 > j) read column j: add its drawn cells' weights to them.
        if (j + 1 < columns && p1[j] < hidden) addDrawnRows(z1, hidden, w1, step.offset, cells[j], m, p1[j]);
        // The direct connections of later columns read column j.
        if (zd && j + 1 < columns) addDrawnRows(zd, direct!.stride, direct!.w, step.offset, cells[j], m, projected ? projected[j + 1].from : blocks[j + 1].offset);
      }
      for (let i = 0; i < m; i++) {
        const row = new Array<string>(columns);
        for (let j = 0; j < columns; j++) row[j] = decoders[j](cells[j][i], rng);
        yield row;
      }
    }
  } finally {
    for (const t of tensors) t.dispose();
  }
}
