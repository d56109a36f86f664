/**
 * One DP-SGD gradient for the MADE, written out by hand with plain matMuls. Per-example clipping does not
 * take a backward pass per example: for a dense layer y = a·(W⊙M) the per-example weight gradient is the
 * masked outer product (aᵢ ⊗ gᵢ)⊙M, whose squared norm is Σₖ ((aᵢ²)·M)ₖ · gᵢₖ² — one extra matMul of the
 * forward pass's size per layer (ghost clipping, Goodfellow 2015; Li et al. 2022, with the mask folded
 * in). The direct connections are such a layer too (a = the input features, g = the output gradient), so
 * their share is ((xᵢ²)·M0)·gᵢ², and it adds to the hidden layers' and the biases'. Then one clipped-sum
 * backward. Transposes are materialized explicitly, because transposed matMuls are about 10× slower than
 * plain ones on the wasm backend.
 *
 * Written for the eager CPU backends (wasm above all), where every kernel is a pass over memory plus a
 * fixed dispatch cost: biases and relu ride on the fused matMul kernel, the block softmax uses the
 * backend's softmax, column sums use sparseSegmentSum (tf.sum over axis 0 transposes first on wasm), and
 * per-example scalars (clip scales, the loss) are computed on the host from small read-backs.
 */
import * as tf from "@tensorflow/tfjs-core";

export interface NetworkTensors {
  /** The hidden layers (absent with hidden = 0). The weights w0–w3 are masked (w ⊙ M: see weightTensors). */
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
  w2m?: tf.Tensor2D; w3m?: tf.Tensor2D; h1?: tf.Tensor2D; h2?: tf.Tensor2D;
}

/**
 * a·b, with a bias row added and then relu when asked: the backend's fused matMul kernel, called directly,
 * adds the bias and applies relu as it writes the product instead of in separate passes (tf.fused.matMul
 * wraps the same kernel for autodiff, which here costs more than it saves).
 */
function dense(a: tf.Tensor2D, b: tf.Tensor2D, bias?: tf.Tensor1D, relu = false): tf.Tensor2D {
  const inputs: tf.NamedTensorMap = { a: tf.reshape(a, [1, ...a.shape]), b: tf.reshape(b, [1, ...b.shape]) };
  if (bias) inputs.bias = bias;
  const out = tf.engine().runKernel("_FusedMatMul", inputs, { transposeA: false, transposeB: false, activation: relu ? "relu" : "linear", leakyreluAlpha: 0 }) as tf.Tensor;
  return tf.reshape(out, [a.shape[0], b.shape[1]]);
}

/**
 * Whether the projected direct connections are taken as (x·W0)·S0 rather than x·(W0·S0): the first costs
 * batch·inputs·directWidth multiply-adds where the second costs inputs·directWidth·width, so by that count it
 * wins at batches up to the one-hot width. It wins further on wasm, where a matMul's right operand is
 * packed into an XNNPACK operator that is cached while the tensor lives: the constant S0 is packed once
 * per training run, and the fresh operand packed each step is W0 (inputs × direct outputs) instead of the
 * wider W0·S0 (inputs × one-hot width). Measured on heart (width 118, wasm, paired runs): the step is 10%
 * faster at batch 64, 3% at 123, 1% slower at 256 and 6% at 1024; hence the crossover at 1.5 × width.
 */
function projectInputsFirst(batch: number, width: number): boolean {
  return batch <= 1.5 * width;
}

/**
 * The forward pass from input features x. The weights are already masked (weightTensors uploads w ⊙ M), so
 * the pass is the fused matMuls alone.
 */
export function forward(net: NetworkTensors, x: tf.Tensor2D): Forward {
  let out: Forward | undefined;
  if (net.w1) {
    const h1 = dense(x, net.w1, net.b1!, true);
    const h2 = dense(h1, net.w2!, net.b2!, true);
    // The output biases go on with the direct connections when there are any.
    out = { w2m: net.w2, w3m: net.w3, h1, h2, logits: dense(h2, net.w3!, net.w0 ? undefined : net.b3) };
  }
  if (net.w0) {
    let direct: tf.Tensor2D;
    if (!net.s0) direct = dense(x, net.w0, net.b3);
    else if (projectInputsFirst(x.shape[0], net.s0.shape[1])) direct = dense(tf.matMul(x, net.w0) as tf.Tensor2D, net.s0, net.b3);
    else direct = dense(x, tf.matMul(net.w0, net.s0) as tf.Tensor2D, net.b3);
    out = out ? { ...out, logits: tf.add(out.logits, direct) as tf.Tensor2D } : { logits: direct };
  }
  if (!out) throw new Error("the network has neither hidden layers nor direct connections");
  return out;
}

/**
 * Per-column softmax of the logits (every column's block sums to 1): the backend's softmax over the whole
 * row, then each block divided by its sum. The same function as exp(z − max)/Σ_block exp(z − max), since
 * the row's normalizer cancels; on wasm the fused softmax kernel (XNNPACK, vectorized exp) is ~6× faster
 * than separate max, sub and exp kernels. It flushes to 0 what would be subnormal, so a block whose logits
 * all lie more than ~87 below the row's largest comes out 0/0 (exp(z − max) keeps subnormals down to
 * ~103): see blockProbabilities.
 */
export function blockSoftmax(net: NetworkTensors, logits: tf.Tensor2D): tf.Tensor2D {
  const q = tf.softmax(logits);
  return tf.div(q, tf.matMul(tf.matMul(q, net.blockOf), net.blockOfT)) as tf.Tensor2D;
}

/** The same per-column softmax as exp(z − max) over blocksums: slower, but subnormals survive. */
function blockSoftmaxExact(net: NetworkTensors, logits: tf.Tensor2D): tf.Tensor2D {
  const e = tf.exp(tf.sub(logits, tf.max(logits, 1, true)));
  return tf.div(e, tf.matMul(tf.matMul(e, net.blockOf), net.blockOfT)) as tf.Tensor2D;
}

/**
 * The per-column probabilities p and Σ y·log(p + 1e-12). With one 1 per column block in every row of y
 * (what one-hot rows are), each block's term is log(p_target + 1e-12), where p_target = (y⊙p)·blockOf is
 * the target cell's probability (the other cells add exact zeros): one log per column instead of one per
 * cell, on the host from the batch × columns values read back. Those values also show when the fast
 * softmax lost a block to underflow (a target probability 0 or NaN): then p is taken again the exact way.
 */
function blockProbabilities(net: NetworkTensors, logits: tf.Tensor2D, y: tf.Tensor2D): { p: tf.Tensor2D; logLikelihood: number } {
  const targets = (p: tf.Tensor2D) => tf.matMul(tf.mul(y, p) as tf.Tensor2D, net.blockOf).dataSync();
  let p = blockSoftmax(net, logits);
  let target = targets(p);
  if (!target.every((t) => t > 0)) {
    p = blockSoftmaxExact(net, logits);
    target = targets(p);
  }
  // Σ log as the log of products of 8 (each factor ≥ 1e-12, so a product stays ≥ 1e-96 in float64): an
  // eighth of the Math.log calls, which cost more than the rest of the loop.
  let logLikelihood = 0;
  let product = 1;
  for (let i = 0; i < target.length; i++) {
    product *= target[i] + 1e-12;
    if ((i & 7) === 7) {
      logLikelihood += Math.log(product);
      product = 1;
    }
  }
  return { p, logLikelihood: logLikelihood + Math.log(product) };
}

interface Backward { g3: tf.Tensor2D; g0?: tf.Tensor2D; g2?: tf.Tensor2D; g1?: tf.Tensor2D }

/** Output gradient g3 = p − y of the summed cross-entropies and, back from it, the direct outputs' g0 and the hidden layers' g2, g1. */
function backward(net: NetworkTensors, f: Forward, p: tf.Tensor2D, y: tf.Tensor2D): Backward {
  const g3 = tf.sub(p, y) as tf.Tensor2D;
  // The direct outputs' gradient (through the projection, when there is one).
  const g0 = net.w0 ? ((net.s0T ? tf.matMul(g3, net.s0T) : g3) as tf.Tensor2D) : undefined;
  if (!f.h2) return { g3, g0 };
  const g2 = tf.mul(tf.matMul(g3, tf.transpose(f.w3m!)), tf.step(f.h2)) as tf.Tensor2D;
  const g1 = tf.mul(tf.matMul(g2, tf.transpose(f.w2m!)), tf.step(f.h1!)) as tf.Tensor2D;
  return { g3, g0, g2, g1 };
}

/**
 * Squared per-example gradient norms by the ghost formula, as batch-long terms that add up to them. A
 * layer's bias shares Σₖ gᵢₖ² with its weights' Σₖ ((aᵢ²)·M)ₖ gᵢₖ², so each layer takes one product
 * Σₖ ((aᵢ²)·M + 1)ₖ gᵢₖ².
 */
function ghostTerms(net: NetworkTensors, x: tf.Tensor2D, f: Forward, g: Backward, outputBias = true): tf.Tensor[] {
  const x2 = tf.square(x) as tf.Tensor2D;
  // (a²)·M + 1 as one fused product: the +1 is a bias row of ones.
  const plusOne = (aSquared: tf.Tensor2D, mask: tf.Tensor2D) => dense(aSquared, mask, tf.ones([mask.shape[1]]) as tf.Tensor1D);
  // The output layer's weights with the output bias's share, or without it when the bias is left out.
  const output = (aSquared: tf.Tensor2D, mask: tf.Tensor2D) => (outputBias ? plusOne(aSquared, mask) : (tf.matMul(aSquared, mask) as tf.Tensor2D));
  // The output-side weights: w3 from h2 (with g3), w0 from x (with g0; when there is no projection
  // g0 = g3, and both share one product with g3², as does the output bias).
  let reach: tf.Tensor2D | undefined;
  if (f.h2) reach = output(tf.square(f.h2) as tf.Tensor2D, net.m3!);
  if (net.w0 && !net.s0) reach = reach ? (tf.add(reach, tf.matMul(x2, net.m0!)) as tf.Tensor2D) : output(x2, net.m0!);
  const g3Squared = tf.square(g.g3);
  const terms: tf.Tensor[] = reach || outputBias ? [tf.sum(reach ? tf.mul(reach, g3Squared) : g3Squared, 1)] : [];
  if (net.w0 && net.s0) terms.push(tf.sum(tf.mul(tf.matMul(x2, net.m0!), tf.square(g.g0!)), 1));
  if (f.h2) {
    const layer = (aSquared: tf.Tensor2D, mask: tf.Tensor2D, grad: tf.Tensor2D) => tf.sum(tf.mul(plusOne(aSquared, mask), tf.square(grad)), 1);
    terms.push(layer(x2, net.m1!, g.g1!), layer(tf.square(f.h1!) as tf.Tensor2D, net.m2!, g.g2!));
  }
  return terms;
}

/** Σ of the terms, read back (float64). */
function readSum(terms: tf.Tensor[], n: number): Float64Array {
  const out = new Float64Array(n);
  for (const t of terms) {
    const v = t.dataSync();
    for (let i = 0; i < n; i++) out[i] += v[i];
  }
  return out;
}

/**
 * Gradient sum over a batch: `y` the one-hot rows (targets: one 1 per column block), `x` their input
 * features (default: y, for one-hot inputs). With `clipNorm`, each example's gradient is clipped first.
 * With `outputBias` false the output biases' gradient is left out — zeros, and no share of the clipped
 * norm — for callers that set those biases from other releases, so the clip bound goes to the weights.
 *
 * The loss, the clip scales and the share clipped are computed on the host from values read back (the
 * squared norms, the target cells' probabilities): on the eager backends a read-back is a copy, cheaper
 * than the kernels it replaces (sqrt, maximum, div, greater, cast and sum per example). Bias gradients are
 * column sums by sparseSegmentSum (one pass), not tf.sum over axis 0, which transposes first on wasm.
 */
export function gradientSum(net: NetworkTensors, y: tf.Tensor2D, clipNorm: number | null, x: tf.Tensor2D = y, outputBias = true): GradientResult {
  const batch = y.shape[0];
  // The parts in parameter order (w1, b1, w2, b2, w3, w0, b3), absent ones empty.
  const present = [!!net.w1, !!net.w1, !!net.w1, !!net.w1, !!net.w1, !!net.w0, true];
  if (batch === 0) {
    const sizes = [net.w1?.size, net.b1?.size, net.w2?.size, net.b2?.size, net.w3?.size, net.w0?.size, net.b3.size];
    return { grads: sizes.map((n) => new Float32Array(n ?? 0)), loss: 0, clippedShare: 0 };
  }
  let logLik = 0;
  let clipped = 0;
  const parts = tf.tidy(() => {
    const f = forward(net, x);
    const { p, logLikelihood } = blockProbabilities(net, f.logits, y);
    logLik = logLikelihood;
    const g = backward(net, f, p, y);
    let scale: tf.Tensor2D | undefined;
    if (clipNorm !== null) {
      const squared = readSum(ghostTerms(net, x, f, g, outputBias), batch);
      const s = new Float32Array(batch);
      for (let i = 0; i < batch; i++) {
        const norm = Math.sqrt(squared[i]);
        s[i] = clipNorm / Math.max(norm, clipNorm);
        if (norm > clipNorm) clipped++;
      }
      scale = tf.tensor2d(s, [batch, 1]);
    }
    const scaled = (t: tf.Tensor2D) => (scale ? (tf.mul(t, scale) as tf.Tensor2D) : t);
    // Column sums by sparseSegmentSum over one segment. Not sᵀ·g: on wasm a matMul packs its right
    // operand into an XNNPACK operator (cached only while that tensor lives), which for a fresh
    // [batch × width] gradient costs several times the product itself.
    let segmentIds: [tf.Tensor1D, tf.Tensor1D] | undefined;
    const columnSum = (t: tf.Tensor2D) => {
      segmentIds ??= [tf.tensor1d(Int32Array.from({ length: batch }, (_, i) => i), "int32"), tf.tensor1d(new Int32Array(batch), "int32")];
      return tf.sparse.sparseSegmentSum(t, ...segmentIds);
    };
    const xT = tf.transpose(x);
    const out: tf.Tensor[] = [];
    let s3: tf.Tensor2D | undefined;
    const scaledG3 = () => (s3 ??= scaled(g.g3));
    if (f.h2) {
      const [s1, s2] = [scaled(g.g1!), scaled(g.g2!)];
      out.push(
        tf.mul(tf.matMul(xT, s1), net.m1!), columnSum(s1),
        tf.mul(tf.matMul(tf.transpose(f.h1!), s2), net.m2!), columnSum(s2),
        tf.mul(tf.matMul(tf.transpose(f.h2), scaledG3()), net.m3!),
      );
    }
    if (net.w0) out.push(tf.mul(tf.matMul(xT, g.g0 === g.g3 ? scaledG3() : scaled(g.g0!)), net.m0!));
    if (outputBias) out.push(columnSum(scaledG3()));
    return out;
  });
  // One read-back per part (cheaper than a concat kernel); the parts are this call's own tensors, so their
  // values alias nothing once they are disposed and need no further copy.
  const values = parts.map((t) => t.dataSync() as Float32Array);
  tf.dispose(parts);
  if (!outputBias) values.push(new Float32Array(net.b3.size));
  let k = 0;
  const grads = present.map((p) => (p ? values[k++] : new Float32Array(0)));
  return { grads, loss: -logLik / batch, clippedShare: clipped / batch };
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
export function perExampleNormsGhost(net: NetworkTensors, y: tf.Tensor2D, x: tf.Tensor2D = y, outputBias = true): number[] {
  return tf.tidy(() => {
    const f = forward(net, x);
    return Array.from(readSum(ghostTerms(net, x, f, backward(net, f, blockProbabilities(net, f.logits, y).p, y), outputBias), y.shape[0]), Math.sqrt);
  });
}

/** [m×k]·[k×n]. */
export interface StepMatMul { m: number; k: number; n: number }

/**
 * The matMuls one gradientSum performs, in order (FLOPs = Σ 2·m·k·n): bench/neural.mjs times bare plain
 * matMuls of exactly these shapes to tell how close a training step gets to the backend's matMul speed.
 * Keep it in step with gradientSum. (The fused matMul kernels count: they are these products with a bias
 * and relu applied on the way out. Not listed: the three block products taken again in the rare step
 * whose fast softmax underflowed, see blockProbabilities.)
 */
export function gradientMatMuls(
  shape: { width: number; hidden: number; inputWidth?: number; direct?: boolean; directWidth?: number }, columns: number, batch: number, clipped: boolean,
): StepMatMul[] {
  const [B, W, H, C, I] = [batch, shape.width, shape.hidden, columns, shape.inputWidth ?? shape.width];
  const D = shape.directWidth ?? W;
  const projected = shape.direct && D !== W;
  const out: StepMatMul[] = [];
  if (H > 0) out.push({ m: B, k: I, n: H }, { m: B, k: H, n: H }, { m: B, k: H, n: W }); // forward
  if (projected && projectInputsFirst(B, W)) out.push({ m: B, k: I, n: D }, { m: B, k: D, n: W }); // direct connections, projected to the logits
  else if (projected) out.push({ m: I, k: D, n: W }, { m: B, k: I, n: W }); // direct weights projected to the logits, then the connections
  else if (shape.direct) out.push({ m: B, k: I, n: W }); // direct connections
  out.push({ m: B, k: W, n: C }, { m: B, k: C, n: W }); // block softmax
  out.push({ m: B, k: W, n: C }); // the loss: the target cells' probabilities
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
