/**
 * Column-by-column sampling from the MADE, in chunks of rows: after column j is drawn for every row of
 * the chunk, column j+1's logits see it. Only column j's output block is computed at step j.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { OutputRow } from "../../schema/schema.js";
import type { Rng } from "../../random/rng.js";
import { decodeCell, type Encoding } from "./encoding.js";
import type { MadeMasks, MadeShape } from "./made.js";
import { constantTensors, disposeTensors, weightTensors } from "./train.js";

const CHUNK = 8192;

export function* sampleRows(shape: MadeShape, masks: MadeMasks, encoding: Encoding, params: Float32Array, n: number, rng: Rng): Generator<OutputRow> {
  const { blocks, width } = encoding;
  const constants = constantTensors(shape, masks, blocks.length);
  const weights = weightTensors(shape, params);
  const w1m = tf.mul(weights.w1, constants.m1) as tf.Tensor2D;
  const w2m = tf.mul(weights.w2, constants.m2) as tf.Tensor2D;
  const w3m = tf.mul(weights.w3, constants.m3) as tf.Tensor2D;
  // Each column's output weights and biases, sliced once.
  const heads = blocks.map((b) => ({
    w: tf.slice(w3m, [0, b.offset], [shape.hidden, b.size]) as tf.Tensor2D,
    b: tf.slice(weights.b3, [b.offset], [b.size]) as tf.Tensor1D,
  }));
  try {
    for (let done = 0; done < n; done += CHUNK) {
      const m = Math.min(CHUNK, n - done);
      const x = new Float32Array(m * width);
      const cells = blocks.map(() => new Int32Array(m));
      for (let j = 0; j < blocks.length; j++) {
        const block = blocks[j];
        const probs = tf.tidy(() => {
          const xt = tf.tensor2d(x, [m, width]);
          const h1 = tf.relu(tf.add(tf.matMul(xt, w1m), weights.b1));
          const h2 = tf.relu(tf.add(tf.matMul(h1, w2m), weights.b2));
          return tf.softmax(tf.add(tf.matMul(h2, heads[j].w), heads[j].b));
        });
        const p = probs.dataSync();
        probs.dispose();
        const k = block.size;
        for (let i = 0; i < m; i++) {
          let u = rng.next();
          let c = 0;
          const base = i * k;
          while (c < k - 1 && u >= p[base + c]) {
            u -= p[base + c];
            c++;
          }
          cells[j][i] = c;
          x[i * width + block.offset + c] = 1;
        }
      }
      for (let i = 0; i < m; i++) yield blocks.map((b, j) => decodeCell(b, cells[j][i], rng));
    }
  } finally {
    for (const h of heads) {
      h.w.dispose();
      h.b.dispose();
    }
    for (const t of [w1m, w2m, w3m]) t.dispose();
    disposeTensors(weights);
    disposeTensors(constants);
  }
}
