/**
 * A site's local training: Poisson-subsampled DP-SGD steps (each row joins a step's batch independently
 * with probability q, from a secure source), per-example clipping, Gaussian noise of σ·C on the clipped
 * sum, then Adam. Normalizing by the expected batch q·n̂ uses the site's noisy row count n̂, itself a DP
 * release, so the whole update is post-processing of charged releases.
 */
import * as tf from "@tensorflow/tfjs-core";
import { gaussian, type Rng } from "../../random/rng.js";
import { directWidthOf, inputWidthOf, unflattenParams, type MadeMasks, type MadeShape } from "./made.js";
import { forward, gradientSum, type NetworkTensors } from "./dp-sgd.js";
import type { InputEncoding } from "./encoding.js";

export interface TrainSettings {
  samplingRate: number;
  steps: number;
  clipNorm: number;
  noiseMultiplier: number;
  learningRate: number;
  /** "adam" (default), "sgd": steps with heavy-ball momentum (0.9), or "gd": plain steps. */
  optimizer?: "adam" | "sgd" | "gd";
}

export interface TrainStats {
  meanBatch: number;
  clippedShare: number;
}

type Constants = Pick<NetworkTensors, "m1" | "m2" | "m3" | "m0" | "s0" | "s0T" | "blockOf" | "blockOfT" | "masks">;
type Weights = Omit<NetworkTensors, keyof Constants>;

/** Masks and block matrices: made once per training run or sampling call. */
export function constantTensors(shape: MadeShape, masks: MadeMasks, columns: number): Constants {
  const { width, hidden } = shape;
  const inW = inputWidthOf(shape);
  const blockOf = tf.tensor2d(masks.blockOf, [width, columns]);
  const out: Constants = { blockOf, blockOfT: tf.transpose(blockOf), masks };
  if (hidden > 0) {
    out.m1 = tf.tensor2d(masks.m1, [inW, hidden]);
    out.m2 = tf.tensor2d(masks.m2, [hidden, hidden]);
    out.m3 = tf.tensor2d(masks.m3, [hidden, width]);
  }
  if (shape.direct) out.m0 = tf.tensor2d(masks.m0, [inW, directWidthOf(shape)]);
  if (masks.s0) {
    out.s0 = tf.tensor2d(masks.s0, [directWidthOf(shape), width]);
    out.s0T = tf.transpose(out.s0);
  }
  return out;
}

/**
 * The weights as tensors, masked (w ⊙ M) on the host as they are uploaded: the forward pass then needs no
 * mask products, and a weight whose mask is 0 stays out of the network whatever its stored value.
 */
export function weightTensors(shape: MadeShape, flat: Float32Array, masks: MadeMasks): Weights {
  const p = unflattenParams(shape, flat);
  const { width, hidden } = shape;
  const inW = inputWidthOf(shape);
  const masked = (w: Float32Array, m: Float32Array) => {
    const out = new Float32Array(w.length);
    for (let i = 0; i < w.length; i++) out[i] = w[i] * m[i];
    return out;
  };
  const out: Weights = { b3: tf.tensor1d(p.b3) };
  if (hidden > 0) {
    out.w1 = tf.tensor2d(masked(p.w1, masks.m1), [inW, hidden]);
    out.b1 = tf.tensor1d(p.b1);
    const w2 = masked(p.w2, masks.m2);
    out.w2 = tf.tensor2d(w2, [hidden, hidden]);
    out.b2 = tf.tensor1d(p.b2);
    const w3 = masked(p.w3, masks.m3);
    out.w3 = tf.tensor2d(w3, [hidden, width]);
    // Transposed too, for the backward pass: a host transpose of what is uploaded anyway, not a kernel.
    out.w2T = tf.tensor2d(transposed(w2, hidden, hidden), [hidden, hidden]);
    out.w3T = tf.tensor2d(transposed(w3, hidden, width), [width, hidden]);
  }
  if (shape.direct) out.w0 = tf.tensor2d(masked(p.w0, masks.m0), [inW, directWidthOf(shape)]);
  return out;
}

/** a (rows × columns, row-major) transposed. */
function transposed(a: Float32Array, rows: number, columns: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let j = 0, at = 0; j < rows; j++) for (let k = 0; k < columns; k++, at++) out[k * rows + j] = a[at];
  return out;
}

/** Disposes every tensor among the values (the host masks beside them are left alone). */
export function disposeTensors(tensors: object): void {
  for (const t of Object.values(tensors)) if (t instanceof tf.Tensor) t.dispose();
}

function concat(parts: Float32Array[], length: number): Float32Array {
  const out = new Float32Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Gathers the chosen rows of a row-major one-hot matrix into a batch tensor. */
function batchTensor(x: Float32Array, width: number, rows: number[]): tf.Tensor2D {
  const out = new Float32Array(rows.length * width);
  rows.forEach((r, i) => out.set(x.subarray(r * width, (r + 1) * width), i * width));
  return tf.tensor2d(out, [rows.length, width]);
}

/**
 * Trains from `start` for `settings.steps` steps and returns the new flat parameters. `y` holds the rows
 * one-hot (n × width), `inputs` their input features (n × inputWidth; default: y). `expectedBatch` is
 * q·n̂ (public or DP); `random` draws both the Poisson sampling and the noise, and must be secure.
 */
export function trainLocal(
  shape: MadeShape, masks: MadeMasks, columns: number, start: Float32Array, y: Float32Array, rows: number,
  settings: TrainSettings, expectedBatch: number, random: Rng, inputs?: Float32Array,
): { params: Float32Array; stats: TrainStats } {
  const inW = inputWidthOf(shape);
  const params = Float32Array.from(start);
  const m = new Float32Array(params.length);
  const v = new Float32Array(params.length);
  const [beta1, beta2, eps] = [0.9, 0.999, 1e-8];
  const noiseStd = settings.noiseMultiplier * settings.clipNorm;
  const constants = constantTensors(shape, masks, columns);
  let batchSum = 0;
  let clippedSum = 0;
  for (let step = 1; step <= settings.steps; step++) {
    const chosen: number[] = [];
    for (let r = 0; r < rows; r++) if (random.next() < settings.samplingRate) chosen.push(r);
    const weights = weightTensors(shape, params, masks);
    const net = { ...constants, ...weights };
    let grad: Float32Array;
    try {
      if (chosen.length > 0) {
        const yb = batchTensor(y, shape.width, chosen);
        const xb = inputs ? batchTensor(inputs, inW, chosen) : yb;
        const result = gradientSum(net, yb, settings.clipNorm, xb);
        if (xb !== yb) xb.dispose();
        yb.dispose();
        grad = concat(result.grads, params.length);
        clippedSum += result.clippedShare;
      } else {
        grad = new Float32Array(params.length);
      }
    } finally {
      disposeTensors(weights);
    }
    batchSum += chosen.length;
    // The noise goes on every step, even an empty batch: the privacy analysis counts every step.
    const scale = 1 / Math.max(1, expectedBatch);
    const lrT = (settings.learningRate * Math.sqrt(1 - beta2 ** step)) / (1 - beta1 ** step);
    if (settings.optimizer === "gd") {
      for (let i = 0; i < params.length; i++) params[i] -= settings.learningRate * (grad[i] + noiseStd * gaussian(random)) * scale;
      continue;
    }
    if (settings.optimizer === "sgd") {
      for (let i = 0; i < params.length; i++) {
        m[i] = 0.9 * m[i] + (grad[i] + noiseStd * gaussian(random)) * scale;
        params[i] -= settings.learningRate * m[i];
      }
      continue;
    }
    for (let i = 0; i < params.length; i++) {
      const g = (grad[i] + noiseStd * gaussian(random)) * scale;
      m[i] = beta1 * m[i] + (1 - beta1) * g;
      v[i] = beta2 * v[i] + (1 - beta2) * g * g;
      params[i] -= (lrT * m[i]) / (Math.sqrt(v[i]) + eps);
    }
  }
  disposeTensors(constants);
  const steps = Math.max(1, settings.steps);
  return { params, stats: { meanBatch: batchSum / steps, clippedShare: clippedSum / steps } };
}

/**
 * Σ over every row of its gradient clipped to L2 norm `clipNorm`, at `params`, without noise: what a site
 * contributes to a secure-aggregation round (its noise share goes on at the grid, not here). With
 * `outputBias` false the output biases' part is zeros and takes no share of the clip norm.
 */
export function clippedGradientSum(
  shape: MadeShape, masks: MadeMasks, columns: number, params: Float32Array, y: Float32Array, rows: number, clipNorm: number, inputs?: Float32Array,
  outputBias = true,
): Float64Array {
  if (rows === 0) return new Float64Array(params.length);
  const constants = constantTensors(shape, masks, columns);
  const weights = weightTensors(shape, params, masks);
  try {
    const all = Array.from({ length: rows }, (_, i) => i);
    const yb = batchTensor(y, shape.width, all);
    const xb = inputs ? batchTensor(inputs, inputWidthOf(shape), all) : yb;
    const result = gradientSum({ ...constants, ...weights }, yb, clipNorm, xb, { outputBias });
    if (xb !== yb) xb.dispose();
    yb.dispose();
    return Float64Array.from(concat(result.grads, params.length));
  } finally {
    disposeTensors(weights);
    disposeTensors(constants);
  }
}

/**
 * Output biases that make the network's column marginals match `targets` (one probability vector per
 * column block, last cell = missing): pure post-processing of released values. Rows are drawn column by
 * column as in sampling; at column j the bias shift d_j is solved so that the mean over the drawn rows of
 * softmax(logits_j + d_j) equals the target (fixed-point iteration d ← d + log(target / mean)), then
 * column j is drawn from the shifted conditionals, so that later columns are calibrated against
 * prefixes drawn from the calibrated model. Returns new flat parameters (only b3 differs).
 */
export function calibrateOutputBiases(
  shape: MadeShape, masks: MadeMasks, blocks: { offset: number; size: number }[], flat: Float32Array,
  targets: ArrayLike<number>[], rows: number, rng: Rng, iterations = 50, input?: InputEncoding,
): Float32Array {
  const { width } = shape;
  const inW = inputWidthOf(shape);
  const params = Float32Array.from(flat);
  const b3At = params.length - width;
  const constants = constantTensors(shape, masks, blocks.length);
  const weights = weightTensors(shape, params, masks);
  const net = { ...constants, ...weights };
  const x = new Float32Array(rows * inW);
  try {
    for (let j = 0; j < blocks.length; j++) {
      const { offset, size } = blocks[j];
      // Logits without the output biases (they are what is solved for).
      const logits = tf.tidy(() => tf.sub(tf.slice(forward(net, tf.tensor2d(x, [rows, inW])).logits, [0, offset], [rows, size]), tf.slice(net.b3, [offset], [size])));
      const z = logits.dataSync() as Float32Array;
      logits.dispose();
      const bias = Float64Array.from(params.subarray(b3At + offset, b3At + offset + size));
      const target = Array.from({ length: size }, (_, c) => Math.max(1e-9, targets[j][c] ?? 0));
      const p = new Float64Array(rows * size);
      const mean = new Float64Array(size);
      const probabilities = () => {
        mean.fill(0);
        for (let i = 0; i < rows; i++) {
          let max = -Infinity;
          for (let c = 0; c < size; c++) max = Math.max(max, z[i * size + c] + bias[c]);
          let sum = 0;
          for (let c = 0; c < size; c++) sum += p[i * size + c] = Math.exp(z[i * size + c] + bias[c] - max);
          for (let c = 0; c < size; c++) mean[c] += (p[i * size + c] /= sum) / rows;
        }
      };
      for (let it = 0; it < iterations; it++) {
        probabilities();
        let worst = 0;
        for (let c = 0; c < size; c++) {
          const step = Math.log(target[c] / Math.max(1e-300, mean[c]));
          bias[c] += Math.max(-5, Math.min(5, step));
          worst = Math.max(worst, Math.abs(mean[c] - target[c]));
        }
        if (worst < 1e-4) break;
      }
      probabilities();
      for (let c = 0; c < size; c++) params[b3At + offset + c] = bias[c];
      const inOffset = input ? input.blocks[j].offset : offset;
      const features = input?.features[j];
      const k = input ? input.blocks[j].size : size;
      for (let i = 0; i < rows; i++) {
        let u = rng.next();
        let c = 0;
        while (c < size - 1 && u >= p[i * size + c]) u -= p[i * size + c++];
        if (features) for (let f = 0; f < k; f++) x[i * inW + inOffset + f] = features[c * k + f];
        else x[i * inW + offset + c] = 1;
      }
    }
  } finally {
    disposeTensors(weights);
    disposeTensors(constants);
  }
  return params;
}
