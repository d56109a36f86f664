/**
 * A site's local training: Poisson-subsampled DP-SGD steps (each row joins a step's batch independently
 * with probability q, from a secure source), per-example clipping, Gaussian noise of σ·C on the clipped
 * sum, then Adam. Normalizing by the expected batch q·n̂ uses the site's noisy row count n̂, itself a DP
 * release, so the whole update is post-processing of charged releases.
 */
import * as tf from "@tensorflow/tfjs-core";
import { gaussian, type Rng } from "../../random/rng.js";
import { flattenParams, unflattenParams, type MadeMasks, type MadeShape } from "./made.js";
import { gradientSum, type NetworkTensors } from "./dp-sgd.js";

export interface TrainSettings {
  samplingRate: number;
  steps: number;
  clipNorm: number;
  noiseMultiplier: number;
  learningRate: number;
}

export interface TrainStats {
  meanLoss: number;
  meanBatch: number;
  clippedShare: number;
}

type Constants = Pick<NetworkTensors, "m1" | "m2" | "m3" | "blockOf" | "blockOfT">;
type Weights = Omit<NetworkTensors, keyof Constants>;

/** Masks and block matrices: made once per training run or sampling call. */
export function constantTensors(shape: MadeShape, masks: MadeMasks, columns: number): Constants {
  const { width, hidden } = shape;
  const blockOf = tf.tensor2d(masks.blockOf, [width, columns]);
  return {
    m1: tf.tensor2d(masks.m1, [width, hidden]), m2: tf.tensor2d(masks.m2, [hidden, hidden]), m3: tf.tensor2d(masks.m3, [hidden, width]),
    blockOf, blockOfT: tf.transpose(blockOf),
  };
}

export function weightTensors(shape: MadeShape, flat: Float32Array): Weights {
  const p = unflattenParams(shape, flat);
  const { width, hidden } = shape;
  return {
    w1: tf.tensor2d(p.w1, [width, hidden]), b1: tf.tensor1d(p.b1),
    w2: tf.tensor2d(p.w2, [hidden, hidden]), b2: tf.tensor1d(p.b2),
    w3: tf.tensor2d(p.w3, [hidden, width]), b3: tf.tensor1d(p.b3),
  };
}

export function disposeTensors(tensors: object): void {
  for (const t of Object.values(tensors)) (t as tf.Tensor).dispose();
}

/** Gathers the chosen rows of a row-major one-hot matrix into a batch tensor. */
function batchTensor(x: Float32Array, width: number, rows: number[]): tf.Tensor2D {
  const out = new Float32Array(rows.length * width);
  rows.forEach((r, i) => out.set(x.subarray(r * width, (r + 1) * width), i * width));
  return tf.tensor2d(out, [rows.length, width]);
}

/**
 * Trains from `start` for `settings.steps` steps and returns the new flat parameters. `expectedBatch` is
 * q·n̂ (public or DP); `random` draws both the Poisson sampling and the noise, and must be secure.
 */
export function trainLocal(
  shape: MadeShape, masks: MadeMasks, columns: number, start: Float32Array, x: Float32Array, rows: number,
  settings: TrainSettings, expectedBatch: number, random: Rng,
): { params: Float32Array; stats: TrainStats } {
  const params = Float32Array.from(start);
  const m = new Float32Array(params.length);
  const v = new Float32Array(params.length);
  const [beta1, beta2, eps] = [0.9, 0.999, 1e-8];
  const noiseStd = settings.noiseMultiplier * settings.clipNorm;
  const constants = constantTensors(shape, masks, columns);
  let lossSum = 0;
  let batchSum = 0;
  let clippedSum = 0;
  for (let step = 1; step <= settings.steps; step++) {
    const chosen: number[] = [];
    for (let r = 0; r < rows; r++) if (random.next() < settings.samplingRate) chosen.push(r);
    const weights = weightTensors(shape, params);
    const net = { ...constants, ...weights };
    let grad: Float32Array;
    try {
      if (chosen.length > 0) {
        const xb = batchTensor(x, shape.width, chosen);
        const result = gradientSum(net, xb, settings.clipNorm);
        xb.dispose();
        grad = flattenParams({ w1: result.grads[0], b1: result.grads[1], w2: result.grads[2], b2: result.grads[3], w3: result.grads[4], b3: result.grads[5] });
        lossSum += result.loss;
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
    for (let i = 0; i < params.length; i++) {
      const g = (grad[i] + noiseStd * gaussian(random)) * scale;
      m[i] = beta1 * m[i] + (1 - beta1) * g;
      v[i] = beta2 * v[i] + (1 - beta2) * g * g;
      params[i] -= (lrT * m[i]) / (Math.sqrt(v[i]) + eps);
    }
  }
  disposeTensors(constants);
  const steps = Math.max(1, settings.steps);
  return { params, stats: { meanLoss: lossSum / steps, meanBatch: batchSum / steps, clippedShare: clippedSum / steps } };
}
