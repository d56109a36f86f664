/**
 * One DP-SGD gradient for the MADE, written out by hand with plain matMuls. Per-example clipping does not
 * take a backward pass per example: for a dense layer y = a·(W⊙M) the per-example weight gradient is the
 * masked outer product (aᵢ ⊗ gᵢ)⊙M, whose squared norm is Σₖ ((aᵢ²)·M)ₖ · gᵢₖ² — one extra matMul of the
 * forward pass's size per layer (ghost clipping, Goodfellow 2015; Li et al. 2022, with the mask folded
 * in). The direct connections are such a layer too (a = the input features, g = the output gradient), so
 * their share is ((xᵢ²)·M0)·gᵢ², and it adds to the hidden layers' and the biases'. Then one clipped-sum
 * backward. No matMul takes a transpose flag (transposed matMuls are about 10× slower than plain ones on
 * the wasm backend): transposed operands are made on the host, where they are small.
 *
 * Written for the eager CPU backends (wasm above all), where every kernel is a pass over memory plus a
 * fixed dispatch cost: biases and relu ride on the fused matMul kernel, the block softmax uses the
 * backend's softmax, and the per-example arithmetic (norms, clip scales, bias sums, the scaled gradients)
 * is done on the host from read-backs (see gradientSum).
 */
import * as tf from "@tensorflow/tfjs-core";
import type { MadeMasks } from "./made.js";

export interface NetworkTensors {
  /** The hidden layers (absent with hidden = 0). The weights w0–w3 are masked (w ⊙ M: see weightTensors). */
  w1?: tf.Tensor2D; b1?: tf.Tensor1D; w2?: tf.Tensor2D; b2?: tf.Tensor1D; w3?: tf.Tensor2D;
  m1?: tf.Tensor2D; m2?: tf.Tensor2D; m3?: tf.Tensor2D;
  /** The direct connections input → logits and their mask (absent without them). */
  w0?: tf.Tensor2D; m0?: tf.Tensor2D;
  /** directWidth × width projection of the direct outputs to the logits and its transpose (absent: identity). */
  s0?: tf.Tensor2D; s0T?: tf.Tensor2D;
  /** w2ᵀ and w3ᵀ (masked), uploaded with the weights for the backward pass (absent with hidden = 0). */
  w2T?: tf.Tensor2D; w3T?: tf.Tensor2D;
  /** The masks on the host: the weight gradients are masked as they are read back. */
  masks: MadeMasks;
  b3: tf.Tensor1D;
  /** width × columns and columns × width block-membership matrices, for the per-column softmax. */
  blockOf: tf.Tensor2D; blockOfT: tf.Tensor2D;
}

export interface GradientResult {
  /** Gradient sums in parameter order (w1, b1, w2, b2, w3, w0, b3; absent parts empty), clipped per example when asked. */
  grads: Float32Array[];
  /** Mean negative log-likelihood per row (nats), before the step: with options.loss, else NaN. */
  loss: number;
  /** Share of examples whose gradient norm exceeded the clip norm. */
  clippedShare: number;
}

interface Forward {
  logits: tf.Tensor2D;
  h1?: tf.Tensor2D; h2?: tf.Tensor2D;
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
    out = { h1, h2, logits: dense(h2, net.w3!, net.b3) };
  }
  if (net.w0) {
    // The output biases ride on a product whose right operand is new each step anyway (w3 above, w0 or
    // W0·S0 here). With the constant S0 as the right operand they are added apart: a fused bias is part
    // of the XNNPACK operator wasm caches per right operand, so a new bias (every training step) would
    // have S0 packed again (measured: 100 against 54 µs for that product at batch 64).
    const bias = out ? undefined : net.b3;
    let direct: tf.Tensor2D;
    if (!net.s0) direct = dense(x, net.w0, bias);
    else if (projectInputsFirst(x.shape[0], net.s0.shape[1])) {
      // Plain products: with nothing to fuse, dense's reshapes to 3-D would be three more ops a step.
      direct = tf.matMul(tf.matMul(x, net.w0), net.s0) as tf.Tensor2D;
      if (bias) direct = tf.add(direct, bias) as tf.Tensor2D;
    } else direct = dense(x, tf.matMul(net.w0, net.s0) as tf.Tensor2D, bias);
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
 * ~103): gradientSum then takes the step again with blockSoftmaxExact.
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
 * What the device computes before the clip scales are known, read back to the host: the output gradient
 * g3 = p − y, the direct outputs' g0 (through the projection, when there is one), the hidden layers' g2,
 * g1, and for the ghost norms each layer's (a²)·M (r3, r0, r1, r2). The hidden activations stay on the
 * device (`kept`): the weight gradients multiply them after the scales.
 */
interface DeviceQuantities {
  g3: Float32Array; g0?: Float32Array; g2?: Float32Array; g1?: Float32Array;
  r3?: Float32Array; r0?: Float32Array; r2?: Float32Array; r1?: Float32Array;
  /** Σ y·log(p + 1e-12) over the batch, when the loss was asked for. */
  logLikelihood?: number;
  kept: { h1?: tf.Tensor2D; h2?: tf.Tensor2D };
}

function deviceQuantities(net: NetworkTensors, x: tf.Tensor2D, y: tf.Tensor2D, ghost: boolean, loss: boolean, exact: boolean): DeviceQuantities {
  // The host arrays leave the tidy through this closure, not its result: tidy walks a returned container
  // element by element looking for tensors, which for arrays of thousands of values costs milliseconds.
  let out: DeviceQuantities | undefined;
  const kept = tf.tidy(() => {
    const f = forward(net, x);
    const p = exact ? blockSoftmaxExact(net, f.logits) : blockSoftmax(net, f.logits);
    const g3 = tf.sub(p, y) as tf.Tensor2D;
    const d: DeviceQuantities = (out = { g3: g3.dataSync() as Float32Array, kept: {} });
    if (net.w0 && net.s0T) d.g0 = tf.matMul(g3, net.s0T).dataSync() as Float32Array;
    if (f.h2) {
      // The transposed weights come uploaded (weightTensors): a transpose kernel per layer saved.
      const g2 = tf.mul(tf.matMul(g3, net.w3T!), tf.step(f.h2)) as tf.Tensor2D;
      d.g2 = g2.dataSync() as Float32Array;
      d.g1 = tf.mul(tf.matMul(g2, net.w2T!), tf.step(f.h1!)).dataSync() as Float32Array;
    }
    if (ghost) {
      const x2 = tf.square(x) as tf.Tensor2D;
      if (f.h2) {
        d.r3 = tf.matMul(tf.square(f.h2), net.m3!).dataSync() as Float32Array;
        d.r1 = tf.matMul(x2, net.m1!).dataSync() as Float32Array;
        d.r2 = tf.matMul(tf.square(f.h1!), net.m2!).dataSync() as Float32Array;
      }
      if (net.w0) d.r0 = tf.matMul(x2, net.m0!).dataSync() as Float32Array;
    }
    if (loss) d.logLikelihood = logLikelihoodOf(tf.matMul(tf.mul(y, p) as tf.Tensor2D, net.blockOf).dataSync());
    return { h1: f.h1, h2: f.h2 };
  });
  out!.kept = kept;
  return out!;
}

/**
 * Σ log(t + 1e-12) over the target cells' probabilities, as the log of products of 8 (each factor ≥ 1e-12,
 * so a product stays ≥ 1e-96 in float64): an eighth of the Math.log calls.
 */
function logLikelihoodOf(target: ArrayLike<number>): number {
  let sum = 0;
  let product = 1;
  for (let i = 0; i < target.length; i++) {
    product *= target[i] + 1e-12;
    if ((i & 7) === 7) {
      sum += Math.log(product);
      product = 1;
    }
  }
  return sum + Math.log(product);
}

/**
 * out[i] += Σₖ (r[i,k] + plus)·g[i,k]² over rows of `width` (r absent: plus·Σₖ g²). Four partial sums per
 * row: a single running sum waits on each add's latency (the loop ran at ~1.6 ns a value).
 */
function addWeightedSquares(out: Float64Array, g: Float32Array, r: Float32Array | undefined, plus: number, width: number): void {
  const end4 = width & ~3;
  for (let i = 0, row = 0; i < out.length; i++, row += width) {
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    let k = 0;
    if (r) {
      for (; k < end4; k += 4) {
        const a = row + k;
        const v0 = g[a], v1 = g[a + 1], v2 = g[a + 2], v3 = g[a + 3];
        s0 += (r[a] + plus) * v0 * v0;
        s1 += (r[a + 1] + plus) * v1 * v1;
        s2 += (r[a + 2] + plus) * v2 * v2;
        s3 += (r[a + 3] + plus) * v3 * v3;
      }
      for (; k < width; k++) s0 += (r[row + k] + plus) * g[row + k] * g[row + k];
      out[i] += s0 + s1 + s2 + s3;
    } else {
      for (; k < end4; k += 4) {
        const a = row + k;
        s0 += g[a] * g[a];
        s1 += g[a + 1] * g[a + 1];
        s2 += g[a + 2] * g[a + 2];
        s3 += g[a + 3] * g[a + 3];
      }
      for (; k < width; k++) s0 += g[row + k] * g[row + k];
      out[i] += plus * (s0 + s1 + s2 + s3);
    }
  }
}

/**
 * Squared per-example gradient norms by the ghost formula, on the host from the read-back quantities. A
 * layer's bias shares Σₖ gᵢₖ² with its weights' Σₖ ((aᵢ²)·M)ₖ gᵢₖ², so each layer adds Σₖ ((aᵢ²)·M + 1)ₖ gᵢₖ²
 * (the output layer's + 1 only when its bias is in the gradient). Without a projection the direct
 * connections' outputs are the logits, so g0 = g3.
 */
function squaredNorms(net: NetworkTensors, d: DeviceQuantities, batch: number, outputBias: boolean): Float64Array {
  const width = net.b3.shape[0];
  const out = new Float64Array(batch);
  const bias = outputBias ? 1 : 0;
  if (d.r3) addWeightedSquares(out, d.g3, d.r3, bias, width);
  else if (outputBias) addWeightedSquares(out, d.g3, undefined, 1, width);
  if (d.r0 && !d.g0) addWeightedSquares(out, d.g3, d.r0, 0, width);
  if (d.r0 && d.g0) addWeightedSquares(out, d.g0, d.r0, 0, net.w0!.shape[1]);
  if (d.g1) {
    const hidden = net.b1!.shape[0];
    addWeightedSquares(out, d.g1, d.r1, 1, hidden);
    addWeightedSquares(out, d.g2!, d.r2, 1, hidden);
  }
  return out;
}

/**
 * (s ⊙ g)ᵀ, columns × batch, from g (batch × columns, row-major) and the per-row scales s (absent: 1), and
 * the column sums Σᵢ sᵢ·gᵢ (the layer's bias gradient) in the same pass; with `transpose` false the sums
 * alone. Both walk four rows at a time, so that each write (of a sum or of the transpose) carries four
 * values and the adds do not wait on one another.
 */
function scaledTranspose(g: Float32Array, s: Float32Array | undefined, batch: number, columns: number, transpose = true): { t: Float32Array; sums: Float32Array } {
  const scale = s ?? new Float32Array(batch).fill(1);
  const sums = new Float32Array(columns);
  const end4 = batch & ~3;
  if (!transpose) {
    const acc = new Float64Array(columns);
    let i = 0;
    for (; i < end4; i += 4) {
      const a0 = scale[i], a1 = scale[i + 1], a2 = scale[i + 2], a3 = scale[i + 3];
      const r0 = i * columns, r1 = r0 + columns, r2 = r1 + columns, r3 = r2 + columns;
      for (let k = 0; k < columns; k++) acc[k] += a0 * g[r0 + k] + a1 * g[r1 + k] + a2 * g[r2 + k] + a3 * g[r3 + k];
    }
    for (; i < batch; i++) for (let k = 0, r = i * columns; k < columns; k++) acc[k] += scale[i] * g[r + k];
    for (let k = 0; k < columns; k++) sums[k] = acc[k];
    return { t: new Float32Array(0), sums };
  }
  const t = new Float32Array(g.length);
  for (let k = 0; k < columns; k++) {
    let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    let i = 0;
    const to = k * batch;
    for (; i < end4; i += 4) {
      const at = i * columns + k;
      const v0 = scale[i] * g[at], v1 = scale[i + 1] * g[at + columns], v2 = scale[i + 2] * g[at + 2 * columns], v3 = scale[i + 3] * g[at + 3 * columns];
      t[to + i] = v0;
      t[to + i + 1] = v1;
      t[to + i + 2] = v2;
      t[to + i + 3] = v3;
      a0 += v0;
      a1 += v1;
      a2 += v2;
      a3 += v3;
    }
    for (; i < batch; i++) {
      const v = scale[i] * g[i * columns + k];
      t[to + i] = v;
      a0 += v;
    }
    sums[k] = a0 + a1 + a2 + a3;
  }
  return { t, sums };
}

/** Mᵀ-masked transpose: the weight gradient (rows × columns) from its transpose gᵀ (columns × rows), times the mask. */
function maskedTranspose(gT: Float32Array, mask: Float32Array, rows: number, columns: number): Float32Array {
  const out = new Float32Array(rows * columns);
  for (let k = 0, at = 0; k < columns; k++) for (let j = 0; j < rows; j++, at++) out[j * columns + k] = gT[at] * mask[j * columns + k];
  return out;
}

export interface GradientOptions {
  /** false: the output biases' gradient is left out (zeros, no share of the clipped norm). Default true. */
  outputBias?: boolean;
  /** Also compute the mean loss (one more product and read-back; default false). */
  loss?: boolean;
}

/**
 * Gradient sum over a batch: `y` the one-hot rows (targets: one 1 per column block), `x` their input
 * features (default: y, for one-hot inputs). With `clipNorm`, each example's gradient is clipped first.
 * With `outputBias` false the output biases' gradient is left out — zeros, and no share of the clipped
 * norm — for callers that set those biases from other releases, so the clip bound goes to the weights.
 *
 * The device does the products; the host does the per-example arithmetic on what it reads back (the
 * output and hidden gradients, the ghost products): the squared norms, the clip scales, the bias
 * gradients (column sums) and the scaled, transposed gradients that the weight gradients multiply. On
 * the eager backends every kernel is a pass over memory plus a fixed dispatch cost, and at the batches a
 * site trains on (64–300 rows) a host loop over a few thousand values costs less than the kernels it
 * replaces (square, multiply, sum per layer, the scale products, segment sums, transposes). The weight
 * gradients are taken transposed, (s⊙g)ᵀ·a, so that the right operand — which wasm packs into an
 * XNNPACK operator each time it is a fresh tensor — is the layer's input a (x, h1, h2), and x is packed
 * once for both layers that read it; the host transposes them back as it masks them.
 *
 * A block whose logits all underflow the fast softmax comes out 0/0 (see blockSoftmax); the NaN shows in
 * the output bias sums, and the step is taken again with the exact softmax.
 */
export function gradientSum(net: NetworkTensors, y: tf.Tensor2D, clipNorm: number | null, x: tf.Tensor2D = y, options: GradientOptions = {}): GradientResult {
  const outputBias = options.outputBias ?? true;
  const batch = y.shape[0];
  if (batch === 0) {
    const sizes = [net.w1?.size, net.b1?.size, net.w2?.size, net.b2?.size, net.w3?.size, net.w0?.size, net.b3.size];
    return { grads: sizes.map((n) => new Float32Array(n ?? 0)), loss: 0, clippedShare: 0 };
  }
  const masks = net.masks;
  const width = net.b3.shape[0];
  for (let exact = false; ; exact = true) {
    const d = deviceQuantities(net, x, y, clipNorm !== null, !!options.loss, exact);
    try {
      let scale: Float32Array | undefined;
      let clipped = 0;
      if (clipNorm !== null) {
        const squared = squaredNorms(net, d, batch, outputBias);
        scale = new Float32Array(batch);
        for (let i = 0; i < batch; i++) {
          const norm = Math.sqrt(squared[i]);
          scale[i] = clipNorm / Math.max(norm, clipNorm);
          if (norm > clipNorm) clipped++;
        }
      }
      // g3 transposed only where a weight gradient reads it: w3's, and w0's without a projection.
      const out3 = scaledTranspose(d.g3, scale, batch, width, !!d.g1 || (!!net.w0 && !d.g0));
      if (!exact && out3.sums.some(Number.isNaN)) continue;
      const grads: Float32Array[] = [new Float32Array(0), new Float32Array(0), new Float32Array(0), new Float32Array(0), new Float32Array(0), new Float32Array(0)];
      // The weight gradients, transposed: (s⊙g)ᵀ·a on the device, transposed back and masked here.
      const products: { at: number; gT: Float32Array; rowsOfGT: number; a: tf.Tensor2D; mask: Float32Array }[] = [];
      if (d.g1) {
        const hidden = net.b1!.shape[0];
        const s1 = scaledTranspose(d.g1, scale, batch, hidden);
        const s2 = scaledTranspose(d.g2!, scale, batch, hidden);
        grads[1] = s1.sums;
        grads[3] = s2.sums;
        products.push({ at: 0, gT: s1.t, rowsOfGT: hidden, a: x, mask: masks.m1 });
        products.push({ at: 2, gT: s2.t, rowsOfGT: hidden, a: d.kept.h1!, mask: masks.m2 });
        products.push({ at: 4, gT: out3.t, rowsOfGT: width, a: d.kept.h2!, mask: masks.m3 });
      }
      if (net.w0) {
        const direct = net.w0.shape[1];
        const gT = d.g0 ? scaledTranspose(d.g0, scale, batch, direct).t : out3.t;
        products.push({ at: 5, gT, rowsOfGT: direct, a: x, mask: masks.m0 });
      }
      for (const q of products) {
        const columnsOfA = q.a.shape[1];
        const gT = tf.tensor2d(q.gT, [q.rowsOfGT, batch]);
        const product = tf.matMul(gT, q.a);
        grads[q.at] = maskedTranspose(product.dataSync() as Float32Array, q.mask, columnsOfA, q.rowsOfGT);
        tf.dispose([gT, product]);
      }
      grads.push(outputBias ? out3.sums : new Float32Array(width));
      return { grads, loss: d.logLikelihood === undefined ? Number.NaN : -d.logLikelihood / batch, clippedShare: clipped / batch };
    } finally {
      tf.dispose(d.kept);
    }
  }
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
  const d = deviceQuantities(net, x, y, true, false, false);
  tf.dispose(d.kept);
  return Array.from(squaredNorms(net, d, y.shape[0], outputBias), Math.sqrt);
}

/** [m×k]·[k×n]. */
export interface StepMatMul { m: number; k: number; n: number }

/**
 * The matMuls one gradientSum performs, in order (FLOPs = Σ 2·m·k·n): bench/neural.mjs times bare plain
 * matMuls of exactly these shapes to tell how close a training step gets to the backend's matMul speed.
 * Keep it in step with gradientSum. (The fused matMul kernels count: they are these products with a bias
 * and relu applied on the way out. Not listed: the loss's product, taken only when asked for, and the
 * products of the rare step whose fast softmax underflowed, taken again.)
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
  if (projected) out.push({ m: B, k: W, n: D }); // back through the projection
  if (H > 0) out.push({ m: B, k: W, n: H }, { m: B, k: H, n: H }); // backward to h2, h1
  if (clipped) {
    if (H > 0) out.push({ m: B, k: H, n: W });
    if (shape.direct) out.push({ m: B, k: I, n: D });
    if (H > 0) out.push({ m: B, k: I, n: H }, { m: B, k: H, n: H }); // ghost norms
  }
  if (H > 0) out.push({ m: H, k: B, n: I }, { m: H, k: B, n: H }, { m: W, k: B, n: H }); // weight gradients, transposed
  if (shape.direct) out.push({ m: D, k: B, n: I });
  return out;
}
