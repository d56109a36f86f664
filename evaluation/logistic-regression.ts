/**
 * Multinomial (softmax) logistic regression with L2 regularization, for the ML-utility metric.
 *
 * Hand-written on purpose: no well-kept JS library fits. ml-logistic-regression (last release 2.0.0, 2020)
 * is one-vs-all with fixed-learning-rate descent and no regularization; the alternatives pull in a full
 * tensor runtime (TensorFlow.js), far too heavy for one small convex fit. The problem is small and smooth,
 * so ~150 lines suffice and keep the dependency list short.
 *
 * Objective: mean cross-entropy + (λ/2)‖W‖² (the intercept is not penalized), minimized by Nesterov's
 * accelerated gradient with step 1/L, where L = ½·mean‖x‖² + λ bounds the Hessian (the softmax Hessian
 * block diag(p) − ppᵀ has norm ≤ ½), plus gradient-based adaptive restart (O'Donoghue & Candès, 2015).
 * The objective is strictly convex, so this converges to the unique optimum; a few hundred iterations are
 * plenty for scoring.
 *
 * Rows are stored sparsely with a fixed number of stored entries per row (our encodings have exactly one
 * entry per numeric value, missing indicator, one-hot block and intercept), so an iteration costs
 * O(rows × entries per row × classes).
 */

/** Row-major sparse design matrix: row i has entries (index[i*width + t], value[i*width + t]) for t < width. */
export interface Design {
  rows: number;
  /** Stored entries per row. */
  width: number;
  /** Number of features (columns), including the intercept. */
  dim: number;
  index: Int32Array;
  value: Float64Array;
}

export interface LogisticModel {
  /** Number of classes of the target (probabilities are reported for all of them). */
  classes: number;
  dim: number;
  /** Classes seen in training; the model's softmax runs over these, unseen classes get probability 0. */
  trained: number[];
  /** trained.length × dim weights, row-major. */
  weights: Float64Array;
}

export interface FitOptions {
  /** L2 penalty λ on the non-intercept weights (default 1e-3). */
  l2?: number;
  /** Maximum iterations (default 300). */
  iterations?: number;
  /** Feature index of the intercept, not penalized (default 0; −1 for none). */
  intercept?: number;
  /** Stop when the gradient's max-norm falls below this (default 1e-7). */
  tolerance?: number;
}

/** A dense design (one stored entry per feature); handy for small problems and tests. */
export function denseDesign(rows: number[][], withIntercept = true): Design {
  const n = rows.length;
  const features = n > 0 ? rows[0].length : 0;
  const dim = features + (withIntercept ? 1 : 0);
  const index = new Int32Array(n * dim);
  const value = new Float64Array(n * dim);
  for (let i = 0; i < n; i++) {
    let t = i * dim;
    if (withIntercept) {
      index[t] = 0;
      value[t++] = 1;
    }
    for (let f = 0; f < features; f++) {
      index[t] = f + (withIntercept ? 1 : 0);
      value[t++] = rows[i][f];
    }
  }
  return { rows: n, width: dim, dim, index, value };
}

/** Fit the model; `labels[i]` is the class index (0 .. classes−1) of row i. */
export function fitLogisticRegression(x: Design, labels: ArrayLike<number>, classes: number, opts: FitOptions = {}): LogisticModel {
  const lambda = opts.l2 ?? 1e-3;
  const iterations = opts.iterations ?? 300;
  const intercept = opts.intercept ?? 0;
  const tolerance = opts.tolerance ?? 1e-7;
  const { rows: n, width, dim, index, value } = x;

  // Train over the classes actually present; map labels to 0 .. K−1.
  const seen = new Uint8Array(classes);
  for (let i = 0; i < n; i++) seen[labels[i]] = 1;
  const trained: number[] = [];
  const slot = new Int32Array(classes).fill(-1);
  for (let c = 0; c < classes; c++) {
    if (seen[c]) {
      slot[c] = trained.length;
      trained.push(c);
    }
  }
  const K = trained.length;
  const size = K * dim;
  const model: LogisticModel = { classes, dim, trained, weights: new Float64Array(size) };
  if (K <= 1 || n === 0) return model; // One class: it gets probability 1, nothing to learn.

  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) y[i] = slot[labels[i]];

  let sq = 0;
  for (let t = 0; t < value.length; t++) sq += value[t] * value[t];
  const L = 0.5 * (sq / n) + lambda;
  const step = 1 / L;

  let w = new Float64Array(size); // current iterate
  let wNext = new Float64Array(size);
  const look = new Float64Array(size); // extrapolated point
  const grad = new Float64Array(size);
  const logits = new Float64Array(K);
  let t = 1;

  for (let iter = 0; iter < iterations; iter++) {
    // Gradient at the extrapolated point.
    grad.fill(0);
    for (let i = 0; i < n; i++) {
      const base = i * width;
      const z = softmaxRow(look, K, dim, width, index, value, base, logits);
      for (let k = 0; k < K; k++) {
        const r = (logits[k] / z - (y[i] === k ? 1 : 0)) / n;
        if (r === 0) continue;
        const wk = k * dim;
        for (let e = 0; e < width; e++) grad[wk + index[base + e]] += r * value[base + e];
      }
    }
    let gmax = 0;
    for (let k = 0; k < K; k++) {
      for (let f = 0; f < dim; f++) {
        const p = k * dim + f;
        if (f !== intercept) grad[p] += lambda * look[p];
        const a = Math.abs(grad[p]);
        if (a > gmax) gmax = a;
      }
    }
    // Gradient step, then momentum (restarted when it points uphill).
    let uphill = 0;
    for (let p = 0; p < size; p++) {
      wNext[p] = look[p] - step * grad[p];
      uphill += grad[p] * (wNext[p] - w[p]);
    }
    let tNext = (1 + Math.sqrt(1 + 4 * t * t)) / 2;
    if (uphill > 0) {
      t = 1;
      tNext = 1;
    }
    const momentum = (t - 1) / tNext;
    for (let p = 0; p < size; p++) look[p] = wNext[p] + momentum * (wNext[p] - w[p]);
    [w, wNext] = [wNext, w];
    t = tNext;
    if (gmax < tolerance) break;
  }
  model.weights.set(w);
  return model;
}

/** Class probabilities, row-major rows × model.classes (classes unseen in training get 0). */
export function predictProba(model: LogisticModel, x: Design): Float64Array {
  const { classes, dim, trained, weights } = model;
  const { rows: n, width, index, value } = x;
  const out = new Float64Array(n * classes);
  const K = trained.length;
  if (K === 0) {
    out.fill(classes > 0 ? 1 / classes : 0);
    return out;
  }
  const logits = new Float64Array(K);
  for (let i = 0; i < n; i++) {
    const z = softmaxRow(weights, K, dim, width, index, value, i * width, logits);
    for (let k = 0; k < K; k++) out[i * classes + trained[k]] = logits[k] / z;
  }
  return out;
}

/**
 * Unnormalized softmax of one sparse row: fills `out` with exp(logit − max) for the K classes and returns
 * their sum (the caller divides).
 */
function softmaxRow(
  w: Float64Array, K: number, dim: number, width: number, index: ArrayLike<number>, value: ArrayLike<number>, base: number, out: Float64Array,
): number {
  let maxLogit = -Infinity;
  for (let k = 0; k < K; k++) {
    let s = 0;
    const wk = k * dim;
    for (let e = 0; e < width; e++) s += w[wk + index[base + e]] * value[base + e];
    out[k] = s;
    if (s > maxLogit) maxLogit = s;
  }
  let z = 0;
  for (let k = 0; k < K; k++) {
    out[k] = Math.exp(out[k] - maxLogit);
    z += out[k];
  }
  return z;
}
