/**
 * The network: a MADE (Germain et al. 2015, "Masked Autoencoder for Distribution Estimation") over the
 * one-hot blocks, in schema column order. Masks make the logits of column j depend only on columns before
 * j, so one network gives every conditional p(x_j | x_<j): exact likelihood for training and column-by-
 * column sampling that keeps the columns' joint structure. Chosen over a TVAE-style VAE because it has no
 * encoder to privatize and no posterior collapse at the small cohorts and noise levels of DP training.
 *
 * Two paths to the logits, either or both:
 * - hidden layers (`hidden` > 0): input → h1 → h2 → logits, masked by hidden-unit degrees;
 * - the direct connections of the MADE paper (§4, `direct`): a masked linear input → logits map, so that
 *   each column's logits are a linear function of the features of the columns before it. With hidden = 0
 *   the network is a column-by-column logistic model: few parameters, so that the clipped gradient of
 *   DP-SGD is spent on them rather than drowned by noise on thousands of others.
 *
 * The inputs are the cells' features (encoding.ts: one-hot, or a scaled value for numeric columns); the
 * outputs are always the one-hot blocks.
 */
import type { Rng } from "../../random/rng.js";
import { directProjection, type Encoding, type InputEncoding } from "./encoding.js";

export interface MadeShape {
  /** One-hot width of the outputs (and of the inputs, unless `inputWidth` says otherwise). */
  width: number;
  /** Units in each of the two hidden layers; 0: no hidden layers (then `direct` must be set). */
  hidden: number;
  /** Input features (default: `width`). */
  inputWidth?: number;
  /** Direct masked connections input → logits (default: none). */
  direct?: boolean;
  /**
   * Outputs of the direct connections (default: `width`, one per logit). Fewer when the logits of a block
   * are a fixed public projection of fewer direct outputs (encoding.ts: a numeric column's logits shifted
   * along its bins' centres, a linear trend, instead of one free logit per bin).
   */
  directWidth?: number;
}

/**
 * Parameters, row-major: w1 inputWidth×hidden, w2 hidden×hidden, w3 hidden×width, w0 inputWidth×directWidth (the
 * direct connections; empty without them), then the output biases b3 (always last).
 */
export interface MadeParams {
  w1: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
  b2: Float32Array;
  w3: Float32Array;
  w0: Float32Array;
  b3: Float32Array;
}

export interface MadeMasks {
  m1: Float32Array;
  m2: Float32Array;
  m3: Float32Array;
  /** inputWidth × directWidth: 1 where direct output d may read input feature i (its column comes later). Empty without direct connections. */
  m0: Float32Array;
  /** width × columns: 1 where a one-hot cell belongs to a column's block. */
  blockOf: Float32Array;
  /** Degree (1-based column position) of each hidden unit. */
  hiddenDegree: Int32Array;
  /** directWidth × width projection of the direct outputs to the logits (absent: identity). */
  s0?: Float32Array;
}

export const inputWidthOf = (s: MadeShape): number => s.inputWidth ?? s.width;
export const directWidthOf = (s: MadeShape): number => s.directWidth ?? s.width;

const ORDER = ["w1", "b1", "w2", "b2", "w3", "w0", "b3"] as const;

function sizes(s: MadeShape): Record<(typeof ORDER)[number], number> {
  const [w, i, h] = [s.width, inputWidthOf(s), s.hidden];
  return { w1: i * h, b1: h, w2: h * h, b2: h, w3: h * w, w0: s.direct ? i * directWidthOf(s) : 0, b3: w };
}

export function parameterCount(s: MadeShape): number {
  const z = sizes(s);
  return ORDER.reduce((n, k) => n + z[k], 0);
}

/** Masks for `hidden` units per layer; `input` (default: the one-hot blocks) and `direct` as in MadeShape. */
export function madeMasks(encoding: Encoding, hidden: number, opts: { input?: InputEncoding; direct?: boolean; directOutput?: InputEncoding } = {}): MadeMasks {
  const { width, blocks } = encoding;
  const columns = blocks.length;
  const outputDegree = new Int32Array(width);
  blocks.forEach((b, j) => outputDegree.fill(j + 1, b.offset, b.offset + b.size));
  const inputBlocks = opts.input?.blocks ?? blocks;
  const inWidth = opts.input?.width ?? width;
  const inputDegree = new Int32Array(inWidth);
  inputBlocks.forEach((b, j) => inputDegree.fill(j + 1, b.offset, b.offset + b.size));
  // Hidden degrees cycle over 1 .. C−1, sorted so that each degree is a contiguous range of units.
  const span = Math.max(1, columns - 1);
  const hiddenDegree = Int32Array.from({ length: hidden }, (_, k) => 1 + Math.floor((k * span) / hidden));
  const m1 = new Float32Array(inWidth * hidden);
  for (let i = 0; i < inWidth; i++) for (let k = 0; k < hidden; k++) m1[i * hidden + k] = hiddenDegree[k] >= inputDegree[i] ? 1 : 0;
  const m2 = new Float32Array(hidden * hidden);
  for (let k = 0; k < hidden; k++) for (let l = 0; l < hidden; l++) m2[k * hidden + l] = hiddenDegree[l] >= hiddenDegree[k] ? 1 : 0;
  const m3 = new Float32Array(hidden * width);
  for (let k = 0; k < hidden; k++) for (let o = 0; o < width; o++) m3[k * width + o] = outputDegree[o] > hiddenDegree[k] ? 1 : 0;
  const dWidth = opts.directOutput?.width ?? width;
  const directDegree = new Int32Array(dWidth);
  (opts.directOutput?.blocks ?? blocks).forEach((b, j) => directDegree.fill(j + 1, b.offset, b.offset + b.size));
  const m0 = new Float32Array(opts.direct ? inWidth * dWidth : 0);
  if (opts.direct) for (let i = 0; i < inWidth; i++) for (let d = 0; d < dWidth; d++) m0[i * dWidth + d] = directDegree[d] > inputDegree[i] ? 1 : 0;
  const blockOf = new Float32Array(width * columns);
  blocks.forEach((b, j) => {
    for (let o = b.offset; o < b.offset + b.size; o++) blockOf[o * columns + j] = 1;
  });
  return { m1, m2, m3, m0, blockOf, hiddenDegree, ...(opts.direct && opts.directOutput ? { s0: directProjection(encoding, opts.directOutput) } : {}) };
}

/**
 * Glorot-uniform weights, zero biases, from a public seed: every party starts from the same model. The
 * output weights (w3 and the direct w0) are scaled by `outputScale`: at 0 every conditional starts equal
 * to the marginal its biases give, so that training adds dependencies instead of first having to undo
 * random ones.
 */
export function initParams(s: MadeShape, rng: Rng, outputScale = 1): MadeParams {
  const uniform = (n: number, fanIn: number, fanOut: number) => {
    const limit = Math.sqrt(6 / Math.max(1, fanIn + fanOut));
    return Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * limit);
  };
  const z = sizes(s);
  const inW = inputWidthOf(s);
  return {
    w1: uniform(z.w1, inW, s.hidden),
    b1: new Float32Array(z.b1),
    w2: uniform(z.w2, s.hidden, s.hidden),
    b2: new Float32Array(z.b2),
    w3: uniform(z.w3, s.hidden, s.width).map((w) => w * outputScale),
    w0: uniform(z.w0, inW, directWidthOf(s)).map((w) => w * outputScale),
    b3: new Float32Array(z.b3),
  };
}

export function flattenParams(p: MadeParams): Float32Array {
  const out = new Float32Array(ORDER.reduce((n, k) => n + p[k].length, 0));
  let at = 0;
  for (const k of ORDER) {
    out.set(p[k], at);
    at += p[k].length;
  }
  return out;
}

/** Offsets of every part in the flat parameters. */
export function paramOffsets(s: MadeShape): Record<(typeof ORDER)[number], { at: number; length: number }> {
  const z = sizes(s);
  let at = 0;
  const out = {} as Record<(typeof ORDER)[number], { at: number; length: number }>;
  for (const k of ORDER) {
    out[k] = { at, length: z[k] };
    at += z[k];
  }
  return out;
}

export function unflattenParams(s: MadeShape, flat: ArrayLike<number>): MadeParams {
  const z = sizes(s);
  let at = 0;
  const source = flat instanceof Float32Array ? flat : Float32Array.from(flat);
  const take = (n: number) => {
    const a = source.slice(at, at + n);
    at += n;
    return a;
  };
  const p = {} as MadeParams;
  for (const k of ORDER) p[k] = take(z[k]);
  return p;
}
