/**
 * Smoothing a numeric column's noisy bin counts (post-processing): a Whittaker–Henderson smoother of the
 * density per grid value — minimise Σ_b w_b (d_b − s_b)² + λ Σ (second differences of s)², with d_b the
 * noisy count over the bin's width m_b and w_b = m_b²/v its precision — whose λ minimises Stein's unbiased
 * estimate of the squared error of the counts, SURE(λ) = ‖c_λ − x‖² − B·v + 2v·tr(H_λ) (H_λ: the linear
 * map from noisy to smoothed counts). λ comes from the data and the public noise variance alone: when
 * the histogram is rough relative to its noise (a point mass, or little noise) SURE picks λ ≈ 0 and the
 * counts are left as they are; when the noise dominates, neighbouring bins pool it away.
 */

/** Cholesky factor L (row-major, lower) of a small dense symmetric positive definite matrix. */
function cholesky(a: Float64Array, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j];
      for (let k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
      l[i * n + j] = i === j ? Math.sqrt(Math.max(s, 1e-300)) : s / l[j * n + j];
    }
  }
  return l;
}

/** Solves L Lᵀ x = b. */
function solve(l: Float64Array, n: number, b: Float64Array): Float64Array {
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= l[i * n + k] * y[k];
    y[i] = s / l[i * n + i];
  }
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i];
    for (let k = i + 1; k < n; k++) s -= l[k * n + i] * x[k];
    x[i] = s / l[i * n + i];
  }
  return x;
}

/** Past this many bins the dense solves cost more than they are worth (such columns have little noise per unit of mass anyway). */
export const MAX_SMOOTHED_BINS = 256;

/** λ values tried, relative to the mean precision. */
const LAMBDAS = Array.from({ length: 41 }, (_, i) => 10 ** (-4 + i * 0.25));

/**
 * Smoothed counts of B bins of widths m (grid values per bin; 1 for equal-width continuous bins), each
 * count with noise variance v. Returns the counts unchanged when B < 4, B > MAX_SMOOTHED_BINS or v ≤ 0.
 * (The neural engine smooths its pooled marginals with it too.)
 */
export function smoothCounts(x: ArrayLike<number>, m: ArrayLike<number>, v: number): Float64Array {
  const B = x.length;
  const out = Float64Array.from(x);
  if (B < 4 || B > MAX_SMOOTHED_BINS || !(v > 0) || !Number.isFinite(v)) return out;
  const w = Float64Array.from(m, (mb) => (mb * mb) / v);
  const d = Float64Array.from(x, (xb, b) => xb / m[b]);
  // DᵀD of second differences.
  const dtd = new Float64Array(B * B);
  for (let r = 0; r < B - 2; r++) {
    const idx = [r, r + 1, r + 2];
    const coef = [1, -2, 1];
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) dtd[idx[i] * B + idx[j]] += coef[i] * coef[j];
  }
  let meanW = 0;
  for (let b = 0; b < B; b++) meanW += w[b] / B;
  let best = Infinity;
  for (const rel of LAMBDAS) {
    const lambda = rel * meanW;
    const a = new Float64Array(B * B);
    for (let i = 0; i < B * B; i++) a[i] = lambda * dtd[i];
    for (let b = 0; b < B; b++) a[b * B + b] += w[b];
    const l = cholesky(a, B);
    const s = solve(l, B, Float64Array.from(d, (db, b) => w[b] * db));
    // tr(H): H_bb = [(W + λDᵀD)⁻¹ W]_bb, one column of the inverse at a time.
    let trace = 0;
    for (let b = 0; b < B; b++) {
      const e = new Float64Array(B);
      e[b] = w[b];
      trace += solve(l, B, e)[b];
    }
    let rss = 0;
    for (let b = 0; b < B; b++) rss += (s[b] * m[b] - x[b]) ** 2;
    const sure = rss - B * v + 2 * v * trace;
    if (sure < best) {
      best = sure;
      for (let b = 0; b < B; b++) out[b] = s[b] * m[b];
    }
  }
  // λ → 0 reproduces x; SURE never prefers a fit worse than that by more than its own noise.
  const raw = B * v;
  return best <= raw ? out : Float64Array.from(x);
}
