/**
 * Private-PGM-style estimation (McKenna, Sheldon & Miklau, "Graphical-model based estimation and inference
 * for differential privacy", ICML 2019) over a junction tree: the distribution
 *   p(x) ∝ Π_cliques exp θ_C(x_C)
 * whose clique marginals μ best fit the noisy linear measurements y_k of marginals (each a table over some
 * columns of one clique, every column's cells optionally merged into groups) in weighted least squares,
 *   L(μ) = Σ_k ‖Q_k μ − y_k‖² / (2 v_k),
 * by entropic mirror descent on θ with an Armijo line search (the solver of Private-PGM). Marginals come
 * from log-domain belief propagation over the tree, so every clique agrees with every other on what they
 * share, all tables are non-negative and sum to the row count; a junction tree is exact, and where the
 * measurements say nothing the model is the maximum-entropy one the iterations start from.
 *
 * Pure post-processing of released values.
 */
import { tableSize, type JunctionTree } from "./junction-tree.js";

export interface Measurement {
  /** Columns measured, ascending (the table's axes in this order). */
  vars: number[];
  /** Per measured column: cell → group of the measurement (omit for the identity). */
  groups?: (ArrayLike<number> | undefined)[];
  /** Per measured column: number of groups (with `groups`), else the domain size. */
  groupCounts?: number[];
  /** Per measured column: a coefficient per domain value (omit for 1): the measurement sums mass × Π coefficients. */
  coef?: (ArrayLike<number> | undefined)[];
  /** The noisy table (row-major over vars, last fastest) and the noise variance of its cells (one for all, or per cell). */
  y: Float64Array;
  variance: number | Float64Array;
}

export interface FittedModel {
  tree: JunctionTree;
  domain: number[];
  /** Each clique's joint probabilities over its columns (row-major, last column fastest), summing to 1. */
  marginals: Float64Array[];
  rows: number;
  /** Mirror-descent iterations run and the final loss. */
  iterations: number;
  loss: number;
}

/** For each cell of a table over `vars`, the index of its cell in the table over `target` (⊆ vars) after mapping each target column's cells through `maps`. */
export function projectionMap(vars: readonly number[], domain: readonly number[], target: readonly number[], maps?: (ArrayLike<number> | undefined)[], counts?: number[]): Int32Array {
  const size = tableSize(vars, domain);
  const out = new Int32Array(size);
  const pos = target.map((t) => vars.indexOf(t));
  if (pos.some((p) => p < 0)) throw new Error("projectionMap: target is not within the table's columns");
  const tsizes = target.map((t, i) => counts?.[i] ?? domain[t]);
  const tstride = new Array<number>(target.length);
  let s = 1;
  for (let i = target.length - 1; i >= 0; i--) {
    tstride[i] = s;
    s *= tsizes[i];
  }
  const digits = new Int32Array(vars.length);
  const dims = vars.map((v) => domain[v]);
  for (let cell = 0; cell < size; cell++) {
    let idx = 0;
    for (let i = 0; i < target.length; i++) {
      const d = digits[pos[i]];
      const m = maps?.[i];
      idx += (m ? m[d] : d) * tstride[i];
    }
    out[cell] = idx;
    for (let i = vars.length - 1; i >= 0; i--) {
      if (++digits[i] < dims[i]) break;
      digits[i] = 0;
    }
  }
  return out;
}

interface Prepared {
  tree: JunctionTree;
  domain: number[];
  sizes: number[];
  /** Non-root clique i: its cells → separator index, and its parent's cells → separator index. */
  childMap: Int32Array[];
  parentMap: Int32Array[];
  sepSizes: number[];
  /**
   * The column sets measured (each within one clique): their clique, the map from its cells to the set's
   * table, and the table's size. Each measurement reads its set's table (one pass over a clique per set,
   * however many measurements share it).
   */
  vsClique: number[];
  vsMap: Int32Array[];
  vsSize: number[];
  /** Each measurement's set, its map from the set's cells to its own cells, and its coefficients per set cell. */
  mSet: number[];
  mMap: Int32Array[];
  mCoef: (Float64Array | undefined)[];
}

function prepare(tree: JunctionTree, domain: number[], measurements: readonly Measurement[]): Prepared {
  const { cliques, parent, separators } = tree;
  const sizes = cliques.map((c) => tableSize(c, domain));
  const childMap: Int32Array[] = [];
  const parentMap: Int32Array[] = [];
  const sepSizes: number[] = [];
  cliques.forEach((c, i) => {
    if (parent[i] < 0) {
      childMap.push(new Int32Array(0));
      parentMap.push(new Int32Array(0));
      sepSizes.push(1);
      return;
    }
    childMap.push(projectionMap(c, domain, separators[i]));
    parentMap.push(projectionMap(cliques[parent[i]], domain, separators[i]));
    sepSizes.push(tableSize(separators[i], domain));
  });
  // Column sets: every multi-column measurement's columns; a single column is read from a set that holds it when there is one.
  const sets: number[][] = [];
  const key = (vars: readonly number[]) => vars.join(",");
  const index = new Map<string, number>();
  const add = (vars: number[]) => {
    const k = key(vars);
    if (!index.has(k)) {
      index.set(k, sets.length);
      sets.push(vars);
    }
    return index.get(k)!;
  };
  for (const m of measurements) {
    if (m.vars.some((v, i) => i > 0 && v <= m.vars[i - 1])) throw new Error("fitModel: a measurement's columns must be ascending");
    if (m.vars.length > 1) add(m.vars);
  }
  const mSet = measurements.map((m) => {
    if (m.vars.length > 1) return index.get(key(m.vars))!;
    const holder = sets.findIndex((vars) => vars.includes(m.vars[0]));
    return holder >= 0 ? holder : add([m.vars[0]]);
  });
  const vsClique = sets.map((vars) => {
    // The smallest clique holding the set (the cheapest to project).
    let c = -1;
    cliques.forEach((q, i) => {
      if (vars.every((v) => q.includes(v)) && (c < 0 || sizes[i] < sizes[c])) c = i;
    });
    if (c < 0) throw new Error(`fitModel: no clique holds the measured columns ${vars.join(",")}`);
    return c;
  });
  const vsMap = sets.map((vars, s) => projectionMap(cliques[vsClique[s]], domain, vars));
  const vsSize = sets.map((vars) => tableSize(vars, domain));
  const mMap: Int32Array[] = [];
  const mCoef: (Float64Array | undefined)[] = [];
  measurements.forEach((m, k) => {
    const vars = sets[mSet[k]];
    // The measured columns (ascending, like the set's) with their groups.
    mMap.push(projectionMap(vars, domain, m.vars, m.groups, m.groupCounts));
    if (m.coef?.some((x) => x)) {
      const w = new Float64Array(vsSize[mSet[k]]).fill(1);
      m.vars.forEach((v, i) => {
        const coef = m.coef![i];
        if (!coef) return;
        const map = projectionMap(vars, domain, [v]);
        for (let x = 0; x < w.length; x++) w[x] *= coef[map[x]];
      });
      mCoef.push(w);
    } else mCoef.push(undefined);
  });
  return { tree, domain, sizes, childMap, parentMap, sepSizes, vsClique, vsMap, vsSize, mSet, mMap, mCoef };
}

/** Sums of `x` over the cells mapping to each index of `out`. */
function sumInto(x: Float64Array, map: Int32Array, out: Float64Array): void {
  out.fill(0);
  for (let i = 0; i < x.length; i++) out[map[i]] += x[i];
}

/**
 * Clique marginals in counts (each sums to `rows`): belief propagation over the tree in the probability
 * domain — each potential exp(θ_C − max θ_C), messages renormalised as they go, so that one exponential
 * per cell is all the work beyond sums and products. Cells more than ~700 nats below their clique's
 * largest underflow to 0, as their probability does.
 */
function marginalsOf(p: Prepared, theta: Float64Array[], rows: number): Float64Array[] {
  const { parent } = p.tree;
  const n = theta.length;
  const beliefs = theta.map((t) => {
    let m = -Infinity;
    for (let c = 0; c < t.length; c++) if (t[c] > m) m = t[c];
    const b = new Float64Array(t.length);
    if (m === -Infinity) return b.fill(1);
    for (let c = 0; c < t.length; c++) b[c] = Math.exp(t[c] - m);
    return b;
  });
  const up: Float64Array[] = new Array(n);
  for (let i = n - 1; i >= 1; i--) {
    const msg = new Float64Array(p.sepSizes[i]);
    sumInto(beliefs[i], p.childMap[i], msg);
    let s = 0;
    for (let k = 0; k < msg.length; k++) s += msg[k];
    if (s > 0) for (let k = 0; k < msg.length; k++) msg[k] /= s;
    up[i] = msg;
    const b = beliefs[parent[i]];
    const map = p.parentMap[i];
    for (let c = 0; c < b.length; c++) b[c] *= msg[map[c]];
  }
  for (let i = 1; i < n; i++) {
    const msg = new Float64Array(p.sepSizes[i]);
    sumInto(beliefs[parent[i]], p.parentMap[i], msg);
    const u = up[i];
    let s = 0;
    for (let k = 0; k < msg.length; k++) {
      msg[k] = u[k] > 0 ? msg[k] / u[k] : 0;
      s += msg[k];
    }
    if (s > 0) for (let k = 0; k < msg.length; k++) msg[k] /= s;
    const b = beliefs[i];
    const map = p.childMap[i];
    for (let c = 0; c < b.length; c++) b[c] *= msg[map[c]];
  }
  return beliefs.map((b) => {
    let s = 0;
    for (let c = 0; c < b.length; c++) s += b[c];
    if (!(s > 0) || !Number.isFinite(s)) return b.fill(rows / b.length);
    for (let c = 0; c < b.length; c++) b[c] *= rows / s;
    return b;
  });
}

function lossAndGradient(p: Prepared, measurements: readonly Measurement[], mu: Float64Array[], withGradient: boolean): { loss: number; grad: Float64Array[] } {
  const grad = withGradient ? p.sizes.map((s) => new Float64Array(s)) : [];
  const tables = p.vsClique.map((c, s) => {
    const t = new Float64Array(p.vsSize[s]);
    sumInto(mu[c], p.vsMap[s], t);
    return t;
  });
  const setGrad = withGradient ? p.vsSize.map((n) => new Float64Array(n)) : [];
  let loss = 0;
  for (let k = 0; k < measurements.length; k++) {
    const m = measurements[k];
    const s = p.mSet[k];
    const map = p.mMap[k];
    const x = tables[s];
    const y = m.y;
    const r = new Float64Array(y.length);
    const n = x.length;
    const coef = p.mCoef[k];
    if (coef) for (let i = 0; i < n; i++) r[map[i]] += x[i] * coef[i];
    else for (let i = 0; i < n; i++) r[map[i]] += x[i];
    const v = m.variance;
    for (let j = 0; j < r.length; j++) {
      const d = r[j] - y[j];
      const w = 1 / (typeof v === "number" ? v : v[j]);
      loss += 0.5 * d * d * w;
      r[j] = d * w;
    }
    if (withGradient) {
      const g = setGrad[s];
      if (coef) for (let i = 0; i < n; i++) g[i] += r[map[i]] * coef[i];
      else for (let i = 0; i < n; i++) g[i] += r[map[i]];
    }
  }
  if (withGradient) {
    p.vsClique.forEach((c, s) => {
      const g = grad[c];
      const sg = setGrad[s];
      const map = p.vsMap[s];
      for (let i = 0; i < g.length; i++) g[i] += sg[map[i]];
    });
  }
  return { loss, grad };
}

export interface FitOptions {
  iterations?: number;
  /** Stop when the loss falls by less than this fraction over an iteration (after a few iterations). */
  tolerance?: number;
  /** Initial log-potentials: per column, log-probabilities of its cells (the model starts from their product). */
  start?: (Float64Array | undefined)[];
  /** Receives the loss after every accepted step (diagnostics). */
  trace?: number[];
}

/** Fits the clique marginals of `tree` to the measurements (see the file comment). */
export function fitModel(tree: JunctionTree, domain: number[], measurements: readonly Measurement[], rows: number, opts: FitOptions = {}): FittedModel {
  const p = prepare(tree, domain, measurements);
  const iterations = opts.iterations ?? 300;
  const tolerance = opts.tolerance ?? 1e-7;
  const N = Math.max(rows, 1e-9);
  let theta = p.sizes.map((s) => new Float64Array(s));
  // Start from the product of the given column distributions: each column's log-probabilities go into the first clique holding it.
  if (opts.start) {
    const placed = new Uint8Array(domain.length);
    tree.cliques.forEach((c, i) => {
      for (const v of c) {
        const lp = opts.start![v];
        if (placed[v] || !lp) continue;
        placed[v] = 1;
        const map = projectionMap(c, domain, [v]);
        const t = theta[i];
        for (let x = 0; x < t.length; x++) t[x] += lp[map[x]];
      }
    });
  }
  let mu = marginalsOf(p, theta, N);
  let { loss, grad } = lossAndGradient(p, measurements, mu, true);
  let maxGrad = 0;
  for (const g of grad) for (let i = 0; i < g.length; i++) maxGrad = Math.max(maxGrad, Math.abs(g[i]));
  let alpha = maxGrad > 0 ? 1 / maxGrad : 1;
  let it = 0;
  for (; it < iterations && measurements.length > 0; it++) {
    alpha *= 2;
    let accepted = false;
    for (let tries = 0; tries < 30; tries++) {
      const next = theta.map((t, i) => {
        const g = grad[i];
        const out = new Float64Array(t.length);
        for (let c = 0; c < t.length; c++) out[c] = t[c] - alpha * g[c];
        return out;
      });
      const nextMu = marginalsOf(p, next, N);
      const nextLoss = lossAndGradient(p, measurements, nextMu, false).loss;
      let dot = 0;
      for (let i = 0; i < grad.length; i++) for (let c = 0; c < grad[i].length; c++) dot += grad[i][c] * (mu[i][c] - nextMu[i][c]);
      if (loss - nextLoss >= 0.5 * alpha * dot) {
        const before = loss;
        theta = next;
        mu = nextMu;
        ({ loss, grad } = lossAndGradient(p, measurements, mu, true));
        opts.trace?.push(loss);
        accepted = true;
        if (it > 5 && before - loss <= tolerance * Math.max(before, 1e-300)) it = iterations;
        break;
      }
      alpha *= 0.5;
    }
    if (!accepted) break;
  }
  const marginals = mu.map((m) => Float64Array.from(m, (x) => x / N));
  return { tree, domain, marginals, rows, iterations: it, loss };
}

/** The marginal of `vars` (⊆ some clique) of a fitted model, row-major over vars. */
export function modelMarginal(model: FittedModel, vars: number[], groups?: (ArrayLike<number> | undefined)[], counts?: number[]): Float64Array | undefined {
  const c = model.tree.cliques.findIndex((q) => vars.every((v) => q.includes(v)));
  if (c < 0) return undefined;
  const map = projectionMap(model.tree.cliques[c], model.domain, vars, groups, counts);
  const size = vars.reduce((s, v, i) => s * (counts?.[i] ?? model.domain[v]), 1);
  const out = new Float64Array(size);
  const m = model.marginals[c];
  for (let i = 0; i < m.length; i++) out[map[i]] += m[i];
  return out;
}
