/**
 * One DP-SGD gradient for the MADE, written out by hand with plain matMuls. Per-example clipping does not
 * take a backward pass per example: for a dense layer y = a·(W⊙M) the per-example weight gradient is the
 * masked outer product (aᵢ ⊗ gᵢ)⊙M, whose squared norm is Σₖ ((aᵢ²)·M)ₖ · gᵢₖ² — one extra matMul of the
 * forward pass's size per layer (ghost clipping, Goodfellow 2015; Li et al. 2022, with the mask folded
 * in). The direct connections are such a layer too (a = the input features, g = the output gradient), so
 * their share is ((xᵢ²)·M0)·gᵢ², and it adds to the hidden layers' and the biases'. Then one clipped-sum
 * backward. Transposes are materialized explicitly, because transposed matMuls are about 10× slower than
 * plain ones on the wasm backend.
 */
import * as tf from "@tensorflow/tfjs-core";

export interface NetworkTensors {
  /** The hidden layers (absent with hidden = 0). */
  w1?: tf.Tensor2D; b1?: tf.Tensor1D; w2?: tf.Tensor2D; b2?: tf.Tensor1D; w3?: tf.Tensor2D;
  m1?: tf.Tensor2D; m2?: tf.Tensor2D; m3?: tf.Tensor2D;
  /** The direct connections input → logits and their mask (absent without them). */
  w0?: tf.Tensor2D; m0?: tf.Tensor2D;
  /** directWidth × width projection of the direct outputs to the logits and its transpose (absent: identity). */
  s0?: tf.Tensor2D; s0T?: tf.Tensor2D;
  b3: tf.Tensor1D;
  /** width × columns and columns × width block-membership matrices, for the per-column softmax. */
  blockOf: tf.Tensor2D; blockOfT: tf.Tensor2D;
}

export interface GradientResult {
  /** Gradient sums in parameter order (w1, b1, w2, b2, w3, w0, b3; absent parts empty), clipped per example when asked. */
  grads: Float32Array[];
  /** Mean negative log-likelihood per row (nats), before the step. */
  loss: number;
  /** Share of examples whose gradient norm exceeded the clip norm. */
  clippedShare: number;
}

interface Forward {
  logits: tf.Tensor2D;
  w2m?: tf.Tensor2D; w3m?: tf.Tensor2D; z1?: tf.Tensor2D; h1?: tf.Tensor2D; z2?: tf.Tensor2D; h2?: tf.Tensor2D;
}

/** Masked weights and the forward pass from input features x. */
export function forward(net: NetworkTensors, x: tf.Tensor2D): Forward {
  let out: Forward | undefined;
  if (net.w1) {
    const w1m = tf.mul(net.w1, net.m1!) as tf.Tensor2D;
    const w2m = tf.mul(net.w2!, net.m2!) as tf.Tensor2D;
    const w3m = tf.mul(net.w3!, net.m3!) as tf.Tensor2D;
    const z1 = tf.add(tf.matMul(x, w1m), net.b1!) as tf.Tensor2D;
    const h1 = tf.relu(z1);
    const z2 = tf.add(tf.matMul(h1, w2m), net.b2!) as tf.Tensor2D;
    const h2 = tf.relu(z2);
    out = { w2m, w3m, z1, h1, z2, h2, logits: tf.matMul(h2, w3m) };
  }
  if (net.w0) {
    const w0m = tf.mul(net.w0, net.m0!) as tf.Tensor2D;
    const direct = tf.matMul(x, net.s0 ? tf.matMul(w0m, net.s0) : w0m);
    if (out) out.logits = tf.add(out.logits, direct) as tf.Tensor2D;
    else out = { logits: direct as tf.Tensor2D };
  }
  if (!out) throw new Error("the network has neither hidden layers nor direct connections");
  return { ...out, logits: tf.add(out.logits, net.b3) as tf.Tensor2D };
}

/** Per-column softmax of the logits (every column's block sums to 1). */
export function blockSoftmax(net: NetworkTensors, logits: tf.Tensor2D): tf.Tensor2D {
  const shifted = tf.sub(logits, tf.max(logits, 1, true));
  const e = tf.exp(shifted);
  const sums = tf.matMul(tf.matMul(e, net.blockOf), net.blockOfT);
  return tf.div(e, sums) as tf.Tensor2D;
}

/** Output gradient g3 = p − y of the summed cross-entropies and the hidden layers' gradients g2, g1. */
function backward(net: NetworkTensors, f: Forward, y: tf.Tensor2D) {
  const p = blockSoftmax(net, f.logits);
  const g3 = tf.sub(p, y) as tf.Tensor2D;
  // The direct outputs' gradient (through the projection, when there is one).
  const g0 = net.w0 ? ((net.s0T ? tf.matMul(g3, net.s0T) : g3) as tf.Tensor2D) : undefined;
  if (!f.h2) return { p, g3, g0 };
  const g2 = tf.mul(tf.matMul(g3, tf.transpose(f.w3m!)), tf.step(f.z2!)) as tf.Tensor2D;
  const g1 = tf.mul(tf.matMul(g2, tf.transpose(f.w2m!)), tf.step(f.z1!)) as tf.Tensor2D;
  return { p, g3, g0, g2, g1 };
}

/** Squared per-example gradient norms (batch), by the ghost formula. */
function ghostSquaredNorms(net: NetworkTensors, x: tf.Tensor2D, f: Forward, g: ReturnType<typeof backward>): tf.Tensor1D {
  const g3Squared = tf.square(g.g3);
  const x2 = tf.square(x) as tf.Tensor2D;
  // The output biases, then the output-side weights: w3 from h2 (with g3), w0 from x (with g0; when
  // there is no projection g0 = g3, and both take one product with g3²).
  const terms: tf.Tensor[] = [tf.sum(g3Squared, 1)];
  let reach: tf.Tensor2D | undefined;
  if (f.h2) reach = tf.matMul(tf.square(f.h2) as tf.Tensor2D, net.m3!) as tf.Tensor2D;
  if (net.w0 && !net.s0) reach = (reach ? tf.add(reach, tf.matMul(x2, net.m0!)) : tf.matMul(x2, net.m0!)) as tf.Tensor2D;
  if (reach) terms.push(tf.sum(tf.mul(reach, g3Squared), 1));
  if (net.w0 && net.s0) terms.push(tf.sum(tf.mul(tf.matMul(x2, net.m0!), tf.square(g.g0!)), 1));
  if (f.h2) {
    const layer = (aSquared: tf.Tensor2D, mask: tf.Tensor2D, grad: tf.Tensor2D) => {
      const gSquared = tf.square(grad);
      return tf.add(tf.sum(tf.mul(tf.matMul(aSquared, mask), gSquared), 1), tf.sum(gSquared, 1));
    };
    terms.push(layer(x2, net.m1!, g.g1!), layer(tf.square(f.h1!) as tf.Tensor2D, net.m2!, g.g2!));
  }
  return tf.addN(terms) as tf.Tensor1D;
}

/**
 * Gradient sum over a batch: `y` the one-hot rows (targets), `x` their input features (default: y, for
 * one-hot inputs). With `clipNorm`, each example's gradient is clipped first.
 */
export function gradientSum(net: NetworkTensors, y: tf.Tensor2D, clipNorm: number | null, x: tf.Tensor2D = y): GradientResult {
  const batch = y.shape[0];
  const empty = new Float32Array(0);
  const out = tf.tidy(() => {
    const f = forward(net, x);
    const g = backward(net, f, y);
    const loss = tf.neg(tf.sum(tf.mul(y, tf.log(tf.add(g.p, 1e-12)))));
    let scale: tf.Tensor2D | undefined;
    let clipped: tf.Scalar = tf.scalar(0);
    if (clipNorm !== null) {
      const norms = tf.sqrt(ghostSquaredNorms(net, x, f, g));
      scale = tf.reshape(tf.div(clipNorm, tf.maximum(norms, clipNorm)), [batch, 1]);
      clipped = tf.sum(tf.cast(tf.greater(norms, clipNorm), "float32")) as tf.Scalar;
    }
    const s = (t: tf.Tensor2D) => (scale ? (tf.mul(t, scale) as tf.Tensor2D) : t);
    const s3 = s(g.g3);
    const parts: (tf.Tensor | null)[] = [null, null, null, null, null, null];
    if (f.h2) {
      const [s1, s2] = [s(g.g1!), s(g.g2!)];
      parts[0] = tf.mul(tf.matMul(tf.transpose(x), s1), net.m1!);
      parts[1] = tf.sum(s1, 0);
      parts[2] = tf.mul(tf.matMul(tf.transpose(f.h1!), s2), net.m2!);
      parts[3] = tf.sum(s2, 0);
      parts[4] = tf.mul(tf.matMul(tf.transpose(f.h2), s3), net.m3!);
    }
    if (net.w0) parts[5] = tf.mul(tf.matMul(tf.transpose(x), s(g.g0! as tf.Tensor2D)), net.m0!);
    return [...parts.filter((t): t is tf.Tensor => t !== null), tf.sum(s3, 0), loss, clipped];
  });
  const arrays = out.map((t) => t.dataSync() as Float32Array);
  out.forEach((t) => t.dispose());
  const grads: Float32Array[] = [];
  let k = 0;
  for (let part = 0; part < 6; part++) {
    const present = part < 5 ? !!net.w1 : !!net.w0;
    grads.push(present ? Float32Array.from(arrays[k++]) : empty);
  }
  grads.push(Float32Array.from(arrays[k++]));
  return { grads, loss: batch ? arrays[k][0] / batch : 0, clippedShare: batch ? arrays[k + 1][0] / batch : 0 };
}

/** Brute-force per-example gradient norms (one backward per example): for tests only. */
export function perExampleNormsBruteForce(net: NetworkTensors, y: tf.Tensor2D, x: tf.Tensor2D = y): number[] {
  const norms: number[] = [];
  for (let i = 0; i < y.shape[0]; i++) {
    const yi = tf.slice(y, [i, 0], [1, y.shape[1]]) as tf.Tensor2D;
    const xi = tf.slice(x, [i, 0], [1, x.shape[1]]) as tf.Tensor2D;
    const { grads } = gradientSum(net, yi, null, xi);
    tf.dispose([yi, xi]);
    norms.push(Math.sqrt(grads.reduce((s, g) => s + g.reduce((t, v) => t + v * v, 0), 0)));
  }
  return norms;
}

/** Per-example norms by the ghost formula, exposed for tests. */
export function perExampleNormsGhost(net: NetworkTensors, y: tf.Tensor2D, x: tf.Tensor2D = y): number[] {
  return tf.tidy(() => {
    const f = forward(net, x);
    return Array.from(tf.sqrt(ghostSquaredNorms(net, x, f, backward(net, f, y))).dataSync());
  });
}

/** [m×k]·[k×n]. */
export interface StepMatMul { m: number; k: number; n: number }

/**
 * The matMuls one gradientSum performs, in order (FLOPs = Σ 2·m·k·n): bench/neural.mjs times bare plain
 * matMuls of exactly these shapes to tell how close a training step gets to the backend's matMul speed.
 * Keep it in step with gradientSum.
 */
export function gradientMatMuls(
  shape: { width: number; hidden: number; inputWidth?: number; direct?: boolean; directWidth?: number }, columns: number, batch: number, clipped: boolean,
): StepMatMul[] {
  const [B, W, H, C, I] = [batch, shape.width, shape.hidden, columns, shape.inputWidth ?? shape.width];
  const D = shape.directWidth ?? W;
  const projected = shape.direct && D !== W;
  const out: StepMatMul[] = [];
  if (H > 0) out.push({ m: B, k: I, n: H }, { m: B, k: H, n: H }, { m: B, k: H, n: W }); // forward
  if (projected) out.push({ m: I, k: D, n: W }); // direct weights projected to the logits
  if (shape.direct) out.push({ m: B, k: I, n: W }); // direct connections
  out.push({ m: B, k: W, n: C }, { m: B, k: C, n: W }); // block softmax
  if (projected) out.push({ m: B, k: W, n: D }); // back through the projection
  if (H > 0) out.push({ m: B, k: W, n: H }, { m: B, k: H, n: H }); // backward to h2, h1
  if (clipped) {
    if (H > 0) out.push({ m: B, k: H, n: W });
    if (shape.direct) out.push({ m: B, k: I, n: D });
    if (H > 0) out.push({ m: B, k: I, n: H }, { m: B, k: H, n: H }); // ghost norms
  }
  if (H > 0) out.push({ m: I, k: B, n: H }, { m: H, k: B, n: H }, { m: H, k: B, n: W }); // weight gradients
  if (shape.direct) out.push({ m: I, k: B, n: D });
  return out;
}
