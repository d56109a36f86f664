/**
 * The network: a MADE (Germain et al. 2015, "Masked Autoencoder for Distribution Estimation") over the
 * one-hot blocks, in schema column order. Masks make the logits of column j depend only on columns before
 * j, so one network gives every conditional p(x_j | x_<j): exact likelihood for training and column-by-
 * column sampling that keeps the columns' joint structure. Chosen over a TVAE-style VAE because it has no
 * encoder to privatize and no posterior collapse at the small cohorts and noise levels of DP training.
 */
import type { Rng } from "../../random/rng.js";
import type { Encoding } from "./encoding.js";

export interface MadeShape {
  /** One-hot width (inputs and outputs). */
  width: number;
  hidden: number;
}

/** Parameters, row-major: w1 width×hidden, w2 hidden×hidden, w3 hidden×width. */
export interface MadeParams {
  w1: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
  b2: Float32Array;
  w3: Float32Array;
  b3: Float32Array;
}

export interface MadeMasks {
  m1: Float32Array;
  m2: Float32Array;
  m3: Float32Array;
  /** width × columns: 1 where a one-hot cell belongs to a column's block. */
  blockOf: Float32Array;
  /** Degree (1-based column position) of each hidden unit. */
  hiddenDegree: Int32Array;
}

export function parameterCount(s: MadeShape): number {
  return s.width * s.hidden + s.hidden + s.hidden * s.hidden + s.hidden + s.hidden * s.width + s.width;
}

export function madeMasks(encoding: Encoding, hidden: number): MadeMasks {
  const { width, blocks } = encoding;
  const columns = blocks.length;
  const inputDegree = new Int32Array(width);
  blocks.forEach((b, j) => inputDegree.fill(j + 1, b.offset, b.offset + b.size));
  // Hidden degrees cycle over 1 .. C−1, sorted so that each degree is a contiguous range of units.
  const span = Math.max(1, columns - 1);
  const hiddenDegree = Int32Array.from({ length: hidden }, (_, k) => 1 + Math.floor((k * span) / hidden));
  const m1 = new Float32Array(width * hidden);
  for (let i = 0; i < width; i++) for (let k = 0; k < hidden; k++) m1[i * hidden + k] = hiddenDegree[k] >= inputDegree[i] ? 1 : 0;
  const m2 = new Float32Array(hidden * hidden);
  for (let k = 0; k < hidden; k++) for (let l = 0; l < hidden; l++) m2[k * hidden + l] = hiddenDegree[l] >= hiddenDegree[k] ? 1 : 0;
  const m3 = new Float32Array(hidden * width);
  for (let k = 0; k < hidden; k++) for (let o = 0; o < width; o++) m3[k * width + o] = inputDegree[o] > hiddenDegree[k] ? 1 : 0;
  const blockOf = new Float32Array(width * columns);
  blocks.forEach((b, j) => {
    for (let o = b.offset; o < b.offset + b.size; o++) blockOf[o * columns + j] = 1;
  });
  return { m1, m2, m3, blockOf, hiddenDegree };
}

/**
 * Glorot-uniform weights, zero biases, from a public seed: every party starts from the same model. The
 * output weights are scaled by `outputScale`: at 0 every conditional starts equal to the marginal its
 * biases give, so that training adds dependencies instead of first having to undo random ones.
 */
export function initParams(s: MadeShape, rng: Rng, outputScale = 1): MadeParams {
  const uniform = (n: number, fanIn: number, fanOut: number) => {
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    return Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * limit);
  };
  return {
    w1: uniform(s.width * s.hidden, s.width, s.hidden),
    b1: new Float32Array(s.hidden),
    w2: uniform(s.hidden * s.hidden, s.hidden, s.hidden),
    b2: new Float32Array(s.hidden),
    w3: uniform(s.hidden * s.width, s.hidden, s.width).map((w) => w * outputScale),
    b3: new Float32Array(s.width),
  };
}

const ORDER = ["w1", "b1", "w2", "b2", "w3", "b3"] as const;

export function flattenParams(p: MadeParams): Float32Array {
  const out = new Float32Array(ORDER.reduce((n, k) => n + p[k].length, 0));
  let at = 0;
  for (const k of ORDER) {
    out.set(p[k], at);
    at += p[k].length;
  }
  return out;
}

export function unflattenParams(s: MadeShape, flat: ArrayLike<number>): MadeParams {
  const sizes: Record<(typeof ORDER)[number], number> = {
    w1: s.width * s.hidden, b1: s.hidden, w2: s.hidden * s.hidden, b2: s.hidden, w3: s.hidden * s.width, b3: s.width,
  };
  let at = 0;
  const source = flat instanceof Float32Array ? flat : Float32Array.from(flat);
  const take = (n: number) => {
    const a = source.slice(at, at + n);
    at += n;
    return a;
  };
  const p = {} as MadeParams;
  for (const k of ORDER) p[k] = take(sizes[k]);
  return p;
}
