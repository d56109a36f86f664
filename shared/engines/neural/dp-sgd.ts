/**
 * One DP-SGD gradient for the MADE, written out by hand with plain matMuls. Per-example clipping does not
 * take a backward pass per example: for a dense layer y = a·(W⊙M) the per-example weight gradient is the
 * masked outer product (aᵢ ⊗ gᵢ)⊙M, whose squared norm is Σₖ ((aᵢ²)·M)ₖ · gᵢₖ² — one extra matMul of the
 * forward pass's size per layer (ghost clipping, Goodfellow 2015; Li et al. 2022, with the mask folded
 * in). Then one clipped-sum backward. Transposes are materialized explicitly, because transposed matMuls
 * are about 10× slower than plain ones on the wasm backend.
 */
import * as tf from "@tensorflow/tfjs-core";

export interface NetworkTensors {
  w1: tf.Tensor2D; b1: tf.Tensor1D; w2: tf.Tensor2D; b2: tf.Tensor1D; w3: tf.Tensor2D; b3: tf.Tensor1D;
  m1: tf.Tensor2D; m2: tf.Tensor2D; m3: tf.Tensor2D;
  /** width × columns and columns × width block-membership matrices, for the per-column softmax. */
  blockOf: tf.Tensor2D; blockOfT: tf.Tensor2D;
}

export interface GradientResult {
  /** Gradient sums in parameter order (w1, b1, w2, b2, w3, b3), clipped per example when asked. */
  grads: Float32Array[];
  /** Mean negative log-likelihood per row (nats), before the step. */
  loss: number;
  /** Share of examples whose gradient norm exceeded the clip norm. */
  clippedShare: number;
}

/** Masked weights, their transposes, and the forward pass. */
function forward(net: NetworkTensors, x: tf.Tensor2D) {
  const w1m = tf.mul(net.w1, net.m1) as tf.Tensor2D;
  const w2m = tf.mul(net.w2, net.m2) as tf.Tensor2D;
  const w3m = tf.mul(net.w3, net.m3) as tf.Tensor2D;
  const z1 = tf.add(tf.matMul(x, w1m), net.b1) as tf.Tensor2D;
  const h1 = tf.relu(z1);
  const z2 = tf.add(tf.matMul(h1, w2m), net.b2) as tf.Tensor2D;
  const h2 = tf.relu(z2);
  const logits = tf.add(tf.matMul(h2, w3m), net.b3) as tf.Tensor2D;
  return { w2m, w3m, z1, h1, z2, h2, logits };
}

/** Per-column softmax of the logits (every column's block sums to 1). */
export function blockSoftmax(net: NetworkTensors, logits: tf.Tensor2D): tf.Tensor2D {
  const shifted = tf.sub(logits, tf.max(logits, 1, true));
  const e = tf.exp(shifted);
  const sums = tf.matMul(tf.matMul(e, net.blockOf), net.blockOfT);
  return tf.div(e, sums) as tf.Tensor2D;
}

/** Gradient sum over a batch of one-hot rows; with `clipNorm`, each example's gradient is clipped first. */
export function gradientSum(net: NetworkTensors, x: tf.Tensor2D, clipNorm: number | null): GradientResult {
  const batch = x.shape[0];
  const out = tf.tidy(() => {
    const { w2m, w3m, z1, h1, z2, h2, logits } = forward(net, x);
    const p = blockSoftmax(net, logits);
    const loss = tf.neg(tf.sum(tf.mul(x, tf.log(tf.add(p, 1e-12)))));
    // Backward: output gradient of the summed cross-entropies, then through the masked layers.
    const g3 = tf.sub(p, x);
    const g2 = tf.mul(tf.matMul(g3, tf.transpose(w3m)), tf.step(z2));
    const g1 = tf.mul(tf.matMul(g2, tf.transpose(w2m)), tf.step(z1));
    let s1: tf.Tensor2D = g1 as tf.Tensor2D;
    let s2: tf.Tensor2D = g2 as tf.Tensor2D;
    let s3: tf.Tensor2D = g3 as tf.Tensor2D;
    let clipped: tf.Scalar = tf.scalar(0);
    if (clipNorm !== null) {
      const layerNorm = (aSquared: tf.Tensor2D, mask: tf.Tensor2D, g: tf.Tensor) => {
        const gSquared = tf.square(g);
        return tf.add(tf.sum(tf.mul(tf.matMul(aSquared, mask), gSquared), 1), tf.sum(gSquared, 1));
      };
      // x is one-hot, so x² = x.
      const norms = tf.sqrt(tf.addN([layerNorm(x, net.m1, g1), layerNorm(tf.square(h1), net.m2, g2), layerNorm(tf.square(h2), net.m3, g3)]));
      const scale = tf.reshape(tf.div(clipNorm, tf.maximum(norms, clipNorm)), [batch, 1]);
      clipped = tf.sum(tf.cast(tf.greater(norms, clipNorm), "float32")) as tf.Scalar;
      s1 = tf.mul(g1, scale) as tf.Tensor2D;
      s2 = tf.mul(g2, scale) as tf.Tensor2D;
      s3 = tf.mul(g3, scale) as tf.Tensor2D;
    }
    const dw1 = tf.mul(tf.matMul(tf.transpose(x), s1), net.m1);
    const dw2 = tf.mul(tf.matMul(tf.transpose(h1), s2), net.m2);
    const dw3 = tf.mul(tf.matMul(tf.transpose(h2), s3), net.m3);
    return [dw1, tf.sum(s1, 0), dw2, tf.sum(s2, 0), dw3, tf.sum(s3, 0), loss, clipped];
  });
  const arrays = out.map((t) => t.dataSync() as Float32Array);
  out.forEach((t) => t.dispose());
  return { grads: arrays.slice(0, 6).map((a) => Float32Array.from(a)), loss: batch ? arrays[6][0] / batch : 0, clippedShare: batch ? arrays[7][0] / batch : 0 };
}

/** Brute-force per-example gradient norms (one backward per example): for tests only. */
export function perExampleNormsBruteForce(net: NetworkTensors, x: tf.Tensor2D): number[] {
  const norms: number[] = [];
  for (let i = 0; i < x.shape[0]; i++) {
    const row = tf.slice(x, [i, 0], [1, x.shape[1]]);
    const { grads } = gradientSum(net, row as tf.Tensor2D, null);
    row.dispose();
    norms.push(Math.sqrt(grads.reduce((s, g) => s + g.reduce((t, v) => t + v * v, 0), 0)));
  }
  return norms;
}

/** Per-example norms by the ghost formula, exposed for tests. */
export function perExampleNormsGhost(net: NetworkTensors, x: tf.Tensor2D): number[] {
  return tf.tidy(() => {
    const { w2m, w3m, z1, h1, z2, h2, logits } = forward(net, x);
    const p = blockSoftmax(net, logits);
    const g3 = tf.sub(p, x);
    const g2 = tf.mul(tf.matMul(g3, tf.transpose(w3m)), tf.step(z2));
    const g1 = tf.mul(tf.matMul(g2, tf.transpose(w2m)), tf.step(z1));
    const layer = (a2: tf.Tensor2D, m: tf.Tensor2D, g: tf.Tensor) => tf.add(tf.sum(tf.mul(tf.matMul(a2, m), tf.square(g)), 1), tf.sum(tf.square(g), 1));
    return Array.from(tf.sqrt(tf.addN([layer(x, net.m1, g1), layer(tf.square(h1), net.m2, g2), layer(tf.square(h2), net.m3, g3)])).dataSync());
  });
}

/** [m×k]·[k×n]. */
export interface StepMatMul { m: number; k: number; n: number }

/**
 * The matMuls one gradientSum performs, in order (FLOPs = Σ 2·m·k·n): bench/neural.mjs times bare plain
 * matMuls of exactly these shapes to tell how close a training step gets to the backend's matMul speed.
 * Keep it in step with gradientSum.
 */
export function gradientMatMuls(width: number, hidden: number, columns: number, batch: number, clipped: boolean): StepMatMul[] {
  const [B, W, H, C] = [batch, width, hidden, columns];
  const out: StepMatMul[] = [
    { m: B, k: W, n: H }, { m: B, k: H, n: H }, { m: B, k: H, n: W }, // forward
    { m: B, k: W, n: C }, { m: B, k: C, n: W }, // block softmax
    { m: B, k: W, n: H }, { m: B, k: H, n: H }, // backward to h2, h1
  ];
  if (clipped) out.push({ m: B, k: W, n: H }, { m: B, k: H, n: H }, { m: B, k: H, n: W }); // ghost norms
  out.push({ m: W, k: B, n: H }, { m: H, k: B, n: H }, { m: H, k: B, n: W }); // weight gradients
  return out;
}
